import Basalt
import BasaltAuth
import BasaltCore
import BasaltHTTP
import BasaltServices
import BasaltStorage
import BasaltTesting
import Foundation
import HTTPTypes
import Hummingbird
import Testing

/// Basalt as an OAuth 2.1 authorization server (API.md §8.1), driven by independent clients:
/// Authlib and joserfc (Tests/OAuth/authlib_flows.py), a real Chromium on the consent page
/// (Tests/OAuth/consent_browser.py), and raw HTTP here for what those do not reach.
@Suite(.serialized)
struct OAuthServerTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("OAuth")
    static let password = "correct horse battery"

    static let schema = """
        collections:
          notes:
            fields:
              text:  {type: text, required: true, max: 2000}
              owner: {type: relation, collection: users, on_delete: cascade}
            access:
              list:   [{who: authenticated, where: "owner = @auth.id"}, {roles: [service]}]
              view:   [{who: authenticated, where: "owner = @auth.id"}, {roles: [service]}]
              create: [{who: authenticated, where: "@new.owner = @auth.id"}]
              update: [{who: authenticated, where: "owner = @auth.id && @new.owner = @auth.id"}]
              delete: [{who: authenticated, where: "owner = @auth.id"}]
        roles:
          service: {}
        """

    /// The server on a port chosen first, so that its issuer (`BASALT_PUBLIC_URL`) is the URL
    /// clients use — `iss` checks compare the two.
    static func withServer(_ backend: TestBackend, _ body: @Sendable (APIClient, String) async throws -> Void) async throws {
        let port = MaildirServer.freePort()
        let base = "http://127.0.0.1:\(port)"
        try await backend.withApp(
            schema: schema,
            configure: {
                $0.host = "127.0.0.1"
                $0.port = port
                $0.http.publicURL = base
            }
        ) { api in try await body(api, base) }
    }

    /// A user with a password, verified as if through the mail flow (ID tokens then say
    /// `email_verified`) unless `verified` is false.
    @discardableResult
    static func makeUser(_ rt: BasaltRuntime, _ email: String, verified: Bool = true) async throws -> String {
        let user = try await rt.auth.register(
            .object(JSONObject([("email", .string(email)), ("password", .string(password))])),
            client: .init(address: "127.0.0.1", userAgent: nil)
        )
        let id = user["id"]?.stringValue ?? ""
        if verified {
            _ = try await rt.auth.adminUpdate(Principal(kind: .admin, id: "test"), id: id, .object(JSONObject([("verified", .bool(true))])))
        }
        return id
    }

    /// Runs a driver script against a server listening on the issuer's own port (the test
    /// framework's servers take any free port, so this one runs the application itself).
    /// `setup` makes the users the script expects and returns its environment.
    static func runScript(
        _ name: String,
        backend: TestBackend,
        configure: @escaping (inout BasaltConfiguration) -> Void = { _ in },
        setup: @Sendable (BasaltRuntime) async throws -> [String],
        check: @Sendable (BasaltRuntime) async throws -> Void = { _ in }
    ) async throws -> Subprocess.Result {
        let port = MaildirServer.freePort()
        let base = "http://127.0.0.1:\(port)"
        return try await backend.withRuntime(
            schema: schema,
            configure: {
                $0.host = "127.0.0.1"
                $0.port = port
                $0.http.publicURL = base
                configure(&$0)
            }
        ) { rt, key in
            let env = try await setup(rt)
            let running = AsyncStream<Void>.makeStream()
            let app = rt.makeApplication { _ in running.continuation.yield() }
            return try await withThrowingTaskGroup(of: Subprocess.Result?.self) { group in
                group.addTask {
                    try await app.runService(gracefulShutdownSignals: [])
                    return nil
                }
                var ready = running.stream.makeAsyncIterator()
                _ = await ready.next()
                let result = try await Subprocess.run(
                    ["BASALT_ADMIN_KEY=\(key)", "BASALT_USER_PASSWORD=\(password)"] + env + [
                        "python3", folder.appendingPathComponent(name).path, base,
                    ],
                    timeout: .seconds(300)
                )
                try await check(rt)
                group.cancelAll()
                return result
            }
        }
    }

    static func runScript(
        _ name: String,
        backend: TestBackend,
        email: String,
        check: @Sendable (BasaltRuntime) async throws -> Void = { _ in }
    )
        async throws -> Subprocess.Result
    {
        try await runScript(
            name,
            backend: backend,
            setup: { rt in
                try await makeUser(rt, email)
                return ["BASALT_USER_EMAIL=\(email)"]
            },
            check: check
        )
    }

    @Test(arguments: TestBackend.all)
    func authlibDrivesEveryGrant(_ backend: TestBackend) async throws {
        let result = try await Self.runScript("authlib_flows.py", backend: backend, email: "ada@example.com") { rt in
            // Codes and secrets are stored only as digests.
            let codes = try await rt.store.fetch(SQLQuery(sql: #"SELECT "code_hash" FROM "_basalt_oauth_codes""#), types: [.text])
            #expect(!codes.isEmpty)
            #expect(codes.allSatisfy { ($0.first?.text ?? "").count == 64 })
        }
        #expect(result.succeeded, "\(result.output)")
        #expect(!result.output.contains("FAIL") && result.output.contains("authlib flows: 23 ok\n"), "\(result.output)")
    }

    @Test
    func consentPageInChromium() async throws {
        let result = try await Self.runScript("consent_browser.py", backend: .sqlite, email: "grace@example.com")
        #expect(result.succeeded, "\(result.output)")
        #expect(!result.output.contains("FAIL") && result.output.contains("consent browser: 5 ok\n"), "\(result.output)")
    }

    // MARK: - Raw HTTP

    /// A registered client, from the admin API.
    static func register(_ api: APIClient, _ json: String) async throws -> JSONValue {
        let r = try await api.post("/v1/admin/oauth/clients", json)
        guard r.status == .created else { throw TestSetupError("register client: \(r.status) \(r.text)") }
        return r.json
    }

    static func form(_ api: APIClient, _ path: String, _ fields: [(String, String)], headers: [String: String] = [:]) async throws -> APIClient.Reply
    {
        let body = fields.map { "\(enc($0.0))=\(enc($0.1))" }.joined(separator: "&")
        return try await api.send(.post, path, json: body, auth: .none, headers: headers, contentType: "application/x-www-form-urlencoded")
    }

    static func enc(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? ""
    }

    static func query(_ url: String) -> [String: String] {
        var out: [String: String] = [:]
        for item in URLComponents(string: url)?.queryItems ?? [] { out[item.name] = item.value ?? "" }
        return out
    }

    static let verifier = "a-verifier-of-enough-length-0123456789-abcdefghijklmnop"
    static var challenge: String { Base64URL.encode(Digest.sha256(Array(verifier.utf8))) }

    /// The authorization request's parameters for `client`.
    static func authorization(_ client: String, scope: String, state: String = "s1") -> [(String, String)] {
        [
            ("response_type", "code"), ("client_id", client), ("redirect_uri", "http://127.0.0.1:9/cb"), ("scope", scope), ("state", state),
            ("code_challenge", challenge), ("code_challenge_method", "S256"),
        ]
    }

    /// Signs in on the consent page and allows: the redirect's query.
    static func consent(_ api: APIClient, client: String, scope: String, email: String, otp: String? = nil) async throws -> APIClient.Reply {
        let params = authorization(client, scope: scope)
        let page = try await api.get("/oauth/authorize?" + params.map { "\(enc($0.0))=\(enc($0.1))" }.joined(separator: "&"), auth: .none)
        guard page.status == .ok, let cookie = page.header("Set-Cookie")?.split(separator: ";").first.map(String.init),
            let csrf = cookie.split(separator: "=", maxSplits: 1).last.map(String.init)
        else { throw TestSetupError("authorize page: \(page.status) \(page.text)") }
        var fields = params + [("csrf", csrf), ("email", email), ("password", password), ("decision", "allow")]
        if let otp { fields.append(("otp", otp)) }
        return try await form(api, "/oauth/authorize", fields, headers: ["Cookie": cookie])
    }

    static func exchange(_ api: APIClient, client: String, secret: String?, code: String) async throws -> APIClient.Reply {
        var fields = [
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", "http://127.0.0.1:9/cb"), ("code_verifier", verifier),
            ("client_id", client),
        ]
        if let secret { fields.append(("client_secret", secret)) }
        return try await form(api, "/oauth/token", fields)
    }

    @Test(arguments: TestBackend.all)
    func registrationIsValidated(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Self.schema) { api in
            let bad = try await api.post(
                "/v1/admin/oauth/clients",
                #"{"name":"x","confidential":false,"grants":["client_credentials"],"redirect_uris":["http://example.com/cb","https://a/b#f"],"scopes":["notes:delete","openid"],"roles":["nobody"],"extra":1}"#
            )
            #expect(bad.status == .unprocessableContent)
            let fields = Set(bad.fieldErrors.map(\.0))
            #expect(fields.isSuperset(of: ["/grants", "/redirect_uris/0", "/redirect_uris/1", "/scopes/0", "/roles/0", "/extra"]), "\(bad.text)")
            #expect(
                try await api.post("/v1/admin/oauth/clients", #"{"name":"x","redirect_uris":["http://127.0.0.1/cb"]}"#, auth: .none).status
                    == .unauthorized
            )
            let user = try await api.signUp("u@example.com")
            #expect(
                try await api.post("/v1/admin/oauth/clients", #"{"name":"x","redirect_uris":["http://127.0.0.1/cb"]}"#, auth: user.auth).status
                    == .forbidden
            )

            let made = try await Self.register(api, #"{"name":"Web","redirect_uris":["https://app.example.com/cb"],"scopes":["openid"]}"#)
            #expect(made["client_secret"]?.stringValue?.hasPrefix("bcs_") == true)
            #expect(made["confidential"]?.boolValue == true && made["grants"] == .array([.string("authorization_code")]))
            let id = made["id"]?.stringValue ?? ""
            let listed = try await api.get("/v1/admin/oauth/clients")
            #expect(listed["items"]?.arrayValue?.count == 1 && !listed.text.contains("secret"))
            #expect(try await api.get("/v1/admin/oauth/clients/\(id)")["name"]?.stringValue == "Web")
            #expect(try await api.delete("/v1/admin/oauth/clients/\(id)").status == .noContent)
            #expect(try await api.get("/v1/admin/oauth/clients/\(id)").status == .notFound)
            let audit = try await api.get("/v1/admin/audit")
            #expect(audit.text.contains("oauth_client.create") && audit.text.contains("oauth_client.delete"))
        }
    }

    @Test(arguments: TestBackend.all)
    func discoveryNamesTheEndpoints(_ backend: TestBackend) async throws {
        try await Self.withServer(backend) { api, base in
            for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
                let r = try await api.get(path, auth: .none)
                #expect(r.status == .ok)
                #expect(r["issuer"]?.stringValue == base)
                #expect(r["token_endpoint"]?.stringValue == base + "/oauth/token")
                #expect(r["code_challenge_methods_supported"] == .array([.string("S256")]))
                // Only collections with a public grant are named (notes has none).
                #expect(r["scopes_supported"]?.arrayValue?.contains(.string("openid")) == true)
                #expect(r["scopes_supported"]?.arrayValue?.contains(.string("notes:write")) == false)
            }
            // A bad bearer token is no error on discovery (it ignores credentials).
            #expect(try await api.get("/.well-known/openid-configuration", auth: .bearer("nonsense")).status == .ok)
        }
    }

    /// A third-party token acts on records within its scopes, never on the account; deleting its
    /// client ends it; the consent page asks for the second factor and takes it.
    @Test(arguments: TestBackend.all)
    func oauthTokensAreNarrowAndEndWithTheirClient(_ backend: TestBackend) async throws {
        try await Self.withServer(backend) { api, _ in
            let ada = try await api.signUp("ada@example.com", password: Self.password)
            let client = try await Self.register(
                api,
                #"{"name":"Notes app","confidential":false,"grants":["authorization_code","refresh_token"],"redirect_uris":["http://127.0.0.1:9/cb"],"scopes":["openid","offline_access","notes:read"]}"#
            )
            let id = client["id"]?.stringValue ?? ""
            let redirect = try await Self.consent(api, client: id, scope: "openid offline_access notes:read", email: "ada@example.com")
            #expect(redirect.status == .found)
            let location = redirect.header("Location") ?? ""
            let q = Self.query(location)
            #expect(location.hasPrefix("http://127.0.0.1:9/cb?") && q["state"] == "s1" && q["iss"] != nil)
            let tokens = try await Self.exchange(api, client: id, secret: nil, code: q["code"] ?? "")
            #expect(tokens.status == .ok && tokens.header("Cache-Control") == "no-store", "\(tokens.text)")
            let access = APIClient.Auth.bearer(tokens["access_token"]?.stringValue ?? "")

            #expect(try await api.get("/v1/notes", auth: access).status == .ok)
            #expect(try await api.post("/v1/notes", #"{"text":"x","owner":"\#(ada.id)"}"#, auth: access).status == .forbidden)
            #expect(try await api.get("/v1/auth/sessions", auth: access).status == .forbidden)
            #expect(try await api.get("/v1/auth/me", auth: access).status == .forbidden)
            // The user sees the grant among their sessions.
            let sessions = try await api.get("/v1/auth/sessions", auth: ada.auth)
            #expect(sessions["items"]?.arrayValue?.count == 2)
            // A first-party refresh cannot use the client's refresh token, and the reverse.
            let refresh = tokens["refresh_token"]?.stringValue ?? ""
            #expect(try await api.post("/v1/auth/refresh", #"{"refresh_token":"\#(refresh)"}"#, auth: .none).status == .unauthorized)
            let own = try await Self.form(
                api,
                "/oauth/token",
                [("grant_type", "refresh_token"), ("refresh_token", ada.refreshToken), ("client_id", id)]
            )
            #expect(own.status == .badRequest && own["error"]?.stringValue == "invalid_grant")

            #expect(try await api.delete("/v1/admin/oauth/clients/\(id)").status == .noContent)
            // The grant's tokens end with the client, at once.
            #expect(try await api.get("/v1/notes", auth: access).status == .unauthorized)
            let dead = try await Self.form(api, "/oauth/token", [("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", id)])
            #expect(dead.status == .unauthorized && dead["error"]?.stringValue == "invalid_client")
        }
    }

    @Test(arguments: TestBackend.all)
    func consentPageAsksForTheSecondFactor(_ backend: TestBackend) async throws {
        try await Self.withServer(backend) { api, _ in
            let grace = try await api.signUp("grace@example.com", password: Self.password)
            let begin = try await api.post("/v1/auth/mfa/totp", #"{"password":"\#(Self.password)"}"#, auth: grace.auth)
            let secret = base32Decode(begin["secret"]?.stringValue ?? "")
            let code = OneTimePasswords.code(secret: secret, at: .now())
            #expect(try await api.post("/v1/auth/mfa/totp/confirm", #"{"otp":"\#(code)"}"#, auth: grace.auth).status == .ok)
            let client = try await Self.register(
                api,
                #"{"name":"App","confidential":false,"redirect_uris":["http://127.0.0.1:9/cb"],"scopes":["openid"]}"#
            )
            let id = client["id"]?.stringValue ?? ""
            let without = try await Self.consent(api, client: id, scope: "openid", email: "grace@example.com")
            #expect(without.status == .unauthorized && without.header("Location") == nil)
            #expect(without.text.contains("role=\"alert\"") && without.text.contains("one-time code"))
            // The code of the confirmation step was used; the next step's code signs in.
            let recovery = OneTimePasswords.code(
                secret: secret,
                at: Timestamp(millisecondsSinceEpoch: Timestamp.now().millisecondsSinceEpoch + 30_000)
            )
            let with = try await Self.consent(api, client: id, scope: "openid", email: "grace@example.com", otp: recovery)
            #expect(with.status == .found && Self.query(with.header("Location") ?? "")["code"] != nil, "\(with.text)")
        }
    }

    @Test(arguments: TestBackend.all)
    func tokenEndpointAnswersAsRFC6749Says(_ backend: TestBackend) async throws {
        try await Self.withServer(backend) { api, _ in
            let service = try await Self.register(
                api,
                #"{"name":"Worker","grants":["client_credentials"],"scopes":["notes:read"],"roles":["service"]}"#
            )
            let id = service["id"]?.stringValue ?? ""
            let secret = service["client_secret"]?.stringValue ?? ""
            let basic = "Basic " + Data("\(id):\(secret)".utf8).base64EncodedString()
            let ok = try await Self.form(api, "/oauth/token", [("grant_type", "client_credentials")], headers: ["Authorization": basic])
            #expect(ok.status == .ok && ok["refresh_token"] == nil && ok["scope"]?.stringValue == "notes:read", "\(ok.text)")
            #expect(try await api.get("/v1/notes", auth: .bearer(ok["access_token"]?.stringValue ?? "")).status == .ok)

            let wrong = "Basic " + Data("\(id):bcs_wrong".utf8).base64EncodedString()
            let refused = try await Self.form(api, "/oauth/token", [("grant_type", "client_credentials")], headers: ["Authorization": wrong])
            #expect(refused.status == .unauthorized && refused["error"]?.stringValue == "invalid_client")
            #expect(refused.header("WWW-Authenticate")?.hasPrefix("Basic") == true && refused.header("Content-Type") == "application/json")
            let twice = try await Self.form(
                api,
                "/oauth/token",
                [("grant_type", "client_credentials"), ("grant_type", "client_credentials")],
                headers: ["Authorization": basic]
            )
            #expect(twice.status == .badRequest && twice["error"]?.stringValue == "invalid_request")
            let unknown = try await Self.form(api, "/oauth/token", [("grant_type", "password")], headers: ["Authorization": basic])
            #expect(unknown["error"]?.stringValue == "unsupported_grant_type")
            let wide = try await Self.form(
                api,
                "/oauth/token",
                [("grant_type", "client_credentials"), ("scope", "notes:write")],
                headers: ["Authorization": basic]
            )
            #expect(wide["error"]?.stringValue == "invalid_scope")
            let json = try await api.send(
                .post,
                "/oauth/token",
                json: #"{"grant_type":"client_credentials"}"#,
                auth: .none,
                headers: ["Authorization": basic]
            )
            #expect(json.status == .badRequest && json["error"]?.stringValue == "invalid_request")

            // Deleting the client ends its own tokens at once, however recently they were used.
            let token = APIClient.Auth.bearer(ok["access_token"]?.stringValue ?? "")
            #expect(try await api.get("/v1/notes", auth: token).status == .ok)
            #expect(try await api.delete("/v1/admin/oauth/clients/\(id)").status == .noContent)
            #expect(try await api.get("/v1/notes", auth: token).status == .unauthorized)
        }
    }
}
