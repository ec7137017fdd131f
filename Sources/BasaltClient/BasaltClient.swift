public import Foundation

/// A client of one Basalt server (API.md v1): sign-in and sessions, records as the app's own
/// `Codable` types, lists as async sequences, realtime events.
///
/// ```swift
/// let basalt = BasaltClient(baseURL: URL(string: "https://api.example.com")!)
/// try await basalt.auth.signIn(email: "ada@example.com", password: "…")
/// let posts = basalt.collection("posts", as: Post.self)
/// for try await post in posts.list(filter: Field("status") == "published", sort: [.descending("views")]) {
///     print(post.title)
/// }
/// ```
///
/// Every unsafe request carries an `Idempotency-Key`, kept on its retries, so a write retried
/// after a lost answer happens once. A stale or rejected access token is refreshed once for all
/// requests waiting on it.
public final class BasaltClient: Sendable {
    public struct Configuration: Sendable {
        /// Attempts of one request when the answer is lost or the server is briefly unavailable.
        public var maxAttempts = 3
        /// First wait between attempts; doubled each time, with jitter.
        public var retryDelay: Duration = .milliseconds(200)
        /// The longest `Retry-After` (`429`, `503`) waited for instead of reported.
        public var maxRetryAfter: Duration = .seconds(5)
        /// Refresh the access token this long before it expires (at most a quarter of its lifetime).
        public var refreshMargin: Duration = .seconds(30)
        public var requestTimeout: Duration = .seconds(30)
        /// The wall clock (for tokens' expiry).
        public var now: @Sendable () -> Date = { Date() }
        public init() {}
    }

    public let baseURL: URL
    let transport: any BasaltTransport
    let configuration: Configuration
    let apiKey: String?
    let session: SessionManager

    /// - Parameters:
    ///   - apiKey: an API key (`bsk_…`) for a service or an admin tool; it is sent instead of a
    ///     session's tokens.
    ///   - tokenStore: where the signed-in session lives (memory by default).
    public init(
        baseURL: URL,
        apiKey: String? = nil,
        tokenStore: any TokenStore = InMemoryTokenStore(),
        transport: any BasaltTransport = AsyncHTTPClientTransport(),
        configuration: Configuration = Configuration()
    ) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.transport = transport
        self.configuration = configuration
        session = SessionManager(
            store: tokenStore,
            margin: configuration.refreshMargin,
            now: configuration.now,
            refresher: Auth.refresher(url: Self.url(baseURL, "/v1/auth/refresh"), transport: transport, configuration: configuration)
        )
    }

    /// Sign-up, sign-in, sessions and second factors.
    public var auth: Auth { Auth(client: self) }

    /// The records of `name`, decoded as `Fields`.
    public func collection<Fields: Codable & Sendable>(_ name: String, as type: Fields.Type = Fields.self) -> RecordCollection<Fields> {
        RecordCollection(client: self, name: name)
    }

    /// Realtime events (Server-Sent Events).
    public var realtime: Realtime { Realtime(client: self) }

    /// Refreshes this client has started since it was made.
    public var refreshCount: Int {
        get async { await session.refreshes }
    }

    // MARK: - The request pipeline

    struct Answer: Sendable {
        var status: Int
        var headers: [String: String]
        var body: Data

        func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
            do {
                return try Coding.decoder().decode(T.self, from: body)
            } catch {
                throw BasaltClientError.unexpectedResponse(status: status, detail: "\(error)")
            }
        }
    }

    enum Credential {
        /// The API key or the session's access token, if any.
        case automatic
        /// None: sign-in and refresh calls.
        case none
        /// The session's access token, required.
        case session
    }

    func url(_ path: String, query: [URLQueryItem] = []) -> URL { Self.url(baseURL, path, query: query) }

    static func url(_ baseURL: URL, _ path: String, query: [URLQueryItem] = []) -> URL {
        var components = URLComponents(url: baseURL, resolvingAgainstBaseURL: false)!
        // `path` arrives percent-encoded (collection names and ids pass through `encode`).
        let base = components.percentEncodedPath
        components.percentEncodedPath = (base.hasSuffix("/") ? String(base.dropLast()) : base) + path
        if !query.isEmpty {
            // URLComponents leaves `+` (and `&`, `=` inside values) as they are; the server reads
            // `+` as a space in a query, so spell every reserved character out.
            components.percentEncodedQuery = query.map { "\(Self.encode($0.name))=\(Self.encode($0.value ?? ""))" }.joined(separator: "&")
        }
        return components.url!
    }

    static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    static func encode(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: unreserved) ?? s }

    /// Sends one request and returns a 2xx or 304 answer; anything else is thrown as a `Problem`.
    func request(
        _ method: String,
        _ path: String,
        query: [URLQueryItem] = [],
        json body: Data? = nil,
        contentType: String = "application/json",
        headers extra: [String: String] = [:],
        credential: Credential = .automatic,
        retryLost: Bool = true
    ) async throws -> Answer {
        var headers = extra
        headers["Accept"] = "application/json"
        if body != nil { headers["Content-Type"] = contentType }
        let unsafe = !["GET", "HEAD", "OPTIONS"].contains(method)
        // One key for all attempts of this request: a retry after a lost answer is replayed by
        // the server, not performed again (API.md §6).
        if unsafe && headers["Idempotency-Key"] == nil { headers["Idempotency-Key"] = UUID().uuidString.lowercased() }
        let request = TransportRequest(
            method: method,
            url: url(path, query: query),
            headers: headers,
            body: body,
            timeout: configuration.requestTimeout
        )
        var attempt = 0
        var authRetries = 0
        var lostAnswer = false
        var inFlightWaits = 0
        var token = try await bearer(credential)
        while true {
            attempt += 1
            var r = request
            if let token { r.headers["Authorization"] = "Bearer \(token)" }
            let response: TransportResponse
            do {
                response = try await transport.send(r)
            } catch {
                try Task.checkCancellation()
                // Without a key the server honours (the auth endpoints), a request whose answer
                // was lost may have been done: it is not sent again.
                guard attempt < configuration.maxAttempts, !unsafe || retryLost else { throw error }
                lostAnswer = true
                try await backoff(attempt)
                continue
            }
            let answer = Answer(status: response.status, headers: response.headers, body: response.body)
            if (200..<300).contains(answer.status) || answer.status == 304 { return answer }
            let problem = Self.problem(answer)
            // A rejected session token: refresh (single-flight; nothing is refreshed when another
            // request already replaced the token) and send again. Twice at most: a token can
            // expire again while a slow request waits, and a refresh that fails ends the session.
            if answer.status == 401, authRetries < 2, apiKey == nil, let sent = token, credential != .none,
                answer.headers["www-authenticate"]?.contains("invalid_token") == true
            {
                authRetries += 1
                token = try await session.accessToken(replacing: sent)
                continue
            }
            // The first attempt may still be running after its answer was lost: the server says
            // so with a fresh (not replayed) 409 without field errors. Wait for it to finish —
            // up to about a minute, the server's bound on a write — and ask again.
            if answer.status == 409, lostAnswer, problem.errors.isEmpty, answer.headers["idempotent-replayed"] == nil,
                inFlightWaits < 40
            {
                inFlightWaits += 1
                try await Task.sleep(for: .milliseconds(Swift.min(100 * inFlightWaits, 2_000)))
                continue
            }
            if attempt < configuration.maxAttempts {
                if answer.status == 429 || answer.status == 503,
                    let wait = problem.retryAfter, Duration.seconds(wait) <= configuration.maxRetryAfter
                {
                    try await Task.sleep(for: .seconds(wait))
                    continue
                }
            }
            throw problem
        }
    }

    func bearer(_ credential: Credential) async throws -> String? {
        switch credential {
        case .none: return nil
        case .automatic:
            if let apiKey { return apiKey }
            return try await session.accessToken()
        case .session:
            guard let t = try await session.accessToken() else { throw BasaltClientError.notSignedIn }
            return t
        }
    }

    func backoff(_ attempt: Int) async throws {
        let base = configuration.retryDelay.timeInterval * Double(1 << min(attempt - 1, 6))
        try await Task.sleep(for: .seconds(base * Double.random(in: 0.5...1.5)))
    }

    static func problem(_ answer: Answer) -> Problem {
        var p = (try? Coding.decoder().decode(Problem.self, from: answer.body)) ?? Problem(status: answer.status, body: answer.body)
        if p.status == 0 { p.status = answer.status }
        p.retryAfter = answer.headers["retry-after"].flatMap { Int($0) }
        return p
    }

    static func json(_ value: some Encodable) throws -> Data { try Coding.encoder().encode(value) }
}
