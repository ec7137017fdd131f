public import Foundation

/// A signed-in session's tokens, as the app's `TokenStore` keeps them.
public struct Tokens: Codable, Sendable, Equatable {
    public var accessToken: String
    public var refreshToken: String
    /// When the access token expires, by the client's clock when it arrived.
    public var expiresAt: Date
    /// When it arrived: with `expiresAt`, the token's lifetime.
    public var receivedAt: Date
    public var userID: String

    public init(accessToken: String, refreshToken: String, expiresAt: Date, receivedAt: Date, userID: String) {
        self.accessToken = accessToken
        self.refreshToken = refreshToken
        self.expiresAt = expiresAt
        self.receivedAt = receivedAt
        self.userID = userID
    }

    /// Whether to refresh before using the access token: within `margin` of its expiry, or in the
    /// last quarter of its lifetime when that is shorter (a token living 60 s is not refreshed
    /// from its first second).
    func isStale(at now: Date, margin: Duration) -> Bool {
        let lifetime = expiresAt.timeIntervalSince(receivedAt)
        return now >= expiresAt.addingTimeInterval(-min(margin.timeInterval, lifetime / 4))
    }
}

/// Where a session's tokens live between launches. The client reads it once and writes every
/// change (sign-in, each refresh, sign-out); an app keeps tokens in the Keychain by conforming.
public protocol TokenStore: Sendable {
    func load() async throws -> Tokens?
    /// `nil`: the session ended; forget it.
    func save(_ tokens: Tokens?) async throws
}

/// Tokens in memory only: the default, and what a command-line tool or a test wants.
public actor InMemoryTokenStore: TokenStore {
    var tokens: Tokens?
    public init(_ tokens: Tokens? = nil) { self.tokens = tokens }
    public func load() -> Tokens? { tokens }
    public func save(_ tokens: Tokens?) { self.tokens = tokens }
}

/// The one owner of the session's tokens. Refreshing is single-flight: refresh tokens are
/// single-use and a second use of one revokes the whole session (API.md §8), so every caller
/// that finds the access token stale — or rejected — while a refresh runs waits for that one.
///
/// One client per token store: two clients (or an app and its extension) sharing a store would
/// each spend the same refresh token.
actor SessionManager {
    typealias Refresher = @Sendable (_ refreshToken: String) async throws -> Tokens

    let store: any TokenStore
    let margin: Duration
    let now: @Sendable () -> Date
    let refresher: Refresher
    var current: Tokens?
    var loaded = false
    var inFlight: Task<Tokens, any Error>?
    /// The last write to the store: each waits for the one before, so the store ends with the
    /// newest tokens whatever its own ordering.
    var saving: Task<Void, any Error>?
    /// How many refreshes this client has started (for `BasaltClient.refreshCount`).
    var refreshes = 0

    init(store: any TokenStore, margin: Duration, now: @escaping @Sendable () -> Date, refresher: @escaping Refresher) {
        self.store = store
        self.margin = margin
        self.now = now
        self.refresher = refresher
    }

    func tokens() async throws -> Tokens? {
        if !loaded {
            let stored = try await store.load()
            // Another caller may have loaded (or signed in) while this one waited.
            if !loaded {
                current = stored
                loaded = true
            }
        }
        return current
    }

    /// The access token to send now, refreshed first when it is about to expire; `nil` when
    /// signed out. A refresh that fails for a passing reason (a `503`, a lost connection) leaves
    /// a token that has not yet expired in use.
    func accessToken() async throws -> String? {
        guard let t = try await tokens() else { return nil }
        if let inFlight { return try await inFlight.value.accessToken }
        guard t.isStale(at: now(), margin: margin) else { return t.accessToken }
        do {
            return try await refresh(t).accessToken
        } catch let problem as Problem where problem.status == 401 {
            throw problem
        } catch {
            if now() < t.expiresAt { return t.accessToken }
            throw error
        }
    }

    /// The server refused `rejected`: refresh, unless another caller already replaced it.
    func accessToken(replacing rejected: String) async throws -> String {
        guard let t = try await tokens() else { throw BasaltClientError.notSignedIn }
        if let inFlight { return try await inFlight.value.accessToken }
        if t.accessToken != rejected { return t.accessToken }
        return try await refresh(t).accessToken
    }

    /// Starts the one refresh; no suspension between the check for one in flight and this.
    func refresh(_ t: Tokens) async throws -> Tokens {
        refreshes += 1
        // Unstructured: a caller giving up (cancelled) must not cancel the refresh the others
        // wait for — a refresh cut off after the server spent the token loses the session.
        let refresher = self.refresher
        let task = Task { try await refresher(t.refreshToken) }
        inFlight = task
        let outcome = await task.result
        inFlight = nil
        // Signed out, or signed in again, meanwhile: this refresh's outcome is not the session's.
        guard current?.refreshToken == t.refreshToken else {
            guard let now = current else { throw BasaltClientError.notSignedIn }
            return now
        }
        switch outcome {
        case .success(let fresh):
            try await set(fresh)
            return fresh
        case .failure(let problem as Problem) where problem.status == 401:
            // The refresh token is dead (signed out elsewhere, reused, expired): the session is over.
            try await set(nil)
            throw problem
        case .failure(let error):
            throw error
        }
    }

    /// Signing in or out: waits for a refresh in flight first, so that its outcome cannot
    /// overwrite the new state; returns the tokens that were current.
    func replace(with tokens: Tokens?) async throws -> Tokens? {
        _ = try await self.tokens()
        while let inFlight { _ = await inFlight.result }
        let previous = current
        try await set(tokens)
        return previous
    }

    func set(_ tokens: Tokens?) async throws {
        current = tokens
        loaded = true
        let previous = saving
        let store = self.store
        let save = Task {
            _ = await previous?.result
            try await store.save(tokens)
        }
        saving = save
        try await save.value
    }
}
