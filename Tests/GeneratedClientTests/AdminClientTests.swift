import BasaltTesting
import Foundation
import GeneratedAdminClient
import OpenAPIAsyncHTTPClient
import OpenAPIRuntime
import Testing

@Suite("Swift client generated from the admin document")
struct AdminGeneratedClientTests {
    /// The admin API and the data API through one generated client with an admin key.
    @Test(arguments: TestBackend.all)
    func adminAndDataAPI(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: try Scopes.schema) { api in
            let callers = try await Scopes.callers(api)
            let client = Client(
                serverURL: Scopes.serverURL(api),
                configuration: generatedClientConfiguration,
                transport: AsyncHTTPClientTransport(),
                middlewares: [Bearer(token: callers.adminKey)]
            )
            let collections = try await client.admin_list_collections().ok.body.json
            #expect(Set(collections.items.map(\.name)).isSuperset(of: ["things", "drafts", "reviews", "tags", "users"]))

            guard
                case .drafts(let draft) = try await client.create_drafts(body: .json(.init(body: "by admin", owner: callers.userID))).created.body
                    .json
            else { throw GeneratedClientFailure("the draft came back as {id} only") }
            #expect(draft.owner == callers.userID)
            guard
                case .things(let thing) = try await client.create_things(body: .json(.init(owner: callers.userID, title: "Owned"))).created.body.json
            else { throw GeneratedClientFailure("the thing came back as {id} only") }
            let replaced = try await client.replace_things(
                path: .init(id: thing.id),
                headers: .init(If_hyphen_Match: "\"1\""),
                body: .json(.init(quantity: 7, title: "Replaced"))
            ).ok.body.json
            #expect(replaced.version == 2 && replaced.quantity == 7 && replaced.owner == nil)
            let users = try await client.list_users(query: .init(filter: "email = 'user@example.com'")).ok.body.json
            #expect(users.items.map(\.id) == [callers.userID])
            _ = try await client.delete_things(path: .init(id: thing.id)).noContent
            _ = try await client.delete_drafts(path: .init(id: draft.id)).noContent
            #expect(try await client.get_drafts(path: .init(id: draft.id)).notFound.body.application_problem_plus_json.status == 404)
        }
    }
}
