import BasaltAuth
public import BasaltCore
public import BasaltStorage
import Foundation
public import Logging

/// An OAuth error response (RFC 6749 §4.1.2.1, §5.2): the code, a description for developers,
/// and the status the token-style endpoints answer with.
public struct OAuthError: Error, Sendable, Equatable {
    public var code: String
    public var description: String
    /// 400, or 401 for `invalid_client` (answered with a Basic challenge).
    public var status: Int

    public init(_ code: String, _ description: String, status: Int = 400) {
        self.code = code
        self.description = description
        self.status = status
    }

    public static func invalidRequest(_ d: String) -> OAuthError { OAuthError("invalid_request", d) }
    public static func invalidGrant(_ d: String) -> OAuthError { OAuthError("invalid_grant", d) }
    public static func invalidScope(_ d: String) -> OAuthError { OAuthError("invalid_scope", d) }
    public static func invalidClient(_ d: String) -> OAuthError { OAuthError("invalid_client", d, status: 401) }

    public var json: JSONValue {
        .object(JSONObject([("error", .string(code)), ("error_description", .string(description))]))
    }
}

/// Basalt as an OAuth 2.1 authorization server and OpenID provider (API.md §8.1): authorization
/// codes with PKCE `S256` for users, `client_credentials` for services, refresh tokens through
/// the same rotating families as Basalt's own sign-in (AuthService.rotate), revocation,
/// introspection, userinfo and ID tokens. Every token is an access JWT of AccessTokens with a
/// session (`sid`), so ending a session ends what was issued from it, whichever way.
public final class OAuthServer: Sendable {
    public let auth: AuthService
    public let clients: OAuthClients
    let store: any Store
    let logger: Logger
    /// How long an authorization code may wait for its exchange (RFC 6749 §4.1.2: short).
    let codeLifetime: Int64 = 60_000

    public init(auth: AuthService, clients: OAuthClients, logger: Logger) {
        self.auth = auth
        self.clients = clients
        self.store = auth.store
        self.logger = logger
    }

    public var issuer: String { auth.tokens.settings.issuer }

    /// Deletes a client: every session it held ends, and with it every token of those sessions,
    /// the client's own and the users' it was granted, at once here (API.md §8.1).
    public func deleteClient(_ id: String, also: [SQLStatement] = []) async throws {
        for subject in try await clients.delete(id, also: also) { auth.records.users.forget(subject) }
    }

    // MARK: - Discovery

    /// RFC 8414 metadata, also served as the OpenID Provider configuration.
    public func metadata(openID: Bool) -> JSONValue {
        let base = issuer
        // Only collections anyone may see are named: the document is public, and the schema's
        // other names are not (RFC 8414 lets a server leave scopes out).
        let collectionScopes = auth.schemas.current.schema.collections.filter { c in
            AccessAction.allCases.contains { a in c.access[a].contains { $0.who == .public } }
        }.flatMap { [$0.name + ":read", $0.name + ":write"] }
        let strings: ([String]) -> JSONValue = { .array($0.map { .string($0) }) }
        var o = JSONObject([
            ("issuer", .string(base)),
            ("authorization_endpoint", .string(base + "/oauth/authorize")),
            ("token_endpoint", .string(base + "/oauth/token")),
            ("jwks_uri", .string(base + "/.well-known/jwks.json")),
            ("revocation_endpoint", .string(base + "/oauth/revoke")),
            ("introspection_endpoint", .string(base + "/oauth/introspect")),
            ("userinfo_endpoint", .string(base + "/oauth/userinfo")),
            ("scopes_supported", strings(["openid", "profile", "email", "offline_access"] + collectionScopes)),
            ("response_types_supported", strings(["code"])),
            ("response_modes_supported", strings(["query"])),
            ("grant_types_supported", strings(OAuthClient.Grant.allCases.map(\.rawValue))),
            ("code_challenge_methods_supported", strings(["S256"])),
            ("token_endpoint_auth_methods_supported", strings(["client_secret_basic", "client_secret_post", "none"])),
            ("revocation_endpoint_auth_methods_supported", strings(["client_secret_basic", "client_secret_post", "none"])),
            ("introspection_endpoint_auth_methods_supported", strings(["client_secret_basic", "client_secret_post"])),
            ("authorization_response_iss_parameter_supported", .bool(true)),
            ("subject_types_supported", strings(["public"])),
            ("id_token_signing_alg_values_supported", strings(["EdDSA"])),
            ("claims_supported", strings(["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "email", "email_verified"])),
        ])
        if !openID { o["subject_types_supported"] = nil }
        return .object(o)
    }

    // MARK: - Authorization requests

    /// A checked authorization request: the client, its exact redirect URI, what it asks for.
    public struct AuthorizationRequest: Sendable {
        public var client: OAuthClient
        public var redirectURI: String
        public var scope: [String]
        public var state: String?
        public var codeChallenge: String
        public var nonce: String?

        /// The request's parameters as the consent form carries them back.
        public var parameters: [(String, String)] {
            var p: [(String, String)] = [
                ("response_type", "code"), ("client_id", client.id), ("redirect_uri", redirectURI), ("scope", scope.joined(separator: " ")),
                ("code_challenge", codeChallenge), ("code_challenge_method", "S256"),
            ]
            if let state { p.append(("state", state)) }
            if let nonce { p.append(("nonce", nonce)) }
            return p
        }
    }

    /// Why an authorization request was refused: before the redirect URI is trusted, the user is
    /// told on the page (never redirected to an unchecked URI, RFC 6749 §4.1.2.1); after, the
    /// client is told at its redirect URI.
    public enum AuthorizationRefusal: Error, Sendable {
        case page(String)
        case redirect(String)
    }

    /// Checks an authorization request's parameters (query or form). Parameters may not repeat
    /// (RFC 6749 §3.1).
    public func authorizationRequest(_ pairs: [(String, String)]) async throws -> Result<AuthorizationRequest, AuthorizationRefusal> {
        var p: [String: String] = [:]
        var repeated: String?
        for (k, v) in pairs {
            if p[k] != nil { repeated = k }
            p[k] = v
        }
        if let repeated, repeated == "client_id" || repeated == "redirect_uri" {
            return .failure(.page("The request names \(repeated) more than once."))
        }
        guard let clientID = p["client_id"], !clientID.isEmpty, let client = try await clients.client(clientID) else {
            return .failure(.page("The application is not registered here (unknown client_id)."))
        }
        guard let redirect = p["redirect_uri"], client.redirectURIs.contains(redirect) else {
            return .failure(.page("The redirect_uri is missing or is not one registered for \(client.name); it must match exactly."))
        }
        let state = p["state"]
        let fail: (String, String) -> Result<AuthorizationRequest, AuthorizationRefusal> = { code, description in
            .failure(.redirect(self.redirectURL(redirect, [("error", code), ("error_description", description)], state: state)))
        }
        if let repeated {
            return fail("invalid_request", "The parameter \(repeated) appears more than once")
        }
        guard client.grants.contains(.authorizationCode) else {
            return fail("unauthorized_client", "This client may not use the authorization code grant")
        }
        guard p["response_type"] == "code" else { return fail("unsupported_response_type", "response_type must be code") }
        guard let challenge = p["code_challenge"], Self.isPKCEValue(challenge) else {
            return fail("invalid_request", "PKCE is required: code_challenge (43-128 characters of A-Z a-z 0-9 - . _ ~) with S256")
        }
        guard p["code_challenge_method"] == "S256" else { return fail("invalid_request", "code_challenge_method must be S256") }
        if (state?.utf8.count ?? 0) > 1000 || (p["nonce"]?.utf8.count ?? 0) > 1000 {
            return fail("invalid_request", "state and nonce are at most 1000 bytes")
        }
        // There is no browser session to reuse: every authorization signs in on the page, which
        // `prompt=none` forbids (OpenID Connect Core §3.1.2.6).
        if (p["prompt"] ?? "").split(separator: " ").contains("none") {
            return fail("login_required", "The user must sign in; this server keeps no browser session")
        }
        let scope: [String]
        switch grantedScope(p["scope"], client: client, identityAllowed: true) {
        case .success(let s): scope = s
        case .failure(let e): return fail(e.code, e.description)
        }
        return .success(
            AuthorizationRequest(client: client, redirectURI: redirect, scope: scope, state: state, codeChallenge: challenge, nonce: p["nonce"])
        )
    }

    /// The scope a client may have: what it asks for (all of its registered scopes when it asks
    /// for none), each one registered for it.
    func grantedScope(_ requested: String?, client: OAuthClient, identityAllowed: Bool) -> Result<[String], OAuthError> {
        let allowed = Set(client.scopes)
        var asked = OAuthScopes.parse(requested ?? "")
        if asked.isEmpty { asked = client.scopes.filter { identityAllowed || !OAuthScopes.identity.contains($0) } }
        for s in asked {
            if !OAuthScopes.isValid(s) { return .failure(.invalidScope("\(s) is not a scope of this server")) }
            if !allowed.contains(s) { return .failure(.invalidScope("\(s) is not a scope this client may have")) }
            if !identityAllowed && OAuthScopes.identity.contains(s) {
                return .failure(.invalidScope("\(s) is about a user; a client's own token has none"))
            }
        }
        return .success(asked)
    }

    /// RFC 7636 §4.1: 43–128 unreserved characters.
    static func isPKCEValue(_ s: String) -> Bool {
        (43...128).contains(s.utf8.count)
            && s.utf8.allSatisfy { c in
                (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x2D || c == 0x2E || c == 0x5F || c == 0x7E
            }
    }

    /// `uri` with `params`, `state` and `iss` (RFC 9207) added to its query.
    public func redirectURL(_ uri: String, _ params: [(String, String)], state: String?) -> String {
        var all = params
        if let state { all.append(("state", state)) }
        all.append(("iss", issuer))
        return Self.appending(all, to: uri)
    }

    /// `application/x-www-form-urlencoded` of `pairs`.
    static func formQuery(_ pairs: [(String, String)]) -> String {
        pairs.map { formEncode($0.0) + "=" + formEncode($0.1) }.joined(separator: "&")
    }

    /// `uri` with `pairs` added to its query.
    static func appending(_ pairs: [(String, String)], to uri: String) -> String {
        uri + (uri.contains("?") ? "&" : "?") + formQuery(pairs)
    }

    static func formEncode(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)..<Unicode.Scalar(128)))
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    /// The user consented (signed in on the page): a single-use code for the client, stored
    /// hashed, and the redirect that carries it. The consent is audited with the code.
    public func issueCode(_ request: AuthorizationRequest, user: JSONObject, client address: AuthService.Client) async throws -> String {
        let code = "bac_" + Digest.randomToken(bytes: 32)
        let now = Timestamp.now()
        let t = now.millisecondsSinceEpoch
        let userID = user["id"]?.stringValue ?? ""
        let scope = request.scope.joined(separator: " ")
        let detail = JSONValue.object(
            JSONObject([("client_id", .string(request.client.id)), ("scope", .string(scope)), ("address", .string(address.address))])
        )
        _ = try await store.write([
            store.statement(
                """
                INSERT INTO "_basalt_oauth_codes" ("code_hash", "client_id", "user_id", "redirect_uri", "scope", "code_challenge", "nonce",
                  "auth_time", "expires_at")
                VALUES (\(Digest.sha256Hex(code)), \(request.client.id), \(userID), \(request.redirectURI), \(scope), \(request.codeChallenge),
                        \(request.nonce), \(t), \(t + codeLifetime))
                """
            ),
            auth.audit.statement(
                AuditLog.Entry(
                    actor: "sub:" + userID,
                    action: "oauth.consent",
                    collection: BuiltinCollections.usersName,
                    recordID: userID,
                    detail: detail
                ),
                at: now
            ),
        ])
        return redirectURL(request.redirectURI, [("code", code)], state: request.state)
    }

    /// The user said no.
    public func deniedRedirect(_ request: AuthorizationRequest) -> String {
        redirectURL(request.redirectURI, [("error", "access_denied"), ("error_description", "The user denied the request")], state: request.state)
    }

    // MARK: - Client authentication

    /// Credentials as presented: HTTP Basic (RFC 6749 §2.3.1, each part form-encoded) or the body.
    public struct PresentedClient: Sendable {
        public var id: String
        public var secret: String?

        public init(id: String, secret: String?) {
            self.id = id
            self.secret = secret
        }
    }

    /// The client these credentials prove: a confidential client needs its secret, a public one
    /// must not send one.
    func authenticate(_ presented: PresentedClient?, requireConfidential: Bool = false) async throws -> OAuthClient {
        var refusal = OAuthError.invalidClient("Client authentication failed")
        guard let presented, let client = try await clients.client(presented.id) else { throw refusal }
        if let hash = client.secretHash {
            guard let secret = presented.secret, Digest.constantTimeEqual(Array(Digest.sha256Hex(secret).utf8), Array(hash.utf8)) else {
                throw refusal
            }
        } else {
            guard presented.secret == nil || presented.secret == "" else { throw refusal }
            if requireConfidential {
                refusal.description = "Only a confidential client may call this endpoint"
                throw refusal
            }
        }
        return client
    }

    // MARK: - Token endpoint

    /// `POST /oauth/token`.
    public func token(_ form: [String: String], client presented: PresentedClient?, caller: AuthService.Client) async throws -> JSONValue {
        let client = try await authenticate(presented)
        switch form["grant_type"] {
        case "authorization_code"?:
            guard client.grants.contains(.authorizationCode) else { throw OAuthError("unauthorized_client", "This client may not use this grant") }
            return try await exchangeCode(form, client: client, caller: caller)
        case "refresh_token"?:
            guard client.grants.contains(.refreshToken) else { throw OAuthError("unauthorized_client", "This client may not use this grant") }
            return try await refresh(form, client: client)
        case "client_credentials"?:
            guard client.grants.contains(.clientCredentials), client.isConfidential else {
                throw OAuthError("unauthorized_client", "This client may not use the client_credentials grant")
            }
            return try await clientCredentials(form, client: client, caller: caller)
        case nil: throw OAuthError.invalidRequest("grant_type is required")
        default: throw OAuthError("unsupported_grant_type", "grant_type must be authorization_code, refresh_token or client_credentials")
        }
    }

    struct CodeRow: StoredRow {
        static let columns: [SQLColumnType] = [.text, .text, .text, .text, .text, .text, .int, .int, .int, .text]
        var clientID: String
        var userID: String
        var redirectURI: String
        var scope: String
        var challenge: String
        var nonce: String?
        var authTime: Int64
        var expiresAt: Int64
        var usedAt: Int64?
        var sessionID: String?
        init(_ r: inout RowReader) {
            clientID = r.text() ?? ""
            userID = r.text() ?? ""
            redirectURI = r.text() ?? ""
            scope = r.text() ?? ""
            challenge = r.text() ?? ""
            nonce = r.text()
            authTime = r.int() ?? 0
            expiresAt = r.int() ?? 0
            usedAt = r.int()
            sessionID = r.text()
        }
    }

    func exchangeCode(_ form: [String: String], client: OAuthClient, caller: AuthService.Client) async throws -> JSONValue {
        guard let code = form["code"], !code.isEmpty else { throw OAuthError.invalidRequest("code is required") }
        guard let verifier = form["code_verifier"] else { throw OAuthError.invalidRequest("code_verifier is required (PKCE)") }
        let hash = Digest.sha256Hex(code)
        let sql: SQL = """
            SELECT "client_id", "user_id", "redirect_uri", "scope", "code_challenge", "nonce", "auth_time", "expires_at", "used_at", "session_id"
            FROM "_basalt_oauth_codes" WHERE "code_hash" = \(hash)
            """
        let invalid = OAuthError.invalidGrant("The code is invalid, expired, already used, or was issued to another client or redirect URI")
        guard let row = try await store.fetchOne(sql, as: CodeRow.self), row.clientID == client.id else { throw invalid }
        let now = Timestamp.now()
        let t = now.millisecondsSinceEpoch
        if row.usedAt != nil {
            // A code presented twice: someone else has it. What it issued is revoked (RFC 6749 §4.1.2).
            try await revokeSession(row.sessionID, user: row.userID)
            logger.warning("authorization code replayed: its tokens revoked", metadata: ["oauth.client_id": "\(client.id)"])
            throw invalid
        }
        guard row.expiresAt > t, form["redirect_uri"] == row.redirectURI else { throw invalid }
        guard Self.isPKCEValue(verifier), Base64URL.encode(Digest.sha256(Array(verifier.utf8))) == row.challenge else {
            throw OAuthError.invalidGrant("The code_verifier does not match the code_challenge")
        }
        guard let user = try await auth.records.users.current(row.userID, fresh: true), user["disabled"]?.boolValue != true else { throw invalid }
        let opened = auth.openSession(subject: row.userID, client: caller, now: now)
        do {
            _ = try await store.write(
                [
                    store.statement(
                        """
                        UPDATE "_basalt_oauth_codes" SET "used_at" = \(t), "session_id" = \(opened.id) WHERE "code_hash" = \(hash) AND "used_at" IS NULL
                        """,
                        expect: .one
                    )
                ] + opened.statements + [grantStatement(session: opened.id, client: client.id, scope: row.scope)]
            )
        } catch StoreError.expectationFailed {
            // Exchanged twice at once: the other exchange's session goes, as with a replay.
            let again = try await store.fetchOne(sql, as: CodeRow.self)
            try await revokeSession(again?.sessionID, user: row.userID)
            throw invalid
        }
        let scope = OAuthScopes.parse(row.scope)
        let refresh = scope.contains("offline_access") && client.grants.contains(.refreshToken) ? opened.refresh : nil
        let idToken =
            scope.contains("openid")
            ? try await self.idToken(user: user, client: client.id, scope: scope, nonce: row.nonce, authTime: row.authTime, now: now) : nil
        return try await tokenResponse(
            user: user,
            session: opened.id,
            client: client.id,
            scope: row.scope,
            refresh: refresh,
            idToken: idToken,
            now: now
        )
    }

    func grantStatement(session: String, client: String, scope: String) -> SQLStatement {
        store.statement("INSERT INTO \"_basalt_oauth_sessions\" (\"session_id\", \"client_id\", \"scope\") VALUES (\(session), \(client), \(scope))")
    }

    func revokeSession(_ session: String?, user: String) async throws {
        guard let session else { return }
        _ = try await store.write([
            store.statement(
                """
                UPDATE "_basalt_sessions" SET "revoked_at" = \(Timestamp.now().millisecondsSinceEpoch) WHERE "id" = \(session) AND "revoked_at" IS NULL
                """
            )
        ])
        auth.records.users.forget(user)
    }

    func refresh(_ form: [String: String], client: OAuthClient) async throws -> JSONValue {
        guard let token = form["refresh_token"], !token.isEmpty else { throw OAuthError.invalidRequest("refresh_token is required") }
        let rotation: AuthService.Rotation
        do {
            rotation = try await auth.rotate(refreshToken: token, forClient: client.id)
        } catch let e as BasaltError where e.code == .unauthenticated {
            throw OAuthError.invalidGrant("The refresh token is invalid, expired or revoked")
        }
        // A narrower scope may be asked for (RFC 6749 §6); the family keeps the one granted.
        var scope = rotation.scope
        if let asked = form["scope"], !asked.isEmpty {
            let granted = Set(OAuthScopes.parse(rotation.scope))
            let narrower = OAuthScopes.parse(asked)
            guard narrower.allSatisfy(granted.contains) else { throw OAuthError.invalidScope("A refresh cannot widen the granted scope") }
            scope = narrower.joined(separator: " ")
        }
        return try await tokenResponse(
            user: rotation.user,
            session: rotation.session,
            client: client.id,
            scope: scope,
            refresh: rotation.next,
            idToken: nil,
            now: rotation.now
        )
    }

    func clientCredentials(_ form: [String: String], client: OAuthClient, caller: AuthService.Client) async throws -> JSONValue {
        let scope: [String]
        switch grantedScope(form["scope"], client: client, identityAllowed: false) {
        case .success(let s): scope = s
        case .failure(let e): throw e
        }
        let now = Timestamp.now()
        // The session lives as long as the token: nothing refreshes it.
        let lifetime = auth.tokens.settings.lifetime
        let opened = auth.openSession(subject: client.id, client: caller, lifetime: lifetime, now: now)
        let scopeText = scope.joined(separator: " ")
        _ = try await store.write(opened.statements + [grantStatement(session: opened.id, client: client.id, scope: scopeText)])
        let roles = auth.schemas.current.effectiveRoles(Set(client.roles))
        let claims = auth.tokens.claims(subject: client.id, session: opened.id, roles: Array(roles), scope: scopeText, clientID: client.id, now: now)
        return .object(
            JSONObject([
                ("access_token", .string(try await auth.tokens.sign(claims))), ("token_type", .string("Bearer")),
                ("expires_in", .int(Int64(lifetime.components.seconds))), ("scope", .string(scopeText)),
            ])
        )
    }

    func tokenResponse(
        user: JSONObject,
        session: String,
        client: String,
        scope: String,
        refresh: String?,
        idToken: String?,
        now: Timestamp
    ) async throws -> JSONValue {
        let roles = auth.schemas.current.effectiveRoles(Set(AuthService.roles(of: user)))
        let claims = auth.tokens.claims(
            subject: user["id"]?.stringValue ?? "",
            session: session,
            roles: Array(roles),
            scope: scope,
            clientID: client,
            now: now
        )
        var o = JSONObject([
            ("access_token", .string(try await auth.tokens.sign(claims))), ("token_type", .string("Bearer")),
            ("expires_in", .int(Int64(auth.tokens.settings.lifetime.components.seconds))), ("scope", .string(scope)),
        ])
        if let refresh { o.append("refresh_token", .string(refresh)) }
        if let idToken { o.append("id_token", .string(idToken)) }
        return .object(o)
    }

    func idToken(user: JSONObject, client: String, scope: [String], nonce: String?, authTime: Int64, now: Timestamp) async throws -> String {
        let iat = now.millisecondsSinceEpoch / 1000
        let email = scope.contains("email")
        let claims = IDTokenClaims(
            iss: issuer,
            sub: user["id"]?.stringValue ?? "",
            aud: client,
            exp: iat + Int64(auth.tokens.settings.lifetime.components.seconds),
            iat: iat,
            authTime: authTime / 1000,
            nonce: nonce,
            email: email ? user["email"]?.stringValue : nil,
            emailVerified: email ? (user["verified"]?.boolValue ?? false) : nil
        )
        return try await auth.tokens.sign(claims)
    }

    // MARK: - Revocation, introspection, userinfo

    struct RefreshGrantRow: StoredRow {
        static let columns: [SQLColumnType] = [.text, .text, .text, .text, .int, .int, .int]
        var sessionID: String
        var userID: String
        var clientID: String
        var scope: String
        var usedAt: Int64?
        var revokedAt: Int64?
        var expiresAt: Int64
        init(_ r: inout RowReader) {
            sessionID = r.text() ?? ""
            userID = r.text() ?? ""
            clientID = r.text() ?? ""
            scope = r.text() ?? ""
            usedAt = r.int()
            revokedAt = r.int()
            expiresAt = r.int() ?? 0
        }
    }

    func refreshGrant(_ token: String) async throws -> RefreshGrantRow? {
        try await store.fetchOne(
            """
            SELECT s."id", s."user_id", o."client_id", o."scope", t."used_at", s."revoked_at", s."expires_at"
            FROM "_basalt_refresh_tokens" t JOIN "_basalt_sessions" s ON s."id" = t."session_id"
            JOIN "_basalt_oauth_sessions" o ON o."session_id" = s."id" WHERE t."token_hash" = \(Digest.sha256Hex(token))
            """,
            as: RefreshGrantRow.self
        )
    }

    /// `POST /oauth/revoke` (RFC 7009): a refresh or access token of this client ends its session
    /// (both kinds of token with it). Unknown tokens, and other clients' tokens, change nothing
    /// and are no error.
    public func revoke(_ form: [String: String], client presented: PresentedClient?) async throws {
        let client = try await authenticate(presented)
        guard let token = form["token"], !token.isEmpty else { throw OAuthError.invalidRequest("token is required") }
        if token.hasPrefix("bsr_") {
            if let g = try await refreshGrant(token), g.clientID == client.id { try await revokeSession(g.sessionID, user: g.userID) }
            return
        }
        if case .success(let claims) = await auth.tokens.verify(token, now: .now()), claims.clientID == client.id {
            try await revokeSession(claims.sid, user: claims.sub)
        }
    }

    /// `POST /oauth/introspect` (RFC 7662), for confidential clients (resource servers).
    public func introspect(_ form: [String: String], client presented: PresentedClient?) async throws -> JSONValue {
        _ = try await authenticate(presented, requireConfidential: true)
        guard let token = form["token"], !token.isEmpty else { throw OAuthError.invalidRequest("token is required") }
        let inactive = JSONValue.object(JSONObject([("active", .bool(false))]))
        if token.hasPrefix("bsr_") {
            let t = Timestamp.now().millisecondsSinceEpoch
            guard let g = try await refreshGrant(token), g.usedAt == nil, g.revokedAt == nil, g.expiresAt > t else { return inactive }
            if g.userID != g.clientID {
                guard let user = try await auth.records.users.current(g.userID), user["disabled"]?.boolValue != true else { return inactive }
            }
            return .object(
                JSONObject([
                    ("active", .bool(true)), ("scope", .string(g.scope)), ("client_id", .string(g.clientID)), ("sub", .string(g.userID)),
                    ("exp", .int(g.expiresAt / 1000)), ("iss", .string(issuer)), ("token_type", .string("refresh_token")),
                ])
            )
        }
        guard let c = try await auth.liveClaims(ofAccessToken: token) else { return inactive }
        var o = JSONObject([
            ("active", .bool(true)), ("scope", .string(c.scope)), ("sub", .string(c.sub)), ("exp", .int(c.exp)), ("iat", .int(c.iat)),
            ("nbf", .int(c.nbf)), ("iss", .string(c.iss)), ("aud", .string(c.aud)), ("jti", .string(c.jti)), ("token_type", .string("Bearer")),
        ])
        if let id = c.clientID { o.append("client_id", .string(id)) }
        return .object(o)
    }

    /// `GET /oauth/userinfo` (OpenID Connect Core §5.3): the claims the token's scope allows.
    public func userinfo(_ p: Principal) throws(BasaltError) -> JSONValue {
        guard let grant = p.oauth, grant.identityScopes.contains("openid"), let user = p.user else {
            throw BasaltError(.forbidden, "The access token does not carry the openid scope", bearerError: "insufficient_scope")
        }
        var o = JSONObject([("sub", .string(user["id"]?.stringValue ?? ""))])
        if grant.identityScopes.contains("email") {
            o.append("email", user["email"] ?? .null)
            o.append("email_verified", .bool(user["verified"]?.boolValue ?? false))
        }
        if grant.identityScopes.contains("profile"), let updated = user["updated"]?.stringValue.flatMap(Timestamp.init(rfc3339:)) {
            o.append("updated_at", .int(updated.millisecondsSinceEpoch / 1000))
        }
        return .object(o)
    }
}
