import Basalt
import BasaltCore
import BasaltServices
import BasaltStorage
import BasaltTesting
import Foundation
import HTTPTypes
import Testing

/// Sign-in with other providers (API.md §8.1), end to end through the redirects against a real
/// OpenID provider process (oidc-provider-mock) and a provider we make misbehave
/// (Tests/OAuth/fake_provider.py): Tests/OAuth/social_signin.py drives the browser's part.
@Suite(.serialized)
struct SocialSignInTests {
    @Test(arguments: TestBackend.all)
    func signInThroughProviders(_ backend: TestBackend) async throws {
        let mock = MaildirServer.freePort()
        let fake = MaildirServer.freePort()
        let app = "http://127.0.0.1:9/app/callback"
        let providers = """
            [{"name":"mock","issuer":"http://127.0.0.1:\(mock)","client_id":"basalt-test","client_secret":"mock-secret"},
             {"name":"fake","issuer":"http://127.0.0.1:\(fake)","client_id":"basalt-fake","client_secret":"fake-secret"},
             {"name":"plain","authorization_endpoint":"http://127.0.0.1:\(fake)/plain/authorize",
              "token_endpoint":"http://127.0.0.1:\(fake)/plain/token","userinfo_endpoint":"http://127.0.0.1:\(fake)/plain/user",
              "client_id":"basalt-plain","client_secret":"plain-secret","scopes":["user"],"subject_field":"id","email_field":"email",
              "email_verified_field":"verified","token_auth":"post"}]
            """
        let result = try await OAuthServerTests.runScript(
            "social_signin.py",
            backend: backend,
            configure: {
                $0.auth.oauthProviders = (try? OAuthProvider.parse(providers)) ?? []
                $0.auth.oauthRedirectURLs = [app]
            },
            setup: { rt in
                try await OAuthServerTests.makeUser(rt, "linked@example.com")
                try await OAuthServerTests.makeUser(rt, "unverified@example.com", verified: false)
                return [
                    "MOCK_PORT=\(mock)", "FAKE_PORT=\(fake)", "APP_REDIRECT=\(app)", "VERIFIED_EMAIL=linked@example.com",
                    "UNVERIFIED_EMAIL=unverified@example.com",
                ]
            },
            check: { rt in
                // Flows, codes and identities hold no provider token; states and codes only as digests.
                let states = try await rt.store.fetch(SQLQuery(sql: #"SELECT "state_hash" FROM "_basalt_oauth_states""#), types: [.text])
                #expect(!states.isEmpty && states.allSatisfy { ($0.first?.text ?? "").count == 64 })
                let codes = try await rt.store.fetch(SQLQuery(sql: #"SELECT "code_hash" FROM "_basalt_oauth_exchanges""#), types: [.text])
                #expect(!codes.isEmpty && codes.allSatisfy { ($0.first?.text ?? "").count == 64 })
            }
        )
        #expect(result.succeeded, "\(result.output)")
        #expect(!result.output.contains("FAIL") && result.output.contains("social sign-in: 19 ok\n"), "\(result.output)")
    }

    /// A provider that cannot be reached is a 503 to retry, not an error of Basalt's; the app's
    /// redirect URI must be on the allow-list before anything else happens.
    @Test(arguments: TestBackend.all)
    func unreachableProviderIsUnavailable(_ backend: TestBackend) async throws {
        let closed = MaildirServer.freePort()
        try await backend.withApp(configure: {
            $0.auth.oauthProviders = (try? OAuthProvider.parse(#"[{"name":"down","issuer":"http://127.0.0.1:\#(closed)","client_id":"c"}]"#)) ?? []
            $0.auth.oauthRedirectURLs = ["http://127.0.0.1:9/app"]
        }) { api in
            let r = try await api.get("/v1/auth/oauth/down?redirect_uri=http://127.0.0.1:9/app", auth: .none)
            #expect(r.status == .serviceUnavailable && r.header("Retry-After") != nil && r.header("Location") == nil, "\(r.text)")
            let other = try await api.get("/v1/auth/oauth/down?redirect_uri=http://127.0.0.1:9/elsewhere", auth: .none)
            #expect(other.status == .unprocessableContent && other.header("Location") == nil)
            #expect(try await api.get("/v1/auth/oauth/none?redirect_uri=http://127.0.0.1:9/app", auth: .none).status == .notFound)
        }
    }

    @Test
    func providerSettingsParse() throws {
        let list = try OAuthProvider.parse(
            #"[{"name":"google","preset":"google","client_id":"g","client_secret":"s"},{"name":"gh","preset":"github","client_id":"h"},{"name":"corp","issuer":"https://idp.example.com/","client_id":"c","scopes":["openid"]},{"name":"ms","preset":"microsoft","client_id":"m"}]"#
        )
        #expect(list.map(\.name) == ["google", "gh", "corp", "ms"])
        #expect(list[0].issuer == "https://accounts.google.com" && list[0].isOpenIDConnect)
        #expect(list[1].issuer == nil && list[1].emailsEndpoint != nil && list[1].tokenAuth == .post && list[1].subjectField == "id")
        #expect(list[2].issuer == "https://idp.example.com" && list[2].scopes == ["openid"])
        #expect(list[3].issuer == "https://login.microsoftonline.com/common/v2.0")
        for bad in [
            #"{"name":"x"}"#, #"[{"name":"Bad Name","client_id":"x","issuer":"https://a"}]"#, #"[{"name":"x","client_id":"c"}]"#,
            #"[{"name":"x","preset":"myspace","client_id":"c"}]"#, #"[{"name":"exchange","preset":"google","client_id":"c"}]"#,
            #"[{"name":"x","preset":"google","client_id":"c"},{"name":"x","preset":"gitlab","client_id":"c"}]"#,
        ] {
            #expect(throws: BasaltError.self, "\(bad)") { try OAuthProvider.parse(bad) }
        }
    }
}
