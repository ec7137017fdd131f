public import BasaltAuth
public import BasaltCore
public import BasaltStorage
import Foundation
public import Logging
import Synchronization

/// Identity use cases (API.md §8): registration, sign-in with optional TOTP, refresh-token
/// families, sessions, the mail flows, MFA, and turning an access token into a `Principal`.
public final class AuthService: Sendable {
    public struct Settings: Sendable {
        public var sessionLifetime: Duration = .seconds(30 * 86_400)
        public var verifyTokenLifetime: Duration = .seconds(86_400)
        public var resetTokenLifetime: Duration = .seconds(3_600)
        /// At most one reset mail per account in this time, however many requests come in.
        public var resetMailInterval: Duration = .seconds(300)
        public var emailChangeTokenLifetime: Duration = .seconds(86_400)
        /// Where links in mails point (a front end that posts the token back); default: the public URL.
        public var appURL: String
        /// The name shown in authenticator apps and mail subjects.
        public var productName: String = "Basalt"
        /// Whether anyone may sign up (`POST /v1/auth/register`); closed, only admins create users.
        public var registrationOpen = true
        public init(appURL: String) { self.appURL = appURL }
    }

    public let store: any Store
    public let records: RecordService
    public let schemas: SchemaService
    public let tokens: AccessTokens
    public let hasher: any PasswordHasher
    public let policy: PasswordPolicy
    public let throttle: LoginThrottle
    public let mail: MailOutbox
    public let secrets: SecretBox
    public let settings: Settings
    let audit: AuditLog
    let logger: Logger
    /// A hash verified when the email is unknown, so that path costs what a real check costs.
    let decoy = Mutex<String?>(nil)
    /// Last time the signing keys were re-read because a token named an unknown key.
    let lastKeyReload = Mutex<Int64>(0)
    /// Principals of tokens already authenticated, while what they were made from holds.
    let principals = TokenPrincipals()

    public init(
        store: any Store,
        records: RecordService,
        schemas: SchemaService,
        tokens: AccessTokens,
        hasher: any PasswordHasher,
        policy: PasswordPolicy,
        throttle: LoginThrottle,
        mail: MailOutbox,
        secrets: SecretBox,
        settings: Settings,
        logger: Logger
    ) {
        self.store = store
        self.records = records
        self.schemas = schemas
        self.tokens = tokens
        self.hasher = hasher
        self.policy = policy
        self.throttle = throttle
        self.mail = mail
        self.secrets = secrets
        self.settings = settings
        self.audit = AuditLog(store: store)
        self.logger = logger
    }

    public struct Client: Sendable {
        public var address: String
        public var userAgent: String?
        public init(address: String, userAgent: String?) {
            self.address = address
            self.userAgent = userAgent
        }
    }

    static let wrongCredentials = "The email or password is wrong, or the account is disabled"

    // MARK: - Registration and sign-in

    /// `POST /v1/auth/register`: creates the user (profile fields validated like any record)
    /// and its credentials in one transaction.
    public func register(_ body: JSONValue, client: Client) async throws -> JSONValue {
        guard settings.registrationOpen else {
            throw BasaltError(.forbidden, "Sign-up is closed on this server; an admin creates accounts")
        }
        guard case .object(var o) = body else { throw BasaltError.badRequest("The body must be a JSON object") }
        guard case .string(let password)? = o["password"] else {
            throw BasaltError.validation([FieldError(field: "/password", code: .required, message: "password is required")])
        }
        o["password"] = nil
        // The server picks a user's id (a client-chosen one would let ids be predicted or squatted).
        if o["id"] != nil {
            throw BasaltError.validation([FieldError(field: "/id", code: .readOnly, message: "id is set by the server")])
        }
        let email = BuiltinCollections.normalizeEmail(o["email"]?.stringValue ?? "")
        let problems = policy.check(password, email: email)
        if !problems.isEmpty { throw BasaltError.validation(problems) }
        if o["email"]?.stringValue != nil { o["email"] = .string(email) }
        let hash = try await hasher.hash(password)
        let now = Timestamp.now()
        let outcome = try await records.execute(.create(collection: BuiltinCollections.usersName, body: .object(o)), principal: .system) {
            [self] answer in
            guard case .record(.created(_, let id, _)) = answer else { return [] }
            return [
                store.statement(
                    """
                    INSERT INTO "_basalt_credentials" ("user_id", "password_hash", "updated_at")
                    VALUES (\(id), \(hash), \(now.millisecondsSinceEpoch))
                    """
                )
            ]
        }
        guard case .created(_, let id, let user?) = outcome else { throw BasaltError(.internalError, "registration made no user") }
        logger.info("user registered", metadata: ["user.id": "\(id)"])
        return .object(user)
    }

    struct Credentials {
        var passwordHash: String?
        var totpSecret: String?
        /// The secret as stored (sealed), to make a change conditional on it.
        var totpSealed: String?
        var totpEnabled: Bool
        var totpLastStep: Int64?
    }

    struct CredentialsRow: StoredRow {
        static let columns: [SQLColumnType] = [.text, .text, .int, .int]
        var passwordHash: String?
        var totpSealed: String?
        var totpEnabled: Bool
        var totpLastStep: Int64?
        init(_ r: inout RowReader) {
            passwordHash = r.text()
            totpSealed = r.text()
            totpEnabled = r.flag()
            totpLastStep = r.int()
        }
    }

    func credentials(_ userID: String) async throws -> Credentials? {
        let sql: SQL = """
            SELECT "password_hash", "totp_secret", "totp_enabled", "totp_last_step" FROM "_basalt_credentials" WHERE "user_id" = \(userID)
            """
        guard let row = try await store.fetchOne(sql, as: CredentialsRow.self) else { return nil }
        let secret = try row.totpSealed.map { String(decoding: try secrets.open($0), as: UTF8.self) }
        return Credentials(
            passwordHash: row.passwordHash,
            totpSecret: secret,
            totpSealed: row.totpSealed,
            totpEnabled: row.totpEnabled,
            totpLastStep: row.totpLastStep
        )
    }

    struct UserIDRow: StoredRow {
        static let columns: [SQLColumnType] = [.uuid]
        var id: String?
        init(_ r: inout RowReader) { id = r.text() }
    }

    func userID(byEmail email: String) async throws -> String? {
        try await store.fetchOne("SELECT \"id\" FROM \"users\" WHERE \"email\" = \(email)", as: UserIDRow.self)?.id
    }

    public func decoyHash() async throws -> String {
        if let d = decoy.withLock({ $0 }) { return d }
        let d = try await hasher.hash(Digest.randomToken(bytes: 16))
        decoy.withLock { $0 = d }
        return d
    }

    /// `POST /v1/auth/login`. Unknown email, wrong password and a disabled account take the same
    /// path through the password hash and give the same 401.
    public func login(_ body: JSONValue, client: Client) async throws -> JSONValue {
        guard case .object(let o) = body, let rawEmail = o["email"]?.stringValue, let password = o["password"]?.stringValue else {
            throw BasaltError.validation([FieldError(field: "/email", code: .required, message: "email and password are required")])
        }
        let user = try await signIn(email: rawEmail, password: password, otp: o["otp"]?.stringValue, client: client)
        return try await startSession(user: user, client: client, audit: "auth.login")
    }

    /// The user whose email, password (and second factor, when enrolled) these are — throttled,
    /// audited when refused, in constant work for unknown emails. Every sign-in form uses it: the
    /// API's and the authorization server's page.
    public func signIn(email rawEmail: String, password: String, otp: String?, client: Client) async throws -> JSONObject {
        let email = BuiltinCollections.normalizeEmail(rawEmail)
        try throttle.begin(email: email, address: client.address)
        let id = try await userID(byEmail: email)
        // The same reads whether or not the address has an account (an unknown one reads a
        // nil id): only the password hash's outcome differs, not the work before it.
        let probe = id ?? "00000000-0000-0000-0000-000000000000"
        let creds = try await credentials(probe)
        let user = try await records.users.current(probe, fresh: true)
        var stored = creds?.passwordHash
        if stored == nil { stored = try await decoyHash() }
        let check = try await hasher.verify(password, against: stored ?? "")
        guard check != .mismatch, let id, let creds, creds.passwordHash != nil, let user, user["id"]?.stringValue == id,
            user["disabled"]?.boolValue != true
        else {
            throttle.failed(email: email, address: client.address)
            try await auditRefusedSignIn(email: email, reason: "credentials", client: client)
            throw BasaltError(.unauthenticated, Self.wrongCredentials)
        }
        if creds.totpEnabled {
            guard let otp, !otp.isEmpty else {
                throw BasaltError(.mfaRequired, "A one-time code (otp) from the authenticator app or a recovery code is required")
            }
            guard try await consumeSecondFactor(id, creds, otp) else {
                throttle.failed(email: email, address: client.address)
                try await auditRefusedSignIn(email: email, reason: "second_factor", client: client)
                throw BasaltError(.mfaRequired, "The one-time code is wrong or was already used")
            }
        }
        throttle.succeeded(email: email, address: client.address)
        if check == .matchNeedsRehash {
            let fresh = try await hasher.hash(password)
            _ = try await store.write([
                store.statement(
                    """
                    UPDATE "_basalt_credentials" SET "password_hash" = \(fresh), "updated_at" = \(Timestamp.now().millisecondsSinceEpoch)
                    WHERE "user_id" = \(id)
                    """
                )
            ])
        }
        return user
    }

    /// A refused sign-in, in the audit log: who tried which account from where (API.md §12).
    func auditRefusedSignIn(email: String, reason: String, client: Client) async throws {
        try await audit.record(
            AuditLog.Entry(
                actor: "anon:" + client.address,
                action: "auth.login_refused",
                collection: BuiltinCollections.usersName,
                detail: .object(JSONObject([("email", .string(email)), ("reason", .string(reason))]))
            )
        )
    }

    /// A TOTP code (not replayed within its window) or an unused recovery code.
    func consumeSecondFactor(_ userID: String, _ creds: Credentials, _ otp: String) async throws -> Bool {
        let code = otp.replacingOccurrences(of: " ", with: "")
        if let secret = creds.totpSecret, let step = OneTimePasswords.matchingStep(secret: secret, code: code, at: .now(), after: creds.totpLastStep)
        {
            // Conditional on the last step, so two concurrent logins cannot both use one code.
            do {
                _ = try await store.write([
                    store.statement(
                        """
                        UPDATE "_basalt_credentials" SET "totp_last_step" = \(step)
                        WHERE "user_id" = \(userID) AND ("totp_last_step" IS NULL OR "totp_last_step" < \(step))
                        """,
                        expect: .one
                    )
                ])
                return true
            } catch StoreError.expectationFailed {
                return false
            }
        }
        let normalized = code.lowercased().replacingOccurrences(of: "-", with: "")
        guard normalized.count == 10 else { return false }
        do {
            _ = try await store.write([
                store.statement(
                    """
                    UPDATE "_basalt_recovery_codes" SET "used_at" = \(Timestamp.now().millisecondsSinceEpoch)
                    WHERE "user_id" = \(userID) AND "code_hash" = \(Digest.sha256Hex(normalized)) AND "used_at" IS NULL
                    """,
                    expect: .one
                )
            ])
            return true
        } catch StoreError.expectationFailed {
            return false
        }
    }

    /// Opens a session (a refresh-token family) and answers with the token response. `action`
    /// names the audit entry written with it (a sign-in), if any.
    func startSession(user: JSONObject, client: Client, audit action: String? = nil) async throws -> JSONValue {
        let now = Timestamp.now()
        let userID = user["id"]?.stringValue ?? ""
        let opened = openSession(subject: userID, client: client, now: now)
        var statements = opened.statements
        if let action {
            let detail = JSONValue.object(JSONObject([("address", .string(client.address))]))
            let entry = AuditLog.Entry(
                actor: "sub:" + userID,
                action: action,
                collection: BuiltinCollections.usersName,
                recordID: userID,
                detail: detail
            )
            statements.append(audit.statement(entry, at: now))
        }
        _ = try await store.write(statements)
        return try await tokenResponse(user: user, session: opened.id, refresh: opened.refresh, now: now)
    }

    /// A new session for `subject` (a user, or an OAuth client for its own tokens) with its first
    /// refresh token: the statements that store it, to commit with whatever the caller adds.
    public struct OpenedSession: Sendable {
        public var id: String
        public var refresh: String
        public var statements: [SQLStatement]
    }

    public func openSession(subject: String, client: Client, lifetime: Duration? = nil, now: Timestamp) -> OpenedSession {
        let sessionID = RecordID.make(at: now)
        let refresh = "bsr_" + Digest.randomToken(bytes: 32)
        let t = now.millisecondsSinceEpoch
        let expires = t + Int64((lifetime ?? settings.sessionLifetime).components.seconds) * 1000
        let userAgent = client.userAgent.map { String($0.prefix(300)) }
        return OpenedSession(
            id: sessionID,
            refresh: refresh,
            statements: [
                store.statement(
                    """
                    INSERT INTO "_basalt_sessions" ("id", "user_id", "created_at", "last_used_at", "expires_at", "user_agent", "client_address")
                    VALUES (\(sessionID), \(subject), \(t), \(t), \(expires), \(userAgent), \(client.address))
                    """
                ),
                store.statement(
                    """
                    INSERT INTO "_basalt_refresh_tokens" ("token_hash", "session_id", "created_at")
                    VALUES (\(Digest.sha256Hex(refresh)), \(sessionID), \(t))
                    """
                ),
            ]
        )
    }

    func tokenResponse(user: JSONObject, session: String, refresh: String, now: Timestamp) async throws -> JSONValue {
        let roles = schemas.current.effectiveRoles(Set(Self.roles(of: user)))
        let claims = tokens.claims(subject: user["id"]?.stringValue ?? "", session: session, roles: Array(roles), scope: "", now: now)
        let access = try await tokens.sign(claims)
        return .object(
            JSONObject([
                ("access_token", .string(access)), ("token_type", .string("Bearer")),
                ("expires_in", .int(Int64(tokens.settings.lifetime.components.seconds))),
                ("refresh_token", .string(refresh)), ("user", .object(user)),
            ])
        )
    }

    static func roles(of user: JSONObject) -> [String] {
        (user["roles"]?.arrayValue ?? []).compactMap(\.stringValue)
    }

    struct RefreshTokenRow: StoredRow {
        static let columns: [SQLColumnType] = [.text, .int, .text, .int, .int, .text, .text]
        var sessionID: String?
        var usedAt: Int64?
        var userID: String?
        var revokedAt: Int64?
        var expiresAt: Int64?
        var clientID: String?
        var scope: String?
        init(_ r: inout RowReader) {
            sessionID = r.text()
            usedAt = r.int()
            userID = r.text()
            revokedAt = r.int()
            expiresAt = r.int()
            clientID = r.text()
            scope = r.text()
        }
    }

    /// `POST /v1/auth/refresh`: single use. A token already used revokes its whole family
    /// (someone else holds a copy).
    public func refresh(_ body: JSONValue, client: Client) async throws -> JSONValue {
        guard let token = body["refresh_token"]?.stringValue, !token.isEmpty else {
            throw BasaltError.validation([FieldError(field: "/refresh_token", code: .required, message: "refresh_token is required")])
        }
        let rotated = try await rotate(refreshToken: token, forClient: nil)
        return try await tokenResponse(user: rotated.user, session: rotated.session, refresh: rotated.next, now: rotated.now)
    }

    /// A refresh token's successor, once: the one mechanism behind `/v1/auth/refresh` and the
    /// authorization server's `refresh_token` grant. `forClient` is the OAuth client presenting
    /// it (nil: Basalt's own sign-in); a token of another client, or of the other kind, is dead
    /// to it. A reused token revokes its family.
    public struct Rotation: Sendable {
        public var user: JSONObject
        public var session: String
        public var next: String
        public var scope: String
        public var now: Timestamp
    }

    public func rotate(refreshToken token: String, forClient clientID: String?) async throws -> Rotation {
        let dead = BasaltError(.unauthenticated, "The refresh token is invalid, expired or revoked")
        let hash = Digest.sha256Hex(token)
        let now = Timestamp.now()
        let t = now.millisecondsSinceEpoch
        let sql: SQL = """
            SELECT t."session_id", t."used_at", s."user_id", s."revoked_at", s."expires_at", o."client_id", o."scope"
            FROM "_basalt_refresh_tokens" t JOIN "_basalt_sessions" s ON s."id" = t."session_id"
            LEFT JOIN "_basalt_oauth_sessions" o ON o."session_id" = s."id" WHERE t."token_hash" = \(hash)
            """
        guard let row = try await store.fetchOne(sql, as: RefreshTokenRow.self), let sessionID = row.sessionID, let userID = row.userID,
            row.clientID == clientID
        else { throw dead }
        let revokeFamily = store.statement(
            "UPDATE \"_basalt_sessions\" SET \"revoked_at\" = \(t) WHERE \"id\" = \(sessionID) AND \"revoked_at\" IS NULL"
        )
        if row.usedAt != nil {
            _ = try await store.write([revokeFamily])
            records.users.forget(userID)
            logger.warning("refresh token reused: session revoked", metadata: ["session.id": "\(sessionID)", "user.id": "\(userID)"])
            throw dead
        }
        guard row.revokedAt == nil, (row.expiresAt ?? 0) > t, let user = try await records.users.current(userID, fresh: true),
            user["disabled"]?.boolValue != true
        else { throw dead }
        let next = "bsr_" + Digest.randomToken(bytes: 32)
        do {
            _ = try await store.write([
                // The single-use guard: of two concurrent refreshes with one token, one wins.
                store.statement(
                    """
                    UPDATE "_basalt_refresh_tokens" SET "used_at" = \(t) WHERE "token_hash" = \(hash) AND "used_at" IS NULL
                    """,
                    expect: .one
                ),
                store.statement(
                    """
                    UPDATE "_basalt_sessions" SET "last_used_at" = \(t) WHERE "id" = \(sessionID) AND "revoked_at" IS NULL
                    """,
                    expect: .one
                ),
                store.statement(
                    """
                    INSERT INTO "_basalt_refresh_tokens" ("token_hash", "session_id", "created_at")
                    VALUES (\(Digest.sha256Hex(next)), \(sessionID), \(t))
                    """
                ),
            ])
        } catch StoreError.expectationFailed(let statement, _) {
            // Statement 0 lost: the token was used concurrently — two holders of one token, as
            // with a reused one, so the family goes.
            if statement == 0 {
                _ = try await store.write([revokeFamily])
                records.users.forget(userID)
                logger.warning("refresh token used twice at once: session revoked", metadata: ["session.id": "\(sessionID)", "user.id": "\(userID)"])
            }
            throw dead
        }
        return Rotation(user: user, session: sessionID, next: next, scope: row.scope ?? "", now: now)
    }

    /// `POST /v1/auth/logout`: revokes the token's family. Unknown tokens are not an error.
    public func logout(_ body: JSONValue) async throws {
        guard let token = body["refresh_token"]?.stringValue, !token.isEmpty else {
            throw BasaltError.validation([FieldError(field: "/refresh_token", code: .required, message: "refresh_token is required")])
        }
        let ended = try await store.write([
            store.statement(
                """
                UPDATE "_basalt_sessions" SET "revoked_at" = \(Timestamp.now().millisecondsSinceEpoch)
                WHERE "revoked_at" IS NULL
                AND "id" IN (SELECT "session_id" FROM "_basalt_refresh_tokens" WHERE "token_hash" = \(Digest.sha256Hex(token)))
                RETURNING "user_id"
                """,
                returning: [.text]
            )
        ])
        // The session's access tokens end with it (API.md §8), here at once.
        for row in ended.first ?? [] { if let user = row.first?.text { records.users.forget(user) } }
    }

    // MARK: - The caller

    public func requireUser(_ p: Principal) throws(BasaltError) -> String {
        // A third-party app's token acts on records within its scopes; the account itself
        // (sessions, factors, email) stays with the user's own sign-in.
        if p.oauth != nil { throw BasaltError(.forbidden, "An OAuth token cannot manage the account; sign in to Basalt itself") }
        guard let u = p.user, let id = u["id"]?.stringValue else {
            if p.isAnonymous { throw BasaltError(.unauthenticated, "Sign in first: this needs a user's access token") }
            throw BasaltError(.forbidden, "Only a signed-in user has this; API keys do not")
        }
        return id
    }

    public func me(_ p: Principal) throws(BasaltError) -> JSONValue {
        _ = try requireUser(p)
        return .object(p.user ?? JSONObject())
    }

    struct SessionRow: StoredRow {
        static let columns: [SQLColumnType] = [.text, .int, .int, .int, .text, .text]
        var id: String
        var createdAt: Int64
        var lastUsedAt: Int64
        var expiresAt: Int64
        var userAgent: String?
        var clientAddress: String?
        init(_ r: inout RowReader) {
            id = r.text() ?? ""
            createdAt = r.int() ?? 0
            lastUsedAt = r.int() ?? 0
            expiresAt = r.int() ?? 0
            userAgent = r.text()
            clientAddress = r.text()
        }
    }

    public func sessions(_ p: Principal) async throws -> [JSONValue] {
        let id = try requireUser(p)
        let rows = try await store.fetch(
            """
            SELECT "id", "created_at", "last_used_at", "expires_at", "user_agent", "client_address" FROM "_basalt_sessions"
            WHERE "user_id" = \(id) AND "revoked_at" IS NULL AND "expires_at" > \(Timestamp.now().millisecondsSinceEpoch)
            ORDER BY "last_used_at" DESC LIMIT 200
            """,
            as: SessionRow.self
        )
        return rows.map { s in
            .object(
                JSONObject([
                    ("id", .string(s.id)), ("created_at", .string(Timestamp(millisecondsSinceEpoch: s.createdAt).rfc3339)),
                    ("last_used_at", .string(Timestamp(millisecondsSinceEpoch: s.lastUsedAt).rfc3339)),
                    ("expires_at", .string(Timestamp(millisecondsSinceEpoch: s.expiresAt).rfc3339)),
                    ("user_agent", s.userAgent.map(JSONValue.string) ?? .null), ("client_address", s.clientAddress.map(JSONValue.string) ?? .null),
                ])
            )
        }
    }

    public func revokeSession(_ p: Principal, id sessionID: String) async throws {
        let id = try requireUser(p)
        do {
            _ = try await store.write([
                store.statement(
                    """
                    UPDATE "_basalt_sessions" SET "revoked_at" = \(Timestamp.now().millisecondsSinceEpoch)
                    WHERE "id" = \(sessionID) AND "user_id" = \(id) AND "revoked_at" IS NULL
                    """,
                    expect: .one
                )
            ])
        } catch StoreError.expectationFailed {
            throw BasaltError.notFound("There is no such session")
        }
        records.users.forget(id)
    }

    /// The principal of a bearer access token; `401` for any defect (the reason is logged).
    public func authenticate(accessToken: String, address: String, now: Timestamp = .now()) async throws -> Principal {
        let t = now.millisecondsSinceEpoch
        let schema = schemas.current
        // Taken before any read: a change after it makes what those reads gave not reusable.
        let stamp = TokenPrincipals.Stamp(users: records.users.epoch(), schema: schema.version, keys: tokens.generation)
        if var p = principals.principal(accessToken, stamp: stamp, now: t) {
            p.clientAddress = address
            return p
        }
        var result = await tokens.verify(accessToken, now: now)
        if case .failure(.unknownKey) = result, try await reloadKeysIfStale(now) {
            result = await tokens.verify(accessToken, now: now)
        }
        let claims: AccessClaims
        switch result {
        case .success(let c): claims = c
        case .failure(let why):
            logger.debug("access token refused", metadata: ["auth.reason": "\(why)"])
            throw BasaltError(.unauthenticated, "The access token is invalid or expired", bearerError: "invalid_token")
        }
        let revoked = BasaltError(.unauthenticated, "The access token is invalid, expired or revoked", bearerError: "invalid_token")
        var p: Principal
        var keepUntil = tokens.validUntil(claims)
        if let clientID = claims.clientID, claims.sub == clientID {
            // A client's own token (`client_credentials`): its session ends when the token is
            // revoked or the client deleted; its roles are the client's when it was issued.
            let session = try await records.users.sessionRead(claims.sid, of: clientID, now: now)
            guard session.liveUntil > t else { throw revoked }
            p = Principal(kind: .subject, id: clientID, roles: schema.effectiveRoles(Set(claims.roles)), clientAddress: address)
            p.oauth = OAuthGrant(clientID: clientID, scope: claims.scope)
            keepUntil = min(keepUntil, session.liveUntil, session.at + UserDirectory.cacheMillis)
        } else {
            // The user must exist and be enabled, and the token's session must still be live:
            // signing out, revoking the session, a reset or disabling the user end the token.
            guard let user = try await records.users.currentRead(claims.sub, now: now), user.user["disabled"]?.boolValue != true else {
                throw revoked
            }
            let session = try await records.users.sessionRead(claims.sid, of: claims.sub, now: now)
            guard session.liveUntil > t else { throw revoked }
            p = Principal(kind: .subject, id: claims.sub, roles: schema.effectiveRoles(Set(Self.roles(of: user.user))), clientAddress: address)
            p.user = user.user
            p.oauth = claims.clientID.map { OAuthGrant(clientID: $0, scope: claims.scope) }
            keepUntil = min(keepUntil, session.liveUntil, min(user.at, session.at) + UserDirectory.cacheMillis)
        }
        principals.keep(accessToken, p, stamp: stamp, until: keepUntil, now: t)
        return p
    }

    /// The claims of a live access token (signature, time, issuer, audience, and its session),
    /// or nil: what introspection and revocation judge a presented token by.
    public func liveClaims(ofAccessToken token: String) async throws -> AccessClaims? {
        let now = Timestamp.now()
        guard case .success(let claims) = await tokens.verify(token, now: now) else { return nil }
        guard try await records.users.sessionIsLive(claims.sid, of: claims.sub, now: now) else { return nil }
        if claims.clientID != claims.sub {
            guard let user = try await records.users.current(claims.sub), user["disabled"]?.boolValue != true else { return nil }
        }
        return claims
    }

    /// Another replica may have rotated the keys: re-read them, at most once a second.
    func reloadKeysIfStale(_ now: Timestamp) async throws -> Bool {
        let go = lastKeyReload.withLock { last in
            guard now.millisecondsSinceEpoch - last > 1000 else { return false }
            last = now.millisecondsSinceEpoch
            return true
        }
        guard go else { return false }
        try await reloadSigningKeys()
        return true
    }

    /// Re-reads the signing keys; installs them only when the set changed.
    public func reloadSigningKeys() async throws {
        let keys = try await SigningKeyStore(store: store, box: secrets).load()
        let known = tokens.keys.map { "\($0.kid)/\($0.retiredAt?.millisecondsSinceEpoch ?? 0)" }
        guard keys.map({ "\($0.kid)/\($0.retiredAt?.millisecondsSinceEpoch ?? 0)" }) != known else { return }
        await tokens.install(keys)
    }
}
