import BasaltTesting
import Foundation
import GeneratedUserClient
import OpenAPIAsyncHTTPClient
import OpenAPIRuntime
import Testing

@Suite("Swift client generated from a signed-in user's document")
struct UserGeneratedClientTests {
    /// A user's own drafts (row rules) through the generated client, signed in through it too.
    @Test(arguments: TestBackend.all)
    func crudOnOwnRows(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: try Scopes.schema) { api in
            let callers = try await Scopes.callers(api)
            let anonymous = Client(
                serverURL: Scopes.serverURL(api),
                configuration: generatedClientConfiguration,
                transport: AsyncHTTPClientTransport()
            )
            let login = try await anonymous.auth_login(body: .json(.init(email: "user@example.com", password: Scopes.password))).ok.body.json
            #expect(login.user.id == callers.userID && login.token_type == .Bearer)
            let client = Client(
                serverURL: Scopes.serverURL(api),
                configuration: generatedClientConfiguration,
                transport: AsyncHTTPClientTransport(),
                middlewares: [Bearer(token: login.access_token)]
            )
            #expect(try await client.auth_me().ok.body.json.email == "user@example.com")

            guard case .drafts(let draft) = try await client.create_drafts(body: .json(.init(body: "hello", owner: callers.userID))).created.body.json
            else {
                throw GeneratedClientFailure("the draft came back as {id} only")
            }
            #expect(draft.version == 1 && draft.words == 0 && draft.published == false)
            let theirs = try await client.create_drafts(body: .json(.init(body: "not mine", owner: callers.editorID)))
            #expect(try theirs.forbidden.body.application_problem_plus_json.status == 403)
            #expect(try await client.get_drafts(path: .init(id: draft.id)).ok.body.json.body == "hello")
            let listed = try await client.list_drafts(query: .init(total: true)).ok.body.json
            #expect(listed.items.map(\.id) == [draft.id] && listed.total == 1)
            let patched = try await client.update_drafts(path: .init(id: draft.id), body: .json(.init(published: true, words: 1))).ok.body.json
            #expect(patched.version == 2 && patched.published == true && patched.words == 1)
            _ = try await client.delete_drafts(path: .init(id: draft.id)).noContent
            #expect(try await client.get_drafts(path: .init(id: draft.id)).notFound.body.application_problem_plus_json.status == 404)
        }
    }
}
