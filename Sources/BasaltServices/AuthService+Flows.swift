import BasaltAuth
public import BasaltCore
import BasaltStorage
import Foundation

/// The mail flows (verification, password reset, email change) and TOTP.
extension AuthService {
    enum Purpose: String {
        case verify, reset
        case emailChange = "email_change"
    }

    /// A new single-use token: the raw value for the mail, the statement that stores its hash.
    func mailToken(_ purpose: Purpose, userID: String, payload: String? = nil, lifetime: Duration, now: Timestamp) -> (String, SQLStatement) {
        let raw = Digest.randomToken(bytes: 32)
        let t = now.millisecondsSinceEpoch
        let expires = t + Int64(lifetime.components.seconds) * 1000
        return (
            raw,
            store.statement(
                """
                INSERT INTO "_basalt_mail_tokens" ("token_hash", "user_id", "purpose", "payload", "created_at", "expires_at")
                VALUES (\(Digest.sha256Hex(raw)), \(userID), \(purpose.rawValue), \(payload), \(t), \(expires))
                """
            )
        )
    }

    /// A presented token, checked (right purpose, unused, unexpired) but not yet used up.
    struct PresentedToken {
        var userID: String
        var payload: String?
        /// Uses the token up; the transaction it joins fails unless this changes exactly one row,
        /// so of two concurrent uses one wins.
        var consume: SQLStatement
    }

    static let invalidToken = BasaltError.validation([
        FieldError(field: "/token", code: .invalid, message: "The token is invalid, expired or already used")
    ])

    struct MailTokenRow: StoredRow {
        static let columns: [SQLColumnType] = [.text, .text]
        var userID: String?
        var payload: String?
        init(_ r: inout RowReader) {
            userID = r.text()
            payload = r.text()
        }
    }

    func presented(_ purpose: Purpose, _ body: JSONValue) async throws -> PresentedToken {
        guard let raw = body["token"]?.stringValue, !raw.isEmpty else {
            throw BasaltError.validation([FieldError(field: "/token", code: .required, message: "token is required")])
        }
        let hash = Digest.sha256Hex(raw)
        let t = Timestamp.now().millisecondsSinceEpoch
        let sql: SQL = """
            SELECT "user_id", "payload" FROM "_basalt_mail_tokens"
            WHERE "token_hash" = \(hash) AND "purpose" = \(purpose.rawValue) AND "used_at" IS NULL AND "expires_at" > \(t)
            """
        guard let row = try await store.fetchOne(sql, as: MailTokenRow.self), let userID = row.userID else { throw Self.invalidToken }
        let consume = store.statement(
            """
            UPDATE "_basalt_mail_tokens" SET "used_at" = \(t) WHERE "token_hash" = \(hash) AND "used_at" IS NULL
            """,
            expect: .one
        )
        return PresentedToken(userID: userID, payload: row.payload, consume: consume)
    }

    /// Retires a user's other unused tokens (of `purpose`, or all): after a reset or an email
    /// change, links mailed earlier — possibly to an old address — must stop working.
    func retireTokens(_ userID: String, purpose: Purpose? = nil, now: Timestamp) -> SQLStatement {
        var sql: SQL = """
            UPDATE "_basalt_mail_tokens" SET "used_at" = \(now.millisecondsSinceEpoch) WHERE "user_id" = \(userID) AND "used_at" IS NULL
            """
        if let purpose { sql = "\(sql) AND \"purpose\" = \(purpose.rawValue)" }
        return store.statement(sql)
    }

    func link(_ path: String, _ token: String) -> String {
        "\(settings.appURL)\(path)?token=\(token)"
    }

    /// Sets fields of a user row directly (the flows own `verified` and `email`), bumping its
    /// version, in one transaction with `token`'s consumption and `extra`.
    func updateUser(_ userID: String, _ sets: [(String, SQLValue)], token: PresentedToken, extra: [SQLStatement] = []) async throws {
        let now = Timestamp.now()
        var sql: SQL = "UPDATE \"users\" SET \"updated_at\" = \(SQLValue.timestamp(now)), \"version\" = \"version\" + 1"
        for (k, v) in sets { sql = "\(sql), \(identifier: k) = \(v)" }
        sql = "\(sql) WHERE \"id\" = \(SQLValue.uuid(userID))"
        do {
            _ = try await store.write([token.consume, store.statement(sql, expect: .one)] + extra)
        } catch StoreError.uniqueViolation {
            // Rolled back: the token stays usable once the address is free again.
            throw BasaltError(
                .conflict,
                "Another account uses this email",
                fieldErrors: [FieldError(field: "/email", code: .unique, message: "email is taken")]
            )
        } catch StoreError.expectationFailed(let statement, _) {
            if statement == 0 { throw Self.invalidToken }
            throw BasaltError.validation([FieldError(field: "/token", code: .invalid, message: "The account no longer exists")])
        }
        records.users.forget(userID)
    }

    // MARK: - Verification

    public func requestVerification(_ p: Principal) async throws {
        let id = try requireUser(p)
        guard p.user?["verified"]?.boolValue != true, let email = p.user?["email"]?.stringValue else { return }
        let now = Timestamp.now()
        // The token names the address it verifies: if the address changes meanwhile, it is void.
        let (raw, stmt) = mailToken(.verify, userID: id, payload: email, lifetime: settings.verifyTokenLifetime, now: now)
        _ = try await store.write([
            stmt,
            try mail.enqueue(
                to: email,
                subject: "Verify your email for \(settings.productName)",
                body: """
                    Confirm that \(email) is yours by opening \(link("/verify", raw))
                    or by posting {"token": "\(raw)"} to /v1/auth/verify. The link is valid for 24 hours.
                    """,
                now: now
            ),
        ])
    }

    public func verify(_ body: JSONValue) async throws {
        let token = try await presented(.verify, body)
        guard let user = try await records.users.current(token.userID, fresh: true),
            token.payload == nil || user["email"]?.stringValue == token.payload
        else {
            throw Self.invalidToken
        }
        try await updateUser(token.userID, [("verified", .bool(true))], token: token)
    }

    // MARK: - Password reset

    /// Always accepted, whether or not the address has an account, and with the same work either
    /// way: the request is only recorded here (one insert); `processResetRequests` looks the
    /// address up and mails, off the request path — so neither the answer nor its timing says
    /// whether an account exists. Not counted against sign-in attempts (that would let anyone
    /// lock a victim out by asking for resets).
    public func forgotPassword(_ body: JSONValue, client: Client) async throws {
        guard let raw = body["email"]?.stringValue, !raw.isEmpty else {
            throw BasaltError.validation([FieldError(field: "/email", code: .required, message: "email is required")])
        }
        let email = BuiltinCollections.normalizeEmail(raw)
        guard FieldValidator.isEmail(email) else {
            throw BasaltError.validation([FieldError(field: "/email", code: .format, message: "email must be an email address")])
        }
        let now = Timestamp.now()
        _ = try await store.write([
            store.statement(
                """
                INSERT INTO "_basalt_reset_requests" ("id", "email", "created_at")
                VALUES (\(RecordID.make(at: now)), \(email), \(now.millisecondsSinceEpoch))
                """
            )
        ])
    }

    struct ResetRequestRow: StoredRow {
        static let columns: [SQLColumnType] = [.text, .text]
        var id: String?
        var email: String?
        init(_ r: inout RowReader) {
            id = r.text()
            email = r.text()
        }
    }

    /// A `SELECT 1` that found a row.
    struct Found: StoredRow {
        static let columns: [SQLColumnType] = [.int]
        init(_ r: inout RowReader) {}
    }

    /// Turns recorded reset requests into reset mails: for an account that exists and is not
    /// disabled, at most one mail per `resetMailInterval` (a flood of requests is not a flood of
    /// mail). Each request is claimed by deleting it, so one replica handles it. Returns how many
    /// requests were handled.
    @discardableResult
    public func processResetRequests(limit: Int = 50) async throws -> Int {
        let rows = try await store.fetch(
            "SELECT \"id\", \"email\" FROM \"_basalt_reset_requests\" ORDER BY \"id\" LIMIT \(limit)",
            as: ResetRequestRow.self
        )
        var handled = 0
        for r in rows {
            guard let rid = r.id, let email = r.email else { continue }
            do {
                _ = try await store.write([store.statement("DELETE FROM \"_basalt_reset_requests\" WHERE \"id\" = \(rid)", expect: .one)])
            } catch StoreError.expectationFailed {
                continue  // another replica took it
            }
            handled += 1
            guard let id = try await userID(byEmail: email), let user = try await records.users.current(id, fresh: true),
                user["disabled"]?.boolValue != true
            else { continue }
            let now = Timestamp.now()
            let since = now.millisecondsSinceEpoch - Int64(settings.resetMailInterval.components.seconds) * 1000
            let recent = try await store.fetchOne(
                """
                SELECT 1 FROM "_basalt_mail_tokens" WHERE "user_id" = \(id) AND "purpose" = 'reset' AND "created_at" > \(since)
                """,
                as: Found.self
            )
            if recent != nil { continue }
            let (token, stmt) = mailToken(.reset, userID: id, lifetime: settings.resetTokenLifetime, now: now)
            _ = try await store.write([
                stmt,
                try mail.enqueue(
                    to: email,
                    subject: "Reset your \(settings.productName) password",
                    body: """
                        Someone asked to reset the password of \(email). If it was you, open \(link("/reset-password", token))
                        or post {"token": "\(token)", "password": "…"} to /v1/auth/password/reset within an hour.
                        If it was not you, ignore this mail.
                        """,
                    now: now
                ),
            ])
        }
        return handled
    }

    /// Sets the new password and revokes every session; other reset links die with it.
    public func resetPassword(_ body: JSONValue) async throws {
        guard let password = body["password"]?.stringValue else {
            throw BasaltError.validation([FieldError(field: "/password", code: .required, message: "password is required")])
        }
        let token = try await presented(.reset, body)
        let email = try await records.users.current(token.userID, fresh: true)?["email"]?.stringValue
        let problems = policy.check(password, email: email)
        if !problems.isEmpty { throw BasaltError.validation(problems) }
        let hash = try await hasher.hash(password)
        let now = Timestamp.now()
        do {
            _ = try await store.write([
                token.consume,
                upsertPassword(token.userID, hash, now),
                store.statement(IdentityTables.revokeSessions(userID: token.userID, now: now)),
                retireTokens(token.userID, purpose: .reset, now: now),
            ])
        } catch StoreError.expectationFailed {
            throw Self.invalidToken
        }
        records.users.forget(token.userID)
    }

    func upsertPassword(_ id: String, _ hash: String, _ now: Timestamp) -> SQLStatement {
        store.statement(
            """
            INSERT INTO "_basalt_credentials" ("user_id", "password_hash", "updated_at")
            VALUES (\(id), \(hash), \(now.millisecondsSinceEpoch))
            ON CONFLICT ("user_id") DO UPDATE SET "password_hash" = excluded."password_hash", "updated_at" = excluded."updated_at"
            """
        )
    }

    // MARK: - Email change

    /// Needs the current password; mails a confirmation token to the new address.
    public func requestEmailChange(_ p: Principal, _ body: JSONValue) async throws {
        let id = try requireUser(p)
        guard let raw = body["new_email"]?.stringValue, let password = body["password"]?.stringValue else {
            throw BasaltError.validation([FieldError(field: "/new_email", code: .required, message: "new_email and password are required")])
        }
        let newEmail = BuiltinCollections.normalizeEmail(raw)
        let field = FieldSchema(name: "new_email", type: .email, required: true, max: 254)
        if case .failure(let e) = FieldValidator.check(.string(newEmail), field: field, pointer: "/new_email") { throw BasaltError.validation([e]) }
        try await confirmPassword(p, userID: id, password)
        // An address already taken is not revealed here (always 202); confirming then fails.
        let now = Timestamp.now()
        let (token, stmt) = mailToken(.emailChange, userID: id, payload: newEmail, lifetime: settings.emailChangeTokenLifetime, now: now)
        _ = try await store.write([
            stmt,
            try mail.enqueue(
                to: newEmail,
                subject: "Confirm your new email for \(settings.productName)",
                body: """
                    Confirm \(newEmail) as the new address of your account by opening \(link("/confirm-email", token))
                    or by posting {"token": "\(token)"} to /v1/auth/email/confirm.
                    """,
                now: now
            ),
        ])
    }

    /// Re-authentication before a change a stolen access token must not make alone (the email,
    /// a second factor): the account's password, `401` when wrong (API.md §8). Checked like
    /// sign-in, and throttled like it, so the token is no password oracle either.
    func confirmPassword(_ p: Principal, userID id: String, _ password: String) async throws {
        let current = p.user?["email"]?.stringValue ?? id
        try throttle.begin(email: current, address: p.clientAddress)
        var stored = try await credentials(id)?.passwordHash
        if stored == nil { stored = try await decoyHash() }
        guard try await hasher.verify(password, against: stored ?? "") != .mismatch else {
            throttle.failed(email: current, address: p.clientAddress)
            throw BasaltError(.unauthenticated, "The password is wrong")
        }
    }

    public func confirmEmailChange(_ body: JSONValue) async throws {
        let token = try await presented(.emailChange, body)
        guard let email = token.payload else { throw BasaltError.badRequest("The token carries no address") }
        // Owning the new address is proven by the token, so it is verified too. Links mailed to
        // the old address (resets, verification) stop working in the same transaction.
        try await updateUser(
            token.userID,
            [("email", .text(email)), ("verified", .bool(true))],
            token: token,
            extra: [retireTokens(token.userID, now: .now())]
        )
    }

    // MARK: - TOTP

    /// Starts enrolment: a new secret, not active until confirmed with a code.
    public func beginTOTP(_ p: Principal, _ body: JSONValue) async throws -> JSONValue {
        let id = try requireUser(p)
        guard let password = body["password"]?.stringValue else {
            throw BasaltError.validation([FieldError(field: "/password", code: .required, message: "password is required")])
        }
        try await confirmPassword(p, userID: id, password)
        if try await credentials(id)?.totpEnabled == true {
            throw BasaltError(.conflict, "Two-factor sign-in is already on; turn it off first")
        }
        let secret = OneTimePasswords.newSecret()
        let sealed = try secrets.seal(Array(secret.utf8))
        let now = Timestamp.now()
        // The WHERE never replaces the secret of an enabled factor, whatever raced with the check above.
        do {
            _ = try await store.write([
                store.statement(
                    """
                    INSERT INTO "_basalt_credentials" ("user_id", "totp_secret", "totp_enabled", "updated_at")
                    VALUES (\(id), \(sealed), 0, \(now.millisecondsSinceEpoch))
                    ON CONFLICT ("user_id") DO UPDATE SET "totp_secret" = excluded."totp_secret", "totp_enabled" = 0, "totp_last_step" = NULL,
                    "updated_at" = excluded."updated_at"
                    WHERE "_basalt_credentials"."totp_enabled" = 0
                    """,
                    expect: .one
                )
            ])
        } catch StoreError.expectationFailed {
            throw BasaltError(.conflict, "Two-factor sign-in is already on; turn it off first")
        }
        let label = p.user?["email"]?.stringValue ?? id
        return .object(
            JSONObject([
                ("secret", .string(OneTimePasswords.base32(secret: secret))),
                ("otpauth_uri", .string(OneTimePasswords.uri(secret: secret, label: label, issuer: settings.productName))),
            ])
        )
    }

    /// Confirms enrolment with a current code; answers the recovery codes, shown once.
    public func confirmTOTP(_ p: Principal, _ body: JSONValue) async throws -> JSONValue {
        let id = try requireUser(p)
        guard let otp = body["otp"]?.stringValue else {
            throw BasaltError.validation([FieldError(field: "/otp", code: .required, message: "otp is required")])
        }
        guard let creds = try await credentials(id), let secret = creds.totpSecret, !creds.totpEnabled else {
            throw BasaltError(.conflict, "Start enrolment with POST /v1/auth/mfa/totp first")
        }
        guard let step = OneTimePasswords.matchingStep(secret: secret, code: otp, at: .now(), after: creds.totpLastStep) else {
            throw BasaltError.validation([FieldError(field: "/otp", code: .invalid, message: "The code does not match; check the device's clock")])
        }
        var codes: [String] = []
        // The last condition enables the secret the code was checked against, not one a concurrent begin swapped in.
        let enable = store.statement(
            """
            UPDATE "_basalt_credentials" SET "totp_enabled" = 1, "totp_last_step" = \(step)
            WHERE "user_id" = \(id) AND "totp_enabled" = 0 AND "totp_secret" = \(creds.totpSealed ?? "")
            """,
            expect: .one
        )
        var statements = [enable, store.statement("DELETE FROM \"_basalt_recovery_codes\" WHERE \"user_id\" = \(id)")]
        let alphabet = Array("abcdefghjkmnpqrstuvwxyz23456789")
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<10 {
            let raw = String((0..<10).map { _ in alphabet[Int(rng.next(upperBound: UInt32(alphabet.count)))] })
            codes.append(String(raw.prefix(5)) + "-" + String(raw.suffix(5)))
            statements.append(
                store.statement(
                    """
                    INSERT INTO "_basalt_recovery_codes" ("user_id", "code_hash") VALUES (\(id), \(Digest.sha256Hex(raw)))
                    """
                )
            )
        }
        do {
            _ = try await store.write(statements)
        } catch StoreError.expectationFailed {
            throw BasaltError(.conflict, "Two-factor sign-in is already on")
        }
        return .object(JSONObject([("recovery_codes", .array(codes.map(JSONValue.string)))]))
    }

    /// Turns TOTP off; needs a current code or a recovery code.
    public func disableTOTP(_ p: Principal, _ body: JSONValue) async throws {
        let id = try requireUser(p)
        guard let otp = body["otp"]?.stringValue else {
            throw BasaltError.validation([FieldError(field: "/otp", code: .required, message: "otp is required")])
        }
        guard let creds = try await credentials(id), creds.totpEnabled else { throw BasaltError.notFound("Two-factor sign-in is not on") }
        let current = p.user?["email"]?.stringValue ?? id
        try throttle.begin(email: current, address: p.clientAddress)
        guard try await consumeSecondFactor(id, creds, otp) else {
            throttle.failed(email: current, address: p.clientAddress)
            throw BasaltError.validation([FieldError(field: "/otp", code: .invalid, message: "The code is wrong or was already used")])
        }
        _ = try await store.write([
            store.statement(
                """
                UPDATE "_basalt_credentials" SET "totp_enabled" = 0, "totp_secret" = NULL, "totp_last_step" = NULL WHERE "user_id" = \(id)
                """
            ),
            store.statement("DELETE FROM \"_basalt_recovery_codes\" WHERE \"user_id\" = \(id)"),
        ])
    }

    // MARK: - Upkeep

    /// Forgets what can no longer be used: sessions (with their refresh tokens) a day after they
    /// expired or were revoked, mail tokens a day after they expired (sent mail goes with the job
    /// queue's purge). Reuse detection only needs a family while it could still be
    /// presented, so nothing a client holds is judged by a deleted row. The audit log is kept.
    public func purgeExpired(now: Timestamp = .now()) async throws {
        let day: Int64 = 86_400_000
        let t = now.millisecondsSinceEpoch
        _ = try await store.write([
            store.statement(
                """
                DELETE FROM "_basalt_refresh_tokens"
                WHERE "session_id" IN (SELECT "id" FROM "_basalt_sessions" WHERE "expires_at" < \(t - day) OR "revoked_at" < \(t - day))
                """
            ),
            store.statement(
                """
                DELETE FROM "_basalt_oauth_sessions"
                WHERE "session_id" IN (SELECT "id" FROM "_basalt_sessions" WHERE "expires_at" < \(t - day) OR "revoked_at" < \(t - day))
                """
            ),
            store.statement("DELETE FROM \"_basalt_sessions\" WHERE \"expires_at\" < \(t - day) OR \"revoked_at\" < \(t - day)"),
            store.statement("DELETE FROM \"_basalt_mail_tokens\" WHERE \"expires_at\" < \(t - day)"),
            // A code lives minutes; its row only has to outlast reuse detection for a day.
            store.statement("DELETE FROM \"_basalt_oauth_codes\" WHERE \"expires_at\" < \(t - day)"),
            store.statement("DELETE FROM \"_basalt_oauth_states\" WHERE \"expires_at\" < \(t - day)"),
            store.statement("DELETE FROM \"_basalt_oauth_exchanges\" WHERE \"expires_at\" < \(t - day)"),
        ])
    }

    // MARK: - Administration

    /// `PATCH /v1/admin/users/{id}`: `roles`, `disabled`, `verified` only. Disabling revokes
    /// every session in the same transaction.
    public func adminUpdate(_ p: Principal, id rawID: String, _ body: JSONValue) async throws -> JSONValue {
        guard case .object(let o) = body else { throw BasaltError.badRequest("The body must be a JSON object") }
        var errors: [FieldError] = []
        let declared = Set(schemas.current.schema.roles.map(\.name))
        for (k, v) in o {
            switch k {
            case "disabled", "verified":
                if v.boolValue == nil { errors.append(FieldError(field: "/\(k)", code: .type, message: "\(k) must be a boolean")) }
            case "roles":
                guard let a = v.arrayValue, a.allSatisfy({ $0.stringValue != nil }) else {
                    errors.append(FieldError(field: "/roles", code: .type, message: "roles must be a list of role names"))
                    continue
                }
                for (i, r) in a.enumerated() where !declared.contains(r.stringValue ?? "") {
                    errors.append(FieldError(field: "/roles/\(i)", code: .enum, message: "\(r.stringValue ?? "") is not a role of the schema"))
                }
            default:
                errors.append(FieldError(field: FieldError.pointer(k), code: .readOnly, message: "Only roles, disabled and verified are set here"))
            }
        }
        if !errors.isEmpty { throw BasaltError.validation(errors) }
        guard let id = RecordID.normalize(rawID) else { throw BasaltError.notFound("There is no such user") }
        // Disabling revokes every session in the same transaction (the write planner does it for
        // any write that disables a user).
        let out = try await records.execute(.patch(collection: BuiltinCollections.usersName, id: id, body: body, precondition: .none), principal: p)
        guard case .updated(_, let user) = out else { throw BasaltError(.internalError, "a user update made no record") }
        return .object(user)
    }

    /// `DELETE /v1/admin/users/{id}/mfa`: turns a user's TOTP off (a lost device, or a factor set
    /// up by someone who had the user's access token), audited.
    public func adminResetMFA(_ p: Principal, id rawID: String) async throws {
        guard let id = RecordID.normalize(rawID), try await records.users.current(id, fresh: true) != nil else {
            throw BasaltError.notFound("There is no such user")
        }
        _ = try await store.write([
            store.statement(
                """
                UPDATE "_basalt_credentials" SET "totp_enabled" = 0, "totp_secret" = NULL, "totp_last_step" = NULL WHERE "user_id" = \(id)
                """
            ),
            store.statement("DELETE FROM \"_basalt_recovery_codes\" WHERE \"user_id\" = \(id)"),
            audit.statement(AuditLog.entry(p, "user.reset_mfa", collection: BuiltinCollections.usersName, recordID: id)),
        ])
    }

    public func adminRevokeSessions(_ p: Principal, id rawID: String) async throws {
        guard let id = RecordID.normalize(rawID), try await records.users.current(id, fresh: true) != nil else {
            throw BasaltError.notFound("There is no such user")
        }
        _ = try await store.write([
            store.statement(IdentityTables.revokeSessions(userID: id, now: .now())),
            audit.statement(AuditLog.entry(p, "user.revoke_sessions", collection: BuiltinCollections.usersName, recordID: id)),
        ])
        records.users.forget(id)
    }
}
