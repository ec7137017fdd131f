import Basalt
import BasaltAuth
import BasaltCore
import BasaltServices
import BasaltStorage
import BasaltTesting
import Foundation
import HTTPTypes
import Testing

extension APIClient {
    /// The token of the newest queued mail to `to` whose subject contains `subject` — read from
    /// the durable mail queue itself (waiting up to 5 s: reset mails are made off the request path).
    func mailedToken(to: String, subject: String = "") async throws -> String {
        let store = runtime.store
        var b = SQLBuilder(store.dialect)
        b.append("SELECT \"payload\" FROM \"_basalt_jobs\" WHERE \"kind\" = 'mail' AND \"owner\" = ")
        b.bind(.text(to))
        b.append(" ORDER BY \"id\" DESC")
        var found: String?
        for _ in 0..<100 where found == nil {
            try await runtime.auth.processResetRequests()
            found = try await store.fetch(b.query, types: [.text]).compactMap { row -> String? in
                guard let payload = try? JSONValue.parse(row[0].text ?? ""),
                    subject.isEmpty || payload["subject"]?.stringValue?.contains(subject) == true
                else { return nil }
                return payload["body"]?.stringValue
            }.first
            if found == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let sealed = try #require(found, "no mail to \(to) about \(subject)")
        #expect(!sealed.contains("token"), "queued bodies are sealed")
        let body = try runtime.auth.mail.open(sealed)
        let range = try #require(body.range(of: #"{"token": ""#))
        return String(body[range.upperBound...].prefix { $0 != "\"" })
    }

    func mailCount(to: String) async throws -> Int64 {
        var b = SQLBuilder(runtime.store.dialect)
        b.append("SELECT COUNT(*) FROM \"_basalt_jobs\" WHERE \"kind\" = 'mail' AND \"owner\" = ")
        b.bind(.text(to))
        return try await runtime.store.fetchOne(b.query, types: [.int])?[0].int ?? -1
    }
}

@Suite("MFA (TOTP + recovery codes) and the mail flows")
struct MFAAndMailTests {
    @Test(arguments: TestBackend.all)
    func totpEnrolmentAndSignIn(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: IdentityFixtures.schema) { api in
            let ada = try await api.signUp("ada@example.com")
            // Enrolling needs the password, not only an access token (API.md §8).
            let noPassword = try await api.post("/v1/auth/mfa/totp", "{}", auth: ada.auth)
            #expect(noPassword.status == .unprocessableContent && noPassword.fieldErrors.first?.0 == "/password")
            let wrong = try await api.post("/v1/auth/mfa/totp", #"{"password":"not the password"}"#, auth: ada.auth)
            #expect(wrong.status == .unauthorized && wrong.problem == "unauthenticated")
            let begin = try await api.post("/v1/auth/mfa/totp", #"{"password":"correct horse battery"}"#, auth: ada.auth)
            #expect(begin.status == .ok && begin.header("Cache-Control") == "no-store")
            let secret32 = try #require(begin["secret"]?.stringValue)
            let uri = try #require(begin["otpauth_uri"]?.stringValue)
            #expect(uri.hasPrefix("otpauth://totp/") && uri.contains("secret=\(secret32)"))
            let secret = base32Decode(secret32)
            // Not on until confirmed: sign-in still needs no code.
            _ = try await api.signIn("ada@example.com")
            #expect(try await api.post("/v1/auth/mfa/totp/confirm", #"{"otp":"000000"}"#, auth: ada.auth).status == .unprocessableContent)
            let code = OneTimePasswords.code(secret: secret, at: .now())
            let confirm = try await api.post("/v1/auth/mfa/totp/confirm", #"{"otp":"\#(code)"}"#, auth: ada.auth)
            #expect(confirm.status == .ok)
            let recovery = (confirm["recovery_codes"]?.arrayValue ?? []).compactMap(\.stringValue)
            #expect(recovery.count == 10 && Set(recovery).count == 10)
            // Recovery codes are stored hashed.
            let rows = try await api.runtime.store.fetch(SQLQuery(sql: "SELECT \"code_hash\" FROM \"_basalt_recovery_codes\""), types: [.text])
            #expect(
                rows.count == 10
                    && !rows.contains { r in recovery.contains { r[0].text?.contains($0.replacingOccurrences(of: "-", with: "")) == true } }
            )

            let noOTP = try await api.post("/v1/auth/login", #"{"email":"ada@example.com","password":"correct horse battery"}"#, auth: .none)
            #expect(noOTP.status == .unauthorized && noOTP.problem == "mfa-required")
            let wrongOTP = try await api.post(
                "/v1/auth/login",
                #"{"email":"ada@example.com","password":"correct horse battery","otp":"123456"}"#,
                auth: .none
            )
            #expect(wrongOTP.status == .unauthorized && wrongOTP.problem == "mfa-required")
            // The code used to confirm cannot be replayed; the next step's code works once.
            let replay = try await api.post(
                "/v1/auth/login",
                #"{"email":"ada@example.com","password":"correct horse battery","otp":"\#(code)"}"#,
                auth: .none
            )
            #expect(replay.status == .unauthorized)
            let next = OneTimePasswords.code(secret: secret, at: Timestamp(millisecondsSinceEpoch: Timestamp.now().millisecondsSinceEpoch + 30_000))
            _ = try await api.signIn("ada@example.com", otp: next)
            #expect(
                try await api.post("/v1/auth/login", #"{"email":"ada@example.com","password":"correct horse battery","otp":"\#(next)"}"#, auth: .none)
                    .status == .unauthorized
            )
            // A recovery code works exactly once; a wrong password with a good code is still 401.
            let wrongPassword = try await api.post(
                "/v1/auth/login",
                #"{"email":"ada@example.com","password":"nope nope nope","otp":"\#(recovery[0])"}"#,
                auth: .none
            )
            #expect(wrongPassword.status == .unauthorized && wrongPassword.problem == "unauthenticated")
            let viaRecovery = try await api.signIn("ada@example.com", otp: recovery[0])
            #expect(
                try await api.post(
                    "/v1/auth/login",
                    #"{"email":"ada@example.com","password":"correct horse battery","otp":"\#(recovery[0])"}"#,
                    auth: .none
                ).status == .unauthorized
            )
            // Turning it off needs a code.
            #expect(
                try await api.send(.delete, "/v1/auth/mfa/totp", json: #"{"otp":"999999"}"#, auth: viaRecovery.auth).status == .unprocessableContent
            )
            #expect(
                try await api.send(.delete, "/v1/auth/mfa/totp", json: #"{"otp":"\#(recovery[1])"}"#, auth: viaRecovery.auth).status == .noContent
            )
            _ = try await api.signIn("ada@example.com")
            // Enrolling again is possible; an admin can turn it off for a user who lost the device.
            let again = try await api.post("/v1/auth/mfa/totp", #"{"password":"correct horse battery"}"#, auth: viaRecovery.auth)
            let secret2 = base32Decode(try #require(again["secret"]?.stringValue))
            // Enrolling again before confirming is fine: it restarts.
            #expect(try await api.post("/v1/auth/mfa/totp", #"{"password":"correct horse battery"}"#, auth: viaRecovery.auth).status == .ok)
            _ = secret2
            let third = try await api.post("/v1/auth/mfa/totp", #"{"password":"correct horse battery"}"#, auth: viaRecovery.auth)
            let secret3 = base32Decode(try #require(third["secret"]?.stringValue))
            let code3 = OneTimePasswords.code(secret: secret3, at: .now())
            #expect(try await api.post("/v1/auth/mfa/totp/confirm", #"{"otp":"\#(code3)"}"#, auth: viaRecovery.auth).status == .ok)
            // Once on, a new enrolment cannot replace the active secret.
            #expect(try await api.post("/v1/auth/mfa/totp", #"{"password":"correct horse battery"}"#, auth: viaRecovery.auth).status == .conflict)
            #expect(
                try await api.post("/v1/auth/login", #"{"email":"ada@example.com","password":"correct horse battery"}"#, auth: .none).problem
                    == "mfa-required"
            )
            #expect(try await api.delete("/v1/admin/users/\(ada.id)/mfa", auth: viaRecovery.auth).status == .forbidden)
            #expect(try await api.delete("/v1/admin/users/\(ada.id)/mfa").status == .noContent)
            _ = try await api.signIn("ada@example.com")
            let audit = try await api.get("/v1/admin/audit?action=user.reset_mfa")
            #expect(audit["items"]?.arrayValue?.first?["record_id"] == .string(ada.id))
        }
    }

    @Test(arguments: TestBackend.all)
    func verificationResetAndEmailChange(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: IdentityFixtures.schema) { api in
            let ada = try await api.signUp("ada@example.com")
            // Verification: a mail with a single-use token, stored hashed.
            #expect(try await api.post("/v1/auth/verify/request", "{}", auth: ada.auth).status == .accepted)
            let vtoken = try await api.mailedToken(to: "ada@example.com")
            let stored = try await api.runtime.store.fetch(SQLQuery(sql: "SELECT \"token_hash\" FROM \"_basalt_mail_tokens\""), types: [.text])
            #expect(stored.count == 1 && stored[0][0].text != vtoken && stored[0][0].text == Digest.sha256Hex(vtoken))
            #expect(try await api.post("/v1/auth/verify", #"{"token":"\#(vtoken)"}"#, auth: .none).status == .noContent)
            #expect(try await api.get("/v1/auth/me", auth: ada.auth)["verified"] == .bool(true))
            let again = try await api.post("/v1/auth/verify", #"{"token":"\#(vtoken)"}"#, auth: .none)
            #expect(again.status == .unprocessableContent && again.fieldErrors.first?.0 == "/token")

            // Forgot: always 202, a mail only for a real account.
            #expect(try await api.post("/v1/auth/password/forgot", #"{"email":"ghost@example.com"}"#, auth: .none).status == .accepted)
            try await api.runtime.auth.processResetRequests()
            #expect(try await api.mailCount(to: "ghost@example.com") == 0)
            let other = try await api.signIn("ada@example.com")
            #expect(try await api.post("/v1/auth/password/forgot", #"{"email":"ADA@example.com"}"#, auth: .none).status == .accepted)
            let rtoken = try await api.mailedToken(to: "ada@example.com", subject: "Reset")
            #expect(rtoken != vtoken)
            // A flood of requests is not a flood of mail: one reset mail per account per 5 minutes.
            for _ in 0..<3 { _ = try await api.post("/v1/auth/password/forgot", #"{"email":"ada@example.com"}"#, auth: .none) }
            try await api.runtime.auth.processResetRequests()
            #expect(try await api.mailCount(to: "ada@example.com") == 2)  // the verification and one reset
            // A verification token is no reset token.
            #expect(
                try await api.post("/v1/auth/password/reset", #"{"token":"\#(vtoken)","password":"brand new passphrase"}"#, auth: .none).status
                    == .unprocessableContent
            )
            #expect(
                try await api.post("/v1/auth/password/reset", #"{"token":"\#(rtoken)","password":"short"}"#, auth: .none).status
                    == .unprocessableContent
            )
            #expect(
                try await api.post("/v1/auth/password/reset", #"{"token":"\#(rtoken)","password":"brand new passphrase"}"#, auth: .none).status
                    == .noContent
            )
            // Reset-token reuse fails; every session was revoked; only the new password works.
            #expect(
                try await api.post("/v1/auth/password/reset", #"{"token":"\#(rtoken)","password":"another new passphrase"}"#, auth: .none).status
                    == .unprocessableContent
            )
            #expect(try await api.post("/v1/auth/refresh", #"{"refresh_token":"\#(other.refreshToken)"}"#, auth: .none).status == .unauthorized)
            // …and their access tokens with them, at once (API.md §8): a stolen token dies with the reset.
            #expect(try await api.get("/v1/auth/me", auth: other.auth).status == .unauthorized)
            #expect(
                try await api.post("/v1/auth/login", #"{"email":"ada@example.com","password":"correct horse battery"}"#, auth: .none).status
                    == .unauthorized
            )
            let fresh = try await api.signIn("ada@example.com", password: "brand new passphrase")

            // Email change: needs the password; confirmed by a token mailed to the new address.
            #expect(
                try await api.post("/v1/auth/email/change", #"{"new_email":"ada@new.example","password":"wrong wrong wrong"}"#, auth: fresh.auth)
                    .status == .unauthorized
            )
            // A taken address is not revealed by the request (202); confirming it is the 409, and the
            // token survives that (it works once the address is free).
            _ = try await api.signUp("taken@example.com")
            #expect(
                try await api.post("/v1/auth/email/change", #"{"new_email":"taken@example.com","password":"brand new passphrase"}"#, auth: fresh.auth)
                    .status == .accepted
            )
            let clash = try await api.mailedToken(to: "taken@example.com", subject: "new email")
            #expect(try await api.post("/v1/auth/email/confirm", #"{"token":"\#(clash)"}"#, auth: .none).status == .conflict)
            #expect(
                try await api.post("/v1/auth/email/change", #"{"new_email":"Ada@New.example","password":"brand new passphrase"}"#, auth: fresh.auth)
                    .status == .accepted
            )
            // A verification link mailed to the old address before the change must not outlive it.
            _ = try await api.patch("/v1/admin/users/\(fresh.id)", #"{"verified":false}"#)
            #expect(try await api.post("/v1/auth/verify/request", "{}", auth: fresh.auth).status == .accepted)
            let oldVerify = try await api.mailedToken(to: "ada@example.com", subject: "Verify")
            let ctoken = try await api.mailedToken(to: "ada@new.example")
            #expect(try await api.get("/v1/auth/me", auth: fresh.auth)["email"] == .string("ada@example.com"))
            #expect(try await api.post("/v1/auth/email/confirm", #"{"token":"\#(ctoken)"}"#, auth: .none).status == .noContent)
            #expect(try await api.get("/v1/auth/me", auth: fresh.auth)["email"] == .string("ada@new.example"))
            _ = try await api.signIn("ada@new.example", password: "brand new passphrase")
            #expect(try await api.post("/v1/auth/email/confirm", #"{"token":"\#(ctoken)"}"#, auth: .none).status == .unprocessableContent)
            #expect(try await api.post("/v1/auth/verify", #"{"token":"\#(oldVerify)"}"#, auth: .none).status == .unprocessableContent)
            // The clashing change's token was retired by the change that went through.
            #expect(try await api.post("/v1/auth/email/confirm", #"{"token":"\#(clash)"}"#, auth: .none).status == .unprocessableContent)
        }
    }

    @Test(arguments: TestBackend.all)
    func expiredMailTokensAreRefused(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: IdentityFixtures.schema) { api in
            let ada = try await api.signUp("ada@example.com")
            #expect(try await api.post("/v1/auth/verify/request", "{}", auth: ada.auth).status == .accepted)
            let token = try await api.mailedToken(to: "ada@example.com")
            // Age the token past its 24 h (the wall clock is the one thing faked here).
            _ = try await api.runtime.store.write([
                SQLStatement(SQLQuery(sql: "UPDATE \"_basalt_mail_tokens\" SET \"expires_at\" = \"created_at\" - 1"))
            ])
            #expect(try await api.post("/v1/auth/verify", #"{"token":"\#(token)"}"#, auth: .none).status == .unprocessableContent)
            #expect(try await api.get("/v1/auth/me", auth: ada.auth)["verified"] == .bool(false))
        }
    }
}
