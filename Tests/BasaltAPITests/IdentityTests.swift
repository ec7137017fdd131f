import Basalt
import BasaltAuth
import BasaltCore
import BasaltHTTP
import BasaltServices
import BasaltStorage
import BasaltTesting
import Foundation
import HTTPTypes
import Testing

/// The parts of a compact JWS, decoded.
struct DecodedJWT {
    var header: JSONValue
    var payload: JSONValue
    init(_ token: String) throws {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        try #require(parts.count == 3)
        header = try JSONValue.parse(String(decoding: try #require(Base64URL.decode(String(parts[0]))), as: UTF8.self))
        payload = try JSONValue.parse(String(decoding: try #require(Base64URL.decode(String(parts[1]))), as: UTF8.self))
    }
}

enum IdentityFixtures {
    static let schema = """
        collections:
          users:
            fields:
              name: {type: text, max: 100}
              team: {type: text}
            access:
              view: [{who: authenticated, where: "id = @auth.id"}]
              update: [{who: authenticated, where: "id = @auth.id"}]
          notes:
            fields:
              title: {type: text, required: true}
              owner: {type: relation, collection: users, on_delete: cascade}
              team:  {type: text}
              parent: {type: relation, collection: notes, on_delete: set_null}
            access:
              list:   [{who: authenticated, where: "owner = @auth.id"}, {roles: [viewer], where: "team = @auth.team"}]
              view:   [{who: authenticated, where: "owner = @auth.id"}, {roles: [viewer], where: "team = @auth.team"}]
              create: [{who: authenticated, where: "@new.owner = @auth.id"}]
              update: [{who: authenticated, where: "owner = @auth.id && @new.owner = @auth.id"}]
              delete: [{who: authenticated, where: "owner = @auth.id"}, {roles: [editor]}]
        roles:
          editor: {inherits: [viewer]}
          viewer: {}
        """
}

@Suite("Identity: register, sign in, refresh families, sessions")
struct IdentityTests {
    @Test(arguments: TestBackend.all)
    func registerAndSignIn(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: IdentityFixtures.schema) { api in
            let reg = try await api.post(
                "/v1/auth/register",
                #"{"email":" Ada@Example.COM ","password":"correct horse battery","name":"Ada"}"#,
                auth: .none
            )
            #expect(reg.status == .created)
            #expect(reg["email"] == .string("ada@example.com"))  // normalized
            #expect(reg["verified"] == .bool(false) && reg["roles"] == .array([]) && reg["disabled"] == .bool(false))
            #expect(reg["name"] == .string("Ada"))
            #expect(reg["password"] == nil && !reg.text.contains("scrypt") && !reg.text.contains("correct horse"))
            #expect(reg.header("Location") == "/v1/users/\(reg["id"]!.stringValue!)")
            // The same address in another case is taken.
            let dup = try await api.post("/v1/auth/register", #"{"email":"ADA@example.com","password":"another fine passphrase"}"#, auth: .none)
            #expect(dup.status == .conflict)
            // Weak, common, missing passwords; unknown and managed members.
            let short = try await api.post("/v1/auth/register", #"{"email":"b@example.com","password":"short"}"#, auth: .none)
            #expect(short.status == .unprocessableContent && short.fieldErrors.contains { $0.0 == "/password" })
            let common = try await api.post("/v1/auth/register", #"{"email":"b@example.com","password":"Password123"}"#, auth: .none)
            #expect(common.status == .unprocessableContent && common.fieldErrors.contains { $0.0 == "/password" })
            let noPassword = try await api.post("/v1/auth/register", #"{"email":"b@example.com"}"#, auth: .none)
            #expect(noPassword.status == .unprocessableContent)
            let badEmail = try await api.post("/v1/auth/register", #"{"email":"not-an-email","password":"correct horse battery"}"#, auth: .none)
            #expect(badEmail.status == .unprocessableContent && badEmail.fieldErrors.contains { $0.0 == "/email" })
            // Mass assignment at registration: roles, verified, disabled are not the registrant's to set.
            let mass = try await api.post(
                "/v1/auth/register",
                #"{"email":"m@example.com","password":"correct horse battery","roles":["editor"],"verified":true}"#,
                auth: .none
            )
            #expect(mass.status == .unprocessableContent)
            #expect(Set(mass.fieldErrors.map(\.0)) == ["/roles", "/verified"] && mass.fieldErrors.allSatisfy { $0.1 == "read_only" })
            #expect(try await api.get("/v1/users?filter=email%20%3D%20'm%40example.com'&total=true")["total"] == .int(0))
            let chosenID = try await api.post(
                "/v1/auth/register",
                #"{"id":"00000000-0000-7000-8000-000000000001","email":"i@example.com","password":"correct horse battery"}"#,
                auth: .none
            )
            #expect(chosenID.status == .unprocessableContent && chosenID.fieldErrors.first?.0 == "/id")

            // Sign in: the token response (API.md §8).
            let login = try await api.post("/v1/auth/login", #"{"email":"ADA@example.com","password":"correct horse battery"}"#, auth: .none)
            #expect(login.status == .ok)
            #expect(login.header("Cache-Control") == "no-store")
            #expect(login["token_type"] == .string("Bearer") && login["expires_in"] == .int(900))
            #expect(login["user"]?["id"] == reg["id"])
            let access = try #require(login["access_token"]?.stringValue)
            let jwt = try DecodedJWT(access)
            #expect(jwt.header["alg"] == .string("EdDSA") && jwt.header["typ"] == .string("JWT"))
            let kid = try #require(jwt.header["kid"]?.stringValue)
            let claims = jwt.payload
            #expect(claims["sub"] == reg["id"] && claims["aud"] == .string("basalt"))
            #expect(claims["iss"] == .string("http://127.0.0.1:8080"))
            #expect((claims["exp"]?.integerValue ?? 0) - (claims["iat"]?.integerValue ?? 0) == 900)
            #expect(claims["nbf"] != nil && claims["jti"]?.stringValue != nil && claims["roles"] == .array([]) && claims["scope"] != nil)
            let jwks = try await api.get("/.well-known/jwks.json", auth: .none)
            #expect(jwks.status == .ok)
            let keys = try #require(jwks["keys"]?.arrayValue)
            #expect(
                keys.contains { $0["kid"]?.stringValue == kid && $0["kty"] == .string("OKP") && $0["crv"] == .string("Ed25519") && $0["d"] == nil }
            )

            let me = try await api.get("/v1/auth/me", auth: .bearer(access))
            #expect(me.status == .ok && me["email"] == .string("ada@example.com"))
            #expect(me.header("Cache-Control") == "no-store")
            #expect(try await api.get("/v1/auth/me", auth: .none).status == .unauthorized)
            #expect(try await api.get("/v1/auth/me").status == .forbidden)  // an API key is not a user

            // Wrong password, unknown email, disabled account: one answer.
            let wrong = try await api.post("/v1/auth/login", #"{"email":"ada@example.com","password":"wrong horse battery"}"#, auth: .none)
            let unknown = try await api.post("/v1/auth/login", #"{"email":"nobody@example.com","password":"wrong horse battery"}"#, auth: .none)
            #expect(wrong.status == .unauthorized && unknown.status == .unauthorized)
            #expect(wrong["detail"] == unknown["detail"] && wrong["type"] == unknown["type"])
            let id = reg["id"]!.stringValue!
            #expect(try await api.patch("/v1/admin/users/\(id)", #"{"disabled":true}"#).status == .ok)
            let disabled = try await api.post("/v1/auth/login", #"{"email":"ada@example.com","password":"correct horse battery"}"#, auth: .none)
            #expect(disabled.status == .unauthorized && disabled["detail"] == wrong["detail"])
            // The disabled user's still-unexpired token is refused at once.
            #expect(try await api.get("/v1/auth/me", auth: .bearer(access)).status == .unauthorized)
        }
    }

    @Test(arguments: TestBackend.all)
    func refreshRotatesAndReuseRevokesTheFamily(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: IdentityFixtures.schema) { api in
            let ada = try await api.signUp("ada@example.com")
            let r1 = try await api.post("/v1/auth/refresh", #"{"refresh_token":"\#(ada.refreshToken)"}"#, auth: .none)
            #expect(r1.status == .ok && r1.header("Cache-Control") == "no-store")
            let second = try #require(r1["refresh_token"]?.stringValue)
            #expect(second != ada.refreshToken)
            #expect(try await api.get("/v1/auth/me", auth: .bearer(r1["access_token"]!.stringValue!)).status == .ok)
            // Presenting the used token again: 401, and the family (with `second`) is dead.
            let reuse = try await api.post("/v1/auth/refresh", #"{"refresh_token":"\#(ada.refreshToken)"}"#, auth: .none)
            #expect(reuse.status == .unauthorized)
            #expect(try await api.post("/v1/auth/refresh", #"{"refresh_token":"\#(second)"}"#, auth: .none).status == .unauthorized)
            #expect(try await api.post("/v1/auth/refresh", #"{"refresh_token":"bsr_unknown"}"#, auth: .none).status == .unauthorized)
            #expect(try await api.post("/v1/auth/refresh", #"{}"#, auth: .none).status == .unprocessableContent)

            // Logout revokes its family; other sessions live on.
            let s1 = try await api.signIn("ada@example.com")
            let s2 = try await api.signIn("ada@example.com")
            let sessions = try await api.get("/v1/auth/sessions", auth: s1.auth)
            #expect(sessions.status == .ok && sessions["items"]?.arrayValue?.count == 2)
            #expect(try await api.post("/v1/auth/logout", #"{"refresh_token":"\#(s1.refreshToken)"}"#, auth: .none).status == .noContent)
            #expect(try await api.post("/v1/auth/refresh", #"{"refresh_token":"\#(s1.refreshToken)"}"#, auth: .none).status == .unauthorized)
            let left = try await api.get("/v1/auth/sessions", auth: s2.auth)["items"]?.arrayValue ?? []
            #expect(left.count == 1)
            // Revoke a session by id; someone else's id is a 404.
            let bob = try await api.signUp("bob@example.com")
            let sid = try #require(left.first?["id"]?.stringValue)
            #expect(try await api.delete("/v1/auth/sessions/\(sid)", auth: bob.auth).status == .notFound)
            #expect(try await api.delete("/v1/auth/sessions/\(sid)", auth: s2.auth).status == .noContent)
            #expect(try await api.post("/v1/auth/refresh", #"{"refresh_token":"\#(s2.refreshToken)"}"#, auth: .none).status == .unauthorized)
            // Admin: revoke every session of a user.
            let b2 = try await api.signIn("bob@example.com")
            #expect(try await api.post("/v1/admin/users/\(bob.id)/revoke-sessions", "{}").status == .noContent)
            #expect(try await api.post("/v1/auth/refresh", #"{"refresh_token":"\#(b2.refreshToken)"}"#, auth: .none).status == .unauthorized)
            #expect(try await api.post("/v1/auth/refresh", #"{"refresh_token":"\#(bob.refreshToken)"}"#, auth: .none).status == .unauthorized)
        }
    }

    /// Access tokens name their session (`sid`) and end with it (API.md §8): sign-out, revoking
    /// the session, an admin's revocation and disabling the user end them at once; enabling the
    /// user again does not revive them.
    @Test(arguments: TestBackend.all)
    func accessTokensEndWithTheirSession(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: IdentityFixtures.schema) { api in
            let ada = try await api.signUp("ada@example.com")
            let s1 = try await api.signIn("ada@example.com")
            let s2 = try await api.signIn("ada@example.com")
            let sessions = try await api.get("/v1/auth/sessions", auth: s1.auth)["items"]?.arrayValue ?? []
            let sid = { (token: String) throws -> String in
                let payload = token.split(separator: ".").map(String.init)[1]
                return try #require(try JSONValue.parse(Base64URL.decode(payload) ?? [])["sid"]?.stringValue)
            }
            #expect(
                Set(sessions.compactMap { $0["id"]?.stringValue })
                    == Set([try sid(ada.accessToken), try sid(s1.accessToken), try sid(s2.accessToken)])
            )
            for t in [ada, s1, s2] { #expect(try await api.get("/v1/auth/me", auth: t.auth).status == .ok) }
            // Sign-out ends that session's token, and only that one.
            #expect(try await api.post("/v1/auth/logout", #"{"refresh_token":"\#(ada.refreshToken)"}"#, auth: .none).status == .noContent)
            #expect(try await api.get("/v1/auth/me", auth: ada.auth).status == .unauthorized)
            #expect(try await api.get("/v1/notes", auth: ada.auth).status == .unauthorized)  // never anonymous either
            #expect(try await api.get("/v1/auth/me", auth: s1.auth).status == .ok)
            // Revoking a session by id.
            #expect(try await api.delete("/v1/auth/sessions/\(try sid(s1.accessToken))", auth: s2.auth).status == .noContent)
            #expect(try await api.get("/v1/auth/me", auth: s1.auth).status == .unauthorized)
            #expect(try await api.get("/v1/auth/me", auth: s2.auth).status == .ok)
            // An admin's revocation.
            #expect(try await api.post("/v1/admin/users/\(ada.id)/revoke-sessions", "{}").status == .noContent)
            #expect(try await api.get("/v1/auth/me", auth: s2.auth).status == .unauthorized)
            // Disabling ends every token; enabling does not revive them, a new sign-in is needed.
            let s3 = try await api.signIn("ada@example.com")
            #expect(try await api.patch("/v1/admin/users/\(ada.id)", #"{"disabled":true}"#).status == .ok)
            #expect(try await api.get("/v1/auth/me", auth: s3.auth).status == .unauthorized)
            #expect(try await api.patch("/v1/admin/users/\(ada.id)", #"{"disabled":false}"#).status == .ok)
            #expect(try await api.get("/v1/auth/me", auth: s3.auth).status == .unauthorized)
            // Through the records API too (an admin's PATCH of `disabled`).
            let s35 = try await api.signIn("ada@example.com")
            #expect(try await api.patch("/v1/users/\(ada.id)", #"{"disabled":true}"#).status == .ok)
            #expect(try await api.patch("/v1/users/\(ada.id)", #"{"disabled":false}"#).status == .ok)
            #expect(try await api.get("/v1/auth/me", auth: s35.auth).status == .unauthorized)
            #expect(try await api.post("/v1/auth/refresh", #"{"refresh_token":"\#(s35.refreshToken)"}"#, auth: .none).status == .unauthorized)
            let s4 = try await api.signIn("ada@example.com")
            #expect(try await api.get("/v1/auth/me", auth: s4.auth).status == .ok)
            // A refreshed token belongs to the same session.
            let refreshed = try await api.post("/v1/auth/refresh", #"{"refresh_token":"\#(s4.refreshToken)"}"#, auth: .none)
            let t5 = try #require(refreshed["access_token"]?.stringValue)
            #expect(try sid(t5) == (try sid(s4.accessToken)))
        }
    }

    @Test(arguments: TestBackend.all)
    func adminManagesUsersAndEveryBypassIsAudited(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: IdentityFixtures.schema) { api in
            let ada = try await api.signUp("ada@example.com")
            let list = try await api.get("/v1/admin/users?filter=email%20~%20'ada'&total=true")
            #expect(list.status == .ok && list["total"] == .int(1))
            #expect(try await api.get("/v1/admin/users", auth: ada.auth).status == .forbidden)
            #expect(try await api.get("/v1/admin/users", auth: .none).status == .unauthorized)
            let bad = try await api.patch("/v1/admin/users/\(ada.id)", #"{"roles":["nope"],"email":"x@example.com"}"#)
            #expect(bad.status == .unprocessableContent && Set(bad.fieldErrors.map(\.0)) == ["/roles/0", "/email"])
            let set = try await api.patch("/v1/admin/users/\(ada.id)", #"{"roles":["editor"],"verified":true}"#)
            #expect(set.status == .ok && set["roles"] == .array(["editor"]) && set["verified"] == .bool(true))
            #expect(try await api.patch("/v1/admin/users/00000000-0000-7000-8000-000000000000", #"{"verified":true}"#).status == .notFound)
            // New tokens carry effective roles, inherited ones included.
            let again = try await api.signIn("ada@example.com")
            #expect(try DecodedJWT(again.accessToken).payload["roles"] == .array(["editor", "viewer"]))
            // The admin's record writes and reads went to the audit log.
            _ = try await api.get("/v1/notes")
            let audit = try await api.get("/v1/admin/audit?limit=200")
            #expect(audit.status == .ok)
            let actions = (audit["items"]?.arrayValue ?? []).compactMap { $0["action"]?.stringValue }
            #expect(actions.contains("record.update") && actions.contains("record.list"))
            let page = try await api.get("/v1/admin/audit?limit=1&action=record.update")
            #expect(page["items"]?.arrayValue?.count == 1 && page["items"]?.arrayValue?.first?["record_id"] == .string(ada.id))
            #expect(try await api.get("/v1/admin/audit", auth: ada.auth).status == .forbidden)
            // users is built in: it cannot be dropped, its fields not redefined.
            #expect(try await api.delete("/v1/admin/collections/users").status == .unprocessableContent)
            let redefine = try await api.patch("/v1/admin/collections/users", #"{"fields":{"email":{"type":"text"}}}"#)
            #expect(redefine.status == .unprocessableContent)
        }
    }

    @Test(arguments: TestBackend.all)
    func keyRotationKeepsOldTokensValid(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: IdentityFixtures.schema) { api in
            let ada = try await api.signUp("ada@example.com")
            let oldKid = try DecodedJWT(ada.accessToken).header["kid"]?.stringValue
            let newKid = try await api.runtime.rotateSigningKeys()
            #expect(newKid != oldKid)
            let jwks = try await api.get("/.well-known/jwks.json", auth: .none)
            let kids = Set((jwks["keys"]?.arrayValue ?? []).compactMap { $0["kid"]?.stringValue })
            #expect(kids == [newKid, oldKid!])
            #expect(try await api.get("/v1/auth/me", auth: ada.auth).status == .ok)
            let fresh = try await api.signIn("ada@example.com")
            #expect(try DecodedJWT(fresh.accessToken).header["kid"]?.stringValue == newKid)
            #expect(try await api.get("/v1/auth/me", auth: fresh.auth).status == .ok)
        }
    }
}

@Suite("Interoperability and API keys")
struct InteropTests {
    /// The repository root (tests/interop/verify_jwt.py lives there).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func python(_ args: [String]) async throws -> (Int32, String) {
        let r = try await Subprocess.run(["python3"] + args)
        return (r.status, r.output)
    }

    @Test(arguments: TestBackend.all)
    func tokensVerifyWithAnIndependentJOSELibrary(_ backend: TestBackend) async throws {
        let (hasJoserfc, _) = try await Self.python(["-c", "import joserfc"])
        if hasJoserfc != 0 {
            // CI installs it (scripts/test.sh); locally, say why nothing was checked.
            try #require(ProcessInfo.processInfo.environment["CI"] == nil, "joserfc is not installed (pip install joserfc)")
            return
        }
        try await backend.withApp(schema: IdentityFixtures.schema) { api in
            let ada = try await api.signUp("ada@example.com")
            _ = try await api.runtime.rotateSigningKeys()  // verify against a JWKS of two keys
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("basalt-jose-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let jwks = try await api.get("/.well-known/jwks.json", auth: .none).text
            try jwks.write(to: dir.appendingPathComponent("jwks.json"), atomically: true, encoding: .utf8)
            let script = Self.root.appendingPathComponent("tests/interop/verify_jwt.py").path
            for token in [ada.accessToken, try await api.signIn("ada@example.com").accessToken] {
                try token.write(to: dir.appendingPathComponent("token"), atomically: true, encoding: .utf8)
                let (status, output) = try await Self.python([
                    script, dir.appendingPathComponent("jwks.json").path, dir.appendingPathComponent("token").path,
                    "http://127.0.0.1:8080", "basalt",
                ])
                #expect(status == 0, "\(output)")
                #expect(output.contains(ada.id))
            }
            // And it refuses a tampered one: the check is real.
            let parts = ada.accessToken.split(separator: ".").map(String.init)
            let tampered = parts[0] + "." + Forge.b64(Forge.claims(ada.id, roles: #"["editor"]"#)) + "." + parts[2]
            try tampered.write(to: dir.appendingPathComponent("token"), atomically: true, encoding: .utf8)
            let (bad, _) = try await Self.python([
                script, dir.appendingPathComponent("jwks.json").path, dir.appendingPathComponent("token").path, "http://127.0.0.1:8080", "basalt",
            ])
            #expect(bad != 0)
        }
    }

    @Test(arguments: TestBackend.all)
    func apiKeysAreHashedExpireAndTrackLastUse(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: IdentityFixtures.schema) { api in
            let created = try await api.post("/v1/admin/api-keys", #"{"name":"svc","roles":["editor"],"expires_at":"2999-01-01T00:00:00Z"}"#)
            #expect(created.status == .created)
            let key = try #require(created["key"]?.stringValue)
            #expect(created["last_used_at"] == .null)
            let audited = try await api.get("/v1/admin/audit?action=api_key.create")
            #expect(audited["items"]?.arrayValue?.first?["record_id"] == created["id"])
            // Stored as a digest only.
            let rows = try await api.runtime.store.fetch(SQLQuery(sql: "SELECT \"key_hash\" FROM \"_basalt_api_keys\""), types: [.text])
            #expect(rows.contains { $0[0].text == Digest.sha256Hex(key) } && !rows.contains { $0[0].text == key })
            // Role-scoped: editor inherits viewer, so the team rule applies (no team: nothing visible).
            #expect(try await api.get("/v1/notes?total=true", auth: .bearer(key))["total"] == .int(0))
            let listed = try await api.get("/v1/admin/api-keys")
            let me = try #require(listed["items"]?.arrayValue?.first { $0["name"] == .string("svc") })
            #expect(me["last_used_at"]?.stringValue != nil && me["key"] == nil)
            let expired = try await api.post("/v1/admin/api-keys", #"{"name":"old","roles":[],"expires_at":"2001-01-01T00:00:00Z"}"#)
            #expect(try await api.get("/v1/notes", auth: .bearer(expired["key"]!.stringValue!)).status == .unauthorized)
        }
    }
}

@Suite("Identity upkeep and the built-in users collection")
struct IdentityUpkeepTests {
    @Test(arguments: TestBackend.all)
    func closedRegistrationLeavesAccountsToAdmins(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: IdentityFixtures.schema, configure: { $0.auth.registrationOpen = false }) { api in
            let r = try await api.post("/v1/auth/register", #"{"email":"ada@example.com","password":"correct horse battery"}"#, auth: .none)
            #expect(r.status == .forbidden && r.problem == "forbidden")
            #expect(try await api.get("/v1/admin/users?total=true")["total"] == .int(0))
            // An admin creates the account (email normalized, no password yet); the owner sets one
            // through the reset flow and can then sign in.
            let made = try await api.post("/v1/users", #"{"email":"Ada@Example.com","verified":true}"#)
            #expect(made.status == .created && made["email"] == .string("ada@example.com"))
            #expect(
                try await api.post("/v1/auth/login", #"{"email":"ada@example.com","password":"correct horse battery"}"#, auth: .none).status
                    == .unauthorized
            )
            #expect(try await api.post("/v1/auth/password/forgot", #"{"email":"ada@example.com"}"#, auth: .none).status == .accepted)
            let token = try await api.mailedToken(to: "ada@example.com", subject: "Reset")
            #expect(
                try await api.post("/v1/auth/password/reset", #"{"token":"\#(token)","password":"correct horse battery"}"#, auth: .none).status
                    == .noContent
            )
            _ = try await api.signIn("ada@example.com")
        }
    }

    @Test(arguments: TestBackend.all)
    func relationsToUsersNeedNoDeclaration(_ backend: TestBackend) async throws {
        let schema = """
            collections:
              todos:
                fields:
                  title: {type: text, required: true}
                  owner: {type: relation, collection: users, on_delete: cascade}
                access:
                  list: [{who: authenticated, where: "owner = @auth.id"}]
                  create: [{who: authenticated, where: "@new.owner = @auth.id"}]
            """
        try await backend.withApp(schema: schema) { api in
            let ada = try await api.signUp("ada@example.com")
            #expect(try await api.post("/v1/todos", #"{"title":"t","owner":"\#(ada.id)"}"#, auth: ada.auth).status == .created)
            #expect(try await api.get("/v1/todos?total=true", auth: ada.auth)["total"] == .int(1))
            // Deleting the user cascades to their records and forgets their credentials and sessions.
            #expect(try await api.delete("/v1/users/\(ada.id)").status == .noContent)
            #expect(try await api.get("/v1/todos?total=true")["total"] == .int(0))
            for table in ["_basalt_credentials", "_basalt_sessions"] {
                let n = try await api.runtime.store.fetchOne(SQLQuery(sql: "SELECT COUNT(*) FROM \"\(table)\""), types: [.int])?[0].int
                #expect(n == 0, "\(table)")
            }
            #expect(try await api.get("/v1/auth/me", auth: ada.auth).status == .unauthorized)
            #expect(
                try await api.post("/v1/auth/login", #"{"email":"ada@example.com","password":"correct horse battery"}"#, auth: .none).status
                    == .unauthorized
            )
        }
    }

    @Test(arguments: TestBackend.all)
    func purgeForgetsDeadSessionsAndTokensOnly(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: IdentityFixtures.schema) { api in
            let live = try await api.signUp("ada@example.com")
            let gone = try await api.signIn("ada@example.com")
            #expect(try await api.post("/v1/auth/logout", #"{"refresh_token":"\#(gone.refreshToken)"}"#, auth: .none).status == .noContent)
            #expect(try await api.post("/v1/auth/verify/request", "{}", auth: live.auth).status == .accepted)
            func count(_ table: String) async throws -> Int64 {
                try await api.runtime.store.fetchOne(SQLQuery(sql: "SELECT COUNT(*) FROM \"\(table)\""), types: [.int])?[0].int ?? -1
            }
            #expect(try await count("_basalt_sessions") == 2)
            // Now: nothing is old enough.
            try await api.runtime.auth.purgeExpired()
            #expect(try await count("_basalt_sessions") == 2)
            #expect(try await count("_basalt_mail_tokens") == 1)
            // Two days on (the clock is the one thing faked): the revoked session and the expired
            // verification token go; the live session and its refresh token stay and still work.
            try await api.runtime.auth.purgeExpired(now: Timestamp(millisecondsSinceEpoch: Timestamp.now().millisecondsSinceEpoch + 2 * 86_400_000))
            #expect(try await count("_basalt_sessions") == 1)
            #expect(try await count("_basalt_mail_tokens") == 0)
            #expect(try await count("_basalt_refresh_tokens") == 1)
            #expect(try await api.post("/v1/auth/refresh", #"{"refresh_token":"\#(live.refreshToken)"}"#, auth: .none).status == .ok)
            #expect(try await api.post("/v1/auth/refresh", #"{"refresh_token":"\#(gone.refreshToken)"}"#, auth: .none).status == .unauthorized)
        }
    }
}
