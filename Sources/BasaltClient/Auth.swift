import Foundation

/// A user as the server returns it: the built-in fields, and every field (profile fields
/// included) in `fields`.
public struct User: Sendable, Decodable, Identifiable {
    public var id: String
    public var email: String
    public var verified: Bool
    public var roles: [String]
    public var version: Int
    public var fields: [String: JSONValue]

    enum CodingKeys: String, CodingKey { case id, email, verified, roles, version }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        email = try c.decodeIfPresent(String.self, forKey: .email) ?? ""
        verified = try c.decodeIfPresent(Bool.self, forKey: .verified) ?? false
        roles = try c.decodeIfPresent([String].self, forKey: .roles) ?? []
        version = try c.decodeIfPresent(Int.self, forKey: .version) ?? 0
        fields = try [String: JSONValue](from: decoder)
    }
}

/// Sign-up, sign-in, sessions and second factors (API.md §8).
public struct Auth: Sendable {
    let client: BasaltClient

    struct TokenResponse: Decodable {
        var access_token: String
        var refresh_token: String
        var expires_in: Double
        var user: User
    }

    /// `POST /v1/auth/register`: the new user; the caller is not signed in by it.
    @discardableResult
    public func signUp(email: String, password: String, profile: [String: JSONValue] = [:]) async throws -> User {
        var body = profile
        body["email"] = .string(email)
        body["password"] = .string(password)
        return try await client.request("POST", "/v1/auth/register", json: BasaltClient.json(body), credential: .none, retryLost: false)
            .decode()
    }

    /// Signs in and keeps the session in the token store. With a second factor on, a call
    /// without `otp` throws a `Problem` whose `isMFARequired` is true: ask for the code, call again.
    @discardableResult
    public func signIn(email: String, password: String, otp: String? = nil) async throws -> User {
        var body: [String: JSONValue] = ["email": .string(email), "password": .string(password)]
        if let otp { body["otp"] = .string(otp) }
        let answer = try await client.request("POST", "/v1/auth/login", json: BasaltClient.json(body), credential: .none, retryLost: false)
        let tokens: TokenResponse = try answer.decode()
        _ = try await client.session.replace(with: Self.tokens(tokens, now: client.configuration.now()))
        return tokens.user
    }

    /// Ends the session on the server (its refresh family is revoked, its access tokens stop
    /// working) and forgets it here, even when the server cannot be reached.
    public func signOut() async throws {
        guard let t = try await client.session.replace(with: nil) else { return }
        let body: [String: JSONValue] = ["refresh_token": .string(t.refreshToken)]
        do {
            _ = try await client.request("POST", "/v1/auth/logout", json: BasaltClient.json(body), credential: .none, retryLost: false)
        } catch let p as Problem where p.status == 401 {
            // Already ended on the server.
        }
    }

    /// Whether a session is kept (it may still turn out to have ended on the server).
    public var isSignedIn: Bool {
        get async throws { try await client.session.tokens() != nil }
    }

    /// The session's tokens, as the token store holds them.
    public var tokens: Tokens? {
        get async throws { try await client.session.tokens() }
    }

    /// `GET /v1/auth/me`.
    public func me() async throws -> User {
        try await client.request("GET", "/v1/auth/me", credential: .session).decode()
    }

    /// Refreshes the session now (requests refresh it by themselves when needed).
    public func refresh() async throws {
        guard let t = try await client.session.tokens() else { throw BasaltClientError.notSignedIn }
        _ = try await client.session.accessToken(replacing: t.accessToken)
    }

    public struct TOTPEnrolment: Sendable, Decodable {
        public var secret: String
        public var otpauthURI: String
        enum CodingKeys: String, CodingKey {
            case secret
            case otpauthURI = "otpauth_uri"
        }
    }

    /// Starts TOTP enrolment (needs the password): show `otpauthURI` as a QR code, then confirm.
    public func enrolTOTP(password: String) async throws -> TOTPEnrolment {
        let body: [String: JSONValue] = ["password": .string(password)]
        return try await client.request("POST", "/v1/auth/mfa/totp", json: BasaltClient.json(body), credential: .session, retryLost: false)
            .decode()
    }

    /// Confirms enrolment with a first code; returns the recovery codes (shown once).
    public func confirmTOTP(otp: String) async throws -> [String] {
        struct Codes: Decodable { var recovery_codes: [String] }
        let body: [String: JSONValue] = ["otp": .string(otp)]
        let codes: Codes = try await client.request(
            "POST",
            "/v1/auth/mfa/totp/confirm",
            json: BasaltClient.json(body),
            credential: .session,
            retryLost: false
        ).decode()
        return codes.recovery_codes
    }

    /// Turns TOTP off (with a current code or a recovery code).
    public func disableTOTP(otp: String) async throws {
        let body: [String: JSONValue] = ["otp": .string(otp)]
        _ = try await client.request("DELETE", "/v1/auth/mfa/totp", json: BasaltClient.json(body), credential: .session, retryLost: false)
    }

    static func tokens(_ r: TokenResponse, now: Date) -> Tokens {
        Tokens(
            accessToken: r.access_token,
            refreshToken: r.refresh_token,
            expiresAt: now.addingTimeInterval(r.expires_in),
            receivedAt: now,
            userID: r.user.id
        )
    }

    /// The refresh call the session manager makes: never with an access token, never retried
    /// (a retried refresh whose first answer was lost would spend the token twice and end the
    /// session by the server's theft detection).
    static func refresher(url: URL, transport: any BasaltTransport, configuration: BasaltClient.Configuration) -> SessionManager.Refresher {
        { refreshToken in
            let request = TransportRequest(
                method: "POST",
                url: url,
                headers: ["Content-Type": "application/json", "Accept": "application/json"],
                body: try BasaltClient.json(["refresh_token": refreshToken]),
                timeout: configuration.requestTimeout
            )
            let response = try await transport.send(request)
            let answer = BasaltClient.Answer(status: response.status, headers: response.headers, body: response.body)
            guard answer.status == 200 else { throw BasaltClient.problem(answer) }
            return tokens(try answer.decode(), now: configuration.now())
        }
    }
}
