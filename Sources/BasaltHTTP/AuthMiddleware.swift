import BasaltCore
public import BasaltServices
import Foundation
import HTTPTypes
public import Hummingbird
import Synchronization

/// Turns credentials into a `Principal`. A bad credential is always a 401, never anonymous —
/// except on paths that ignore credentials (health, discovery, problem pages).
public struct AuthMiddleware: RouterMiddleware {
    public typealias Context = BasaltRequestContext
    let apiKeys: ApiKeyService
    let auth: AuthService
    let settings: HTTPSettings
    let surface: HTTPSurface
    /// Refused credentials per client address in the current minute. Each costs a database read
    /// or a signature check, and the rate limiter (which runs after authentication) never sees
    /// them: past `authPerMinute` refusals an address gets 429 before any work is done.
    let refusals = Refusals()

    final class Refusals: Sendable {
        let state = Mutex<[String: (start: Int64, count: Int)]>([:])

        /// Seconds to wait when `address` is over `quota`, else nil.
        func over(_ address: String, quota: Int, now: Int64) -> Int64? {
            guard quota > 0 else { return nil }
            return state.withLock { m in
                guard let e = m[address], now - e.start < 60, e.count >= quota else { return nil }
                return 60 - (now - e.start)
            }
        }

        func note(_ address: String, now: Int64) {
            state.withLock { m in
                m.trim(to: 100_000) { now - $0.start >= 60 }
                var e = m[address] ?? (now, 0)
                if now - e.start >= 60 { e = (now, 0) }
                e.count += 1
                m[address] = e
            }
        }
    }

    public init(apiKeys: ApiKeyService, auth: AuthService, settings: HTTPSettings, surface: HTTPSurface) {
        self.apiKeys = apiKeys
        self.auth = auth
        self.settings = settings
        self.surface = surface
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let address = clientAddress(request, context)
        context.principal = .anonymous(address)
        // Only a credential makes the endpoint's kind matter (an open one ignores it).
        if let auth = request.headers[.authorization], !surface.ignoresCredentials(request.uri.path) {
            context.hasCredentials = true
            let now = Timestamp.now().millisecondsSinceEpoch / 1000
            if let wait = refusals.over(address, quota: settings.authPerMinute, now: now) {
                throw BasaltError(
                    .rateLimited,
                    "Too many refused credentials from this address; retry after \(wait) seconds",
                    retryAfter: Int(wait)
                )
            }
            do {
                context.principal = try await principal(auth, address: address, requestID: context.requestID)
            } catch let e as BasaltError where e.code == .unauthenticated {
                refusals.note(address, now: now)
                throw e
            }
        }
        return try await next(request, context)
    }

    /// The principal of an `Authorization` value; a bad credential is always a 401, never anonymous.
    func principal(_ auth: String, address: String, requestID: String) async throws -> Principal {
        try await CredentialCheck(apiKeys: apiKeys, auth: self.auth).principal(auth, address: address, requestID: requestID)
    }

    /// The peer address, or the first untrusted hop of `X-Forwarded-For` behind a trusted proxy.
    func clientAddress(_ request: Request, _ context: Context) -> String {
        guard settings.trustedProxies.contains(context.peerAddress), let xff = request.headers[BasaltHeader.forwardedFor] else {
            return context.peerAddress
        }
        let hops = xff.split(separator: ",").map { String($0.trimmingOWS()) }
        return hops.last { !settings.trustedProxies.contains($0) } ?? context.peerAddress
    }
}

/// The principal an `Authorization` header names: an API key (`bsk_…`) or an access token whose
/// user and session are live. Realtime streams run it again while they last.
struct CredentialCheck: Sendable {
    let apiKeys: ApiKeyService
    let auth: AuthService

    func principal(_ header: String, address: String, requestID: String) async throws -> Principal {
        guard let token = Self.bearerToken(header) else { throw invalid("The Authorization header must be a Bearer token") }
        var p: Principal
        if token.hasPrefix("bsk_") {
            guard let k = try await apiKeys.authenticate(token) else { throw invalid("The token is invalid, expired or revoked") }
            p = k
            p.roles = auth.schemas.current.effectiveRoles(p.roles)
        } else {
            // Anything else must be one of our access JWTs; `authenticate` throws the 401.
            p = try await auth.authenticate(accessToken: token, address: address)
        }
        p.clientAddress = address
        p.requestID = requestID
        return p
    }

    /// The token of `Bearer <token>` (the scheme in any case, RFC 9110 §11.1), nil for another
    /// scheme, none, or a token outside RFC 6750's `b64token` grammar (letters, digits,
    /// `-._~+/`, then `=` padding). Read from the bytes: every credentialed request asks. The
    /// grammar also makes the token plain ASCII, so that it is one exact string as a cache key
    /// (`String` equality is Unicode canonical equivalence: `K` and U+212A would be one key).
    static func bearerToken(_ header: String) -> String? {
        let bytes = header.utf8
        guard let space = bytes.firstIndex(of: UInt8(ascii: " ")) else { return nil }
        let scheme = bytes[..<space]
        guard scheme.count == 6, zip(scheme, "bearer".utf8).allSatisfy({ $0 | 0x20 == $1 }) else { return nil }
        var token = String(header[bytes.index(after: space)...].trimmingOWS())
        guard !token.isEmpty, token.withUTF8(isB64Token) else { return nil }
        return token
    }

    static func isB64Token(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        while i < b.count {
            let c = b[i]
            let letterOrDigit = (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39)
            guard letterOrDigit || c == 0x2D || c == 0x2E || c == 0x5F || c == 0x7E || c == 0x2B || c == 0x2F else { break }
            i += 1
        }
        guard i > 0 else { return false }
        while i < b.count {
            guard b[i] == 0x3D else { return false }
            i += 1
        }
        return true
    }

    func invalid(_ message: String) -> BasaltError {
        BasaltError(.unauthenticated, message, bearerError: "invalid_token")
    }
}
