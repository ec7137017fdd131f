import BasaltAuth
public import BasaltCore
import BasaltStorage
import Foundation
public import Logging
import Synchronization

/// Sign-in with other providers (API.md §8.1), Basalt being the OAuth client: `state`, `nonce`
/// and PKCE `S256` on every flow, the provider's ID token verified against its JWKS, accounts
/// linked only between verified emails, and a single-use exchange code — never a token — in
/// the redirect back to the app.
public final class SocialSignIn: Sendable {
    public struct Settings: Sendable {
        public var providers: [OAuthProvider]
        /// Where a flow may send the browser back to: exact URIs.
        public var redirectURLs: Set<String>
        /// Basalt's public URL: the providers return to `{publicURL}/v1/auth/oauth/{name}/callback`.
        public var publicURL: String

        public init(providers: [OAuthProvider], redirectURLs: Set<String>, publicURL: String) {
            self.providers = providers
            self.redirectURLs = redirectURLs
            self.publicURL = publicURL
        }
    }

    let auth: AuthService
    let http: any OutboundHTTP
    public let settings: Settings
    let logger: Logger
    /// Discovered endpoints and fetched key sets per provider, for an hour.
    let discovered = Mutex<[String: (Endpoints, Int64)]>([:])
    let keySets = Mutex<[String: (String, Int64)]>([:])
    static let cacheMillis: Int64 = 3_600_000
    /// A flow has ten minutes from the redirect to the provider to the callback; the app has a
    /// minute to exchange its code.
    static let stateLifetime: Int64 = 600_000
    static let exchangeLifetime: Int64 = 60_000

    public init(auth: AuthService, http: any OutboundHTTP, settings: Settings, logger: Logger) {
        self.auth = auth
        self.http = http
        self.settings = settings
        self.logger = logger
    }

    var store: any Store { auth.store }

    func provider(_ name: String) throws(BasaltError) -> OAuthProvider {
        guard let p = settings.providers.first(where: { $0.name == name }) else {
            throw BasaltError.notFound("There is no sign-in provider named \(name)")
        }
        return p
    }

    func callbackURL(_ p: OAuthProvider) -> String { settings.publicURL + "/v1/auth/oauth/\(p.name)/callback" }

    // MARK: - Provider metadata

    struct Endpoints: Sendable {
        var issuer: String?
        var authorization: String
        var token: String
        var userinfo: String?
        var jwks: String?
    }

    func getJSON(_ url: String, bearer: String? = nil) async throws -> JSONValue {
        var headers = [("Accept", "application/json"), ("User-Agent", "Basalt")]
        if let bearer { headers.append(("Authorization", "Bearer \(bearer)")) }
        let (status, body) = try await send("GET", url, headers: headers, body: nil)
        guard status == 200, let json = try? JSONValue.parse(body) else { throw ProviderFailure("GET \(url) answered \(status)") }
        return json
    }

    /// A call to a provider; any failure to get an answer (refused, timed out, no such host) is a
    /// `ProviderFailure`, which the flow reports as the provider being unavailable.
    func send(_ method: String, _ url: String, headers: [(String, String)], body: [UInt8]?) async throws -> (status: Int, body: [UInt8]) {
        do {
            return try await http.send(method, url, headers: headers, body: body)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw ProviderFailure("\(method) \(url): \(error)")
        }
    }

    func endpoints(_ p: OAuthProvider) async throws -> Endpoints {
        let now = Timestamp.now().millisecondsSinceEpoch
        if let (e, at) = discovered.withLock({ $0[p.name] }), now - at < Self.cacheMillis { return e }
        var e = Endpoints(issuer: nil, authorization: p.authorizationEndpoint ?? "", token: p.tokenEndpoint ?? "", userinfo: p.userinfoEndpoint)
        if let issuer = p.issuer {
            let doc = try await getJSON(issuer + "/.well-known/openid-configuration")
            guard let iss = doc["issuer"]?.stringValue, let a = doc["authorization_endpoint"]?.stringValue,
                let t = doc["token_endpoint"]?.stringValue,
                let k = doc["jwks_uri"]?.stringValue
            else { throw ProviderFailure("the discovery document of \(issuer) lacks issuer, endpoints or jwks_uri") }
            e.issuer = iss
            e.authorization = p.authorizationEndpoint ?? a
            e.token = p.tokenEndpoint ?? t
            e.userinfo = p.userinfoEndpoint ?? doc["userinfo_endpoint"]?.stringValue
            e.jwks = p.jwksURI ?? k
        }
        discovered.withLock { $0[p.name] = (e, now) }
        return e
    }

    func jwks(_ p: OAuthProvider, _ e: Endpoints, fresh: Bool) async throws -> String {
        let now = Timestamp.now().millisecondsSinceEpoch
        if !fresh, let (k, at) = keySets.withLock({ $0[p.name] }), now - at < Self.cacheMillis { return k }
        guard let url = e.jwks else { throw ProviderFailure("no jwks_uri") }
        let keys = try await getJSON(url).serialized()
        keySets.withLock { $0[p.name] = (keys, now) }
        return keys
    }

    struct ProviderFailure: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    // MARK: - Start

    /// `GET /v1/auth/oauth/{provider}`: where to send the browser, and the state to bind to it
    /// (a cookie). The app may bind its exchange to a PKCE challenge of its own.
    public struct Started: Sendable {
        public var location: String
        public var state: String
    }

    public func start(provider name: String, redirectURI: String?, codeChallenge: String?, challengeMethod: String?) async throws -> Started {
        let p = try provider(name)
        guard let redirectURI, settings.redirectURLs.contains(redirectURI) else {
            throw BasaltError.validation([
                FieldError(field: "/redirect_uri", code: .enum, message: "redirect_uri must be one of the configured BASALT_OAUTH_REDIRECT_URLS")
            ])
        }
        if let codeChallenge {
            guard OAuthServer.isPKCEValue(codeChallenge), challengeMethod == "S256" else {
                throw BasaltError.validation([
                    FieldError(
                        field: "/code_challenge",
                        code: .format,
                        message: "code_challenge is 43-128 URL-safe characters, with code_challenge_method S256"
                    )
                ])
            }
        }
        let e: Endpoints
        do {
            e = try await endpoints(p)
        } catch let f as ProviderFailure {
            logger.error("sign-in provider unreachable", metadata: ["oauth.provider": "\(p.name)", "error": "\(f)"])
            throw BasaltError(.unavailable, "The sign-in provider \(p.name) cannot be reached; try again later", retryAfter: 30)
        }
        let state = Digest.randomToken(bytes: 32)
        let nonce = Digest.randomToken(bytes: 32)
        let verifier = Digest.randomToken(bytes: 48)
        let t = Timestamp.now().millisecondsSinceEpoch
        _ = try await store.write([
            store.statement(
                """
                INSERT INTO "_basalt_oauth_states" ("state_hash", "provider", "nonce", "code_verifier", "redirect_uri", "app_challenge",
                  "expires_at")
                VALUES (\(Digest.sha256Hex(state)), \(p.name), \(nonce), \(verifier), \(redirectURI), \(codeChallenge), \(t + Self.stateLifetime))
                """
            )
        ])
        var query: [(String, String)] = [
            ("response_type", "code"), ("client_id", p.clientID), ("redirect_uri", callbackURL(p)),
            ("scope", p.scopes.joined(separator: " ")), ("state", state), ("code_challenge", Base64URL.encode(Digest.sha256(Array(verifier.utf8)))),
            ("code_challenge_method", "S256"),
        ]
        if p.isOpenIDConnect { query.append(("nonce", nonce)) }
        if p.name == "apple" || p.issuer == "https://appleid.apple.com" { query.append(("response_mode", "form_post")) }
        return Started(location: OAuthServer.appending(query, to: e.authorization), state: state)
    }

    // MARK: - Callback

    struct StateRow: StoredRow {
        static let columns: [SQLColumnType] = [.text, .text, .text, .text, .text, .int, .int]
        var provider: String
        var nonce: String
        var verifier: String
        var redirectURI: String
        var appChallenge: String?
        var expiresAt: Int64
        var usedAt: Int64?
        init(_ r: inout RowReader) {
            provider = r.text() ?? ""
            nonce = r.text() ?? ""
            verifier = r.text() ?? ""
            redirectURI = r.text() ?? ""
            appChallenge = r.text()
            expiresAt = r.int() ?? 0
            usedAt = r.int()
        }
    }

    /// An error for the app, at its redirect URI (`error`, `error_description`).
    struct AppError: Error {
        var code: String
        var description: String
        init(_ code: String, _ description: String) {
            self.code = code
            self.description = description
        }
    }

    /// `GET|POST /v1/auth/oauth/{provider}/callback`: the app's redirect URI with a single-use
    /// exchange code, or with an error. A state that is unknown, used, expired, of another
    /// provider or not this browser's (`cookieState`) is refused here, with no redirect.
    public func callback(provider name: String, params: [String: String], cookieState: String?, client: AuthService.Client) async throws -> String {
        let p = try provider(name)
        let refused = BasaltError.badRequest("The sign-in state is invalid, expired or already used; start the sign-in again")
        guard let state = params["state"], !state.isEmpty, let cookieState,
            Digest.constantTimeEqual(Array(state.utf8), Array(cookieState.utf8))
        else { throw refused }
        let hash = Digest.sha256Hex(state)
        let t = Timestamp.now().millisecondsSinceEpoch
        let sql: SQL = """
            SELECT "provider", "nonce", "code_verifier", "redirect_uri", "app_challenge", "expires_at", "used_at"
            FROM "_basalt_oauth_states" WHERE "state_hash" = \(hash)
            """
        guard let row = try await store.fetchOne(sql, as: StateRow.self), row.provider == p.name, row.usedAt == nil, row.expiresAt > t else {
            throw refused
        }
        guard try await spend("_basalt_oauth_states", key: "state_hash", hash, at: t) else { throw refused }
        let back: ([(String, String)]) -> String = { OAuthServer.appending($0, to: row.redirectURI) }
        do {
            if let error = params["error"] {
                let known: Set<String> = ["access_denied", "temporarily_unavailable", "server_error", "login_required", "consent_required"]
                throw AppError(known.contains(error) ? error : "access_denied", "The provider did not sign you in (\(error))")
            }
            guard let code = params["code"], !code.isEmpty else { throw AppError("invalid_request", "The provider returned no code") }
            let identity = try await identify(p, code: code, verifier: row.verifier, nonce: row.nonce)
            let user = try await resolve(p, identity)
            let exchange = "bxc_" + Digest.randomToken(bytes: 32)
            _ = try await store.write([
                store.statement(
                    """
                    INSERT INTO "_basalt_oauth_exchanges" ("code_hash", "user_id", "provider", "app_challenge", "expires_at")
                    VALUES (\(Digest.sha256Hex(exchange)), \(user), \(p.name), \(row.appChallenge), \(t + Self.exchangeLifetime))
                    """
                )
            ])
            return back([("code", exchange)])
        } catch let e as AppError {
            logger.info("sign-in with a provider refused", metadata: ["oauth.provider": "\(p.name)", "oauth.error": "\(e.code)"])
            return back([("error", e.code), ("error_description", e.description)])
        } catch let f as ProviderFailure {
            logger.error("sign-in provider failed", metadata: ["oauth.provider": "\(p.name)", "error": "\(f)"])
            return back([("error", "temporarily_unavailable"), ("error_description", "The sign-in provider could not be reached")])
        }
    }

    /// Marks a single-use row used; false when another request did first.
    func spend(_ table: String, key: String, _ hash: String, at t: Int64) async throws -> Bool {
        do {
            _ = try await store.write([
                store.statement(
                    "UPDATE \(identifier: table) SET \"used_at\" = \(t) WHERE \(identifier: key) = \(hash) AND \"used_at\" IS NULL",
                    expect: .one
                )
            ])
            return true
        } catch StoreError.expectationFailed {
            return false
        }
    }

    struct Identity {
        var subject: String
        var email: String?
        var emailVerified: Bool
    }

    /// The code's owner at the provider: the token exchange, then the ID token (OpenID Connect)
    /// or the userinfo endpoint (plain OAuth 2.0).
    func identify(_ p: OAuthProvider, code: String, verifier: String, nonce: String) async throws -> Identity {
        let e = try await endpoints(p)
        var form: [(String, String)] = [
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", callbackURL(p)), ("code_verifier", verifier),
        ]
        var headers = [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json"), ("User-Agent", "Basalt")]
        switch p.tokenAuth {
        case .basic:
            let pair = OAuthServer.formEncode(p.clientID) + ":" + OAuthServer.formEncode(p.clientSecret)
            headers.append(("Authorization", "Basic " + Data(pair.utf8).base64EncodedString()))
        case .post:
            form += [("client_id", p.clientID), ("client_secret", p.clientSecret)]
        }
        let body = OAuthServer.formQuery(form)
        let (status, bytes) = try await send("POST", e.token, headers: headers, body: Array(body.utf8))
        guard let answer = try? JSONValue.parse(bytes), let access = answer["access_token"]?.stringValue else {
            if status == 400 { throw AppError("access_denied", "The provider refused the code") }
            throw ProviderFailure("token endpoint answered \(status)")
        }
        if p.isOpenIDConnect {
            guard let idToken = answer["id_token"]?.stringValue, let issuer = e.issuer else {
                throw AppError("invalid_id_token", "The provider returned no ID token")
            }
            let now = Timestamp.now()
            var result = await ExternalIDTokens.verify(
                idToken,
                jwks: try await jwks(p, e, fresh: false),
                issuer: issuer,
                clientID: p.clientID,
                nonce: nonce,
                now: now
            )
            if case .failure(.unknownKey) = result {
                // The provider may have rotated its keys since they were fetched.
                result = await ExternalIDTokens.verify(
                    idToken,
                    jwks: try await jwks(p, e, fresh: true),
                    issuer: issuer,
                    clientID: p.clientID,
                    nonce: nonce,
                    now: now
                )
            }
            let claims: ExternalIDClaims
            switch result {
            case .success(let c): claims = c
            case .failure(let why):
                logger.warning("provider ID token refused", metadata: ["oauth.provider": "\(p.name)", "reason": "\(why)"])
                throw AppError("invalid_id_token", "The provider's ID token could not be verified")
            }
            var identity = Identity(subject: claims.sub, email: claims.email, emailVerified: claims.emailVerified ?? false)
            if identity.email == nil, let userinfo = e.userinfo {
                let info = try await getJSON(userinfo, bearer: access)
                if info["sub"]?.stringValue == claims.sub {
                    identity.email = info["email"]?.stringValue
                    identity.emailVerified = info["email_verified"]?.boolValue ?? false
                }
            }
            return identity
        }
        guard let userinfo = e.userinfo else { throw ProviderFailure("no userinfo endpoint") }
        let info = try await getJSON(userinfo, bearer: access)
        let subject: String
        switch info[p.subjectField] {
        case .string(let s)?: subject = s
        case .int(let i)?: subject = String(i)
        default: throw AppError("invalid_request", "The provider's user has no \(p.subjectField)")
        }
        var identity = Identity(
            subject: subject,
            email: info[p.emailField]?.stringValue,
            emailVerified: p.emailVerifiedField.flatMap { info[$0]?.boolValue } ?? false
        )
        if let emails = p.emailsEndpoint, let list = try await getJSON(emails, bearer: access).arrayValue {
            // GitHub: the primary address if verified, else any verified one.
            let verified = list.filter { $0["verified"]?.boolValue == true }
            if let pick = verified.first(where: { $0["primary"]?.boolValue == true }) ?? verified.first {
                identity.email = pick["email"]?.stringValue
                identity.emailVerified = true
            }
        }
        return identity
    }

    struct IdentityRow: StoredRow {
        static let columns: [SQLColumnType] = [.text]
        var userID: String
        init(_ r: inout RowReader) { userID = r.text() ?? "" }
    }

    /// The user of this identity: linked before, or the account with its email when both sides
    /// vouch for that address, or a new account.
    func resolve(_ p: OAuthProvider, _ identity: Identity) async throws -> String {
        let sql: SQL = """
            SELECT "user_id" FROM "_basalt_identities" WHERE "provider" = \(p.name) AND "subject" = \(identity.subject)
            """
        if let linked = try await store.fetchOne(sql, as: IdentityRow.self) {
            guard let user = try await auth.records.users.current(linked.userID, fresh: true), user["disabled"]?.boolValue != true else {
                throw AppError("access_denied", "This account is disabled")
            }
            return linked.userID
        }
        guard let raw = identity.email, !raw.isEmpty else {
            throw AppError("email_required", "The provider shared no email address; allow it to, or sign up with a password")
        }
        let email = BuiltinCollections.normalizeEmail(raw)
        let now = Timestamp.now()
        let subject = identity.subject
        let provider = p.name
        let link: @Sendable (String) -> SQLStatement = { [store] userID in
            store.statement(
                """
                INSERT INTO "_basalt_identities" ("id", "user_id", "provider", "subject", "email", "created_at")
                VALUES (\(RecordID.make(at: now)), \(userID), \(provider), \(subject), \(email), \(now.millisecondsSinceEpoch))
                """
            )
        }
        if let existing = try await auth.userID(byEmail: email) {
            let user = try await auth.records.users.current(existing, fresh: true)
            guard identity.emailVerified, user?["verified"]?.boolValue == true else {
                throw AppError(
                    "account_exists",
                    "An account with this email exists; sign in to it and verify its email, with an address the provider has verified, to link them"
                )
            }
            guard user?["disabled"]?.boolValue != true else { throw AppError("access_denied", "This account is disabled") }
            do {
                _ = try await store.write([link(existing)])
            } catch StoreError.uniqueViolation {
                // Linked by a concurrent sign-in: the same outcome.
            }
            return existing
        }
        guard auth.settings.registrationOpen else { throw AppError("registration_closed", "Sign-up is closed on this server") }
        let body = JSONValue.object(JSONObject([("email", .string(email))]))
        let verified = identity.emailVerified
        let outcome = try await auth.records.execute(.create(collection: BuiltinCollections.usersName, body: body), principal: .system) {
            [store] answer in
            guard case .record(.created(_, let id, _)) = answer else { return [] }
            var statements = [
                store.statement(
                    """
                    INSERT INTO "_basalt_credentials" ("user_id", "password_hash", "updated_at") VALUES (\(id), NULL, \(now.millisecondsSinceEpoch))
                    """
                ),
                link(id),
            ]
            if verified {
                statements.append(
                    store.statement(
                        """
                        UPDATE "users" SET "verified" = \(SQLValue.bool(true)), "version" = "version" + 1, "updated_at" = \(SQLValue.timestamp(now))
                        WHERE "id" = \(SQLValue.uuid(id))
                        """
                    )
                )
            }
            return statements
        }
        guard case .created(_, let id, _) = outcome else { throw ProviderFailure("the account was not created") }
        logger.info("user registered through a provider", metadata: ["user.id": "\(id)", "oauth.provider": "\(p.name)"])
        return id
    }

    // MARK: - Exchange and identities

    struct ExchangeRow: StoredRow {
        static let columns: [SQLColumnType] = [.text, .text, .text, .int, .int]
        var userID: String
        var provider: String
        var appChallenge: String?
        var expiresAt: Int64
        var usedAt: Int64?
        init(_ r: inout RowReader) {
            userID = r.text() ?? ""
            provider = r.text() ?? ""
            appChallenge = r.text()
            expiresAt = r.int() ?? 0
            usedAt = r.int()
        }
    }

    /// `POST /v1/auth/oauth/exchange {code, code_verifier?}`: the token response of §8, once.
    public func exchange(_ body: JSONValue, client: AuthService.Client) async throws -> JSONValue {
        let invalid = BasaltError.validation([FieldError(field: "/code", code: .invalid, message: "The code is invalid, expired or already used")])
        guard let code = body["code"]?.stringValue, !code.isEmpty else {
            throw BasaltError.validation([FieldError(field: "/code", code: .required, message: "code is required")])
        }
        let hash = Digest.sha256Hex(code)
        let t = Timestamp.now().millisecondsSinceEpoch
        let sql: SQL = """
            SELECT "user_id", "provider", "app_challenge", "expires_at", "used_at" FROM "_basalt_oauth_exchanges" WHERE "code_hash" = \(hash)
            """
        guard let row = try await store.fetchOne(sql, as: ExchangeRow.self), row.usedAt == nil, row.expiresAt > t else { throw invalid }
        guard try await spend("_basalt_oauth_exchanges", key: "code_hash", hash, at: t) else { throw invalid }
        if let challenge = row.appChallenge {
            guard let verifier = body["code_verifier"]?.stringValue, OAuthServer.isPKCEValue(verifier),
                Base64URL.encode(Digest.sha256(Array(verifier.utf8))) == challenge
            else {
                throw BasaltError.validation([
                    FieldError(field: "/code_verifier", code: .invalid, message: "code_verifier does not match the flow's challenge")
                ])
            }
        }
        guard let user = try await auth.records.users.current(row.userID, fresh: true), user["disabled"]?.boolValue != true else {
            throw BasaltError(.unauthenticated, AuthService.wrongCredentials)
        }
        return try await auth.startSession(user: user, client: client, audit: "auth.login_" + row.provider)
    }

    struct LinkedRow: StoredRow {
        static let columns: [SQLColumnType] = [.text, .text, .text, .text, .int]
        var id: String
        var provider: String
        var subject: String
        var email: String?
        var createdAt: Int64
        init(_ r: inout RowReader) {
            id = r.text() ?? ""
            provider = r.text() ?? ""
            subject = r.text() ?? ""
            email = r.text()
            createdAt = r.int() ?? 0
        }
    }

    func linked(_ userID: String) async throws -> [LinkedRow] {
        try await store.fetch(
            """
            SELECT "id", "provider", "subject", "email", "created_at" FROM "_basalt_identities" WHERE "user_id" = \(userID) ORDER BY "created_at"
            """,
            as: LinkedRow.self
        )
    }

    /// `GET /v1/auth/identities`.
    public func identities(_ p: Principal) async throws -> [JSONValue] {
        let id = try auth.requireUser(p)
        return try await linked(id).map { r in
            .object(
                JSONObject([
                    ("id", .string(r.id)), ("provider", .string(r.provider)), ("subject", .string(r.subject)),
                    ("email", r.email.map(JSONValue.string) ?? .null),
                    ("created_at", .string(Timestamp(millisecondsSinceEpoch: r.createdAt).rfc3339)),
                ])
            )
        }
    }

    /// `DELETE /v1/auth/identities/{id}`: not the last way to sign in (`409`).
    public func unlink(_ p: Principal, id identity: String) async throws {
        let user = try auth.requireUser(p)
        let all = try await linked(user)
        guard all.contains(where: { $0.id == identity }) else { throw BasaltError.notFound("There is no such linked identity") }
        let hasPassword = try await auth.credentials(user)?.passwordHash != nil
        guard hasPassword || all.count > 1 else {
            throw BasaltError(.conflict, "This is the account's only way to sign in; set a password (password reset) or link another provider first")
        }
        // Conditional on what was judged: a concurrent unlink cannot leave the account with none.
        let remaining: SQL =
            hasPassword
            ? "DELETE FROM \"_basalt_identities\" WHERE \"id\" = \(identity) AND \"user_id\" = \(user)"
            : """
            DELETE FROM "_basalt_identities" WHERE "id" = \(identity) AND "user_id" = \(user)
            AND (SELECT count(*) FROM "_basalt_identities" WHERE "user_id" = \(user)) > 1
            """
        do {
            _ = try await store.write([store.statement(remaining, expect: .one)])
        } catch StoreError.expectationFailed {
            throw BasaltError(.conflict, "This is the account's only way to sign in")
        }
    }
}
