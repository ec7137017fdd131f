import BasaltTesting
import Foundation
import GeneratedAnonClient
import OpenAPIAsyncHTTPClient
import OpenAPIRuntime
import Testing

@Suite("Swift client generated from the anonymous document")
struct AnonGeneratedClientTests {
    /// Every field type through the generated types, both ways; versions, If-Match, problems.
    @Test(arguments: TestBackend.all)
    func crudOnEveryFieldType(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: try Scopes.schema) { api in
            let client = Client(serverURL: Scopes.serverURL(api), configuration: generatedClientConfiguration, transport: AsyncHTTPClientTransport())
            guard case .tags(let tag) = try await client.create_tags(body: .json(.init(label: "red"))).created.body.json else {
                throw GeneratedClientFailure("the tag came back as {id} only")
            }
            let due = Date(timeIntervalSince1970: 1_800_000_000.5)
            let data = try JSONDecoder().decode(OpenAPIValueContainer.self, from: Data(#"{"a": [1, 2], "b": "x"}"#.utf8))
            let create = Components.Schemas.things_create(
                active: false,
                contact: "ada@example.com",
                data: data,
                due_at: due,
                homepage: "https://example.com/a",
                notes: "n",
                price: 9.5,
                quantity: 3,
                status: .published,
                tag: tag.id,
                title: "First thing"
            )
            let created = try await client.create_things(body: .json(create)).created
            guard case .things(let thing) = try created.body.json else { throw GeneratedClientFailure("the record came back as {id} only") }
            #expect(thing.version == 1 && thing.title == "First thing" && thing.quantity == 3 && thing.price == 9.5 && thing.active == false)
            #expect(thing.due_at == due && thing.contact == "ada@example.com" && thing.homepage == "https://example.com/a")
            #expect(thing.status == .published && thing.tag == tag.id && thing.data == data && thing.parent == nil)

            let got = try await client.get_things(path: .init(id: thing.id)).ok
            let gotID = try got.body.json.id
            #expect(got.headers.ETag == "\"1\"" && gotID == thing.id)

            let listed = try await client.list_things(query: .init(filter: "id = '\(thing.id)'", expand: "tag", total: true)).ok.body.json
            #expect(listed.items.count == 1 && listed.total == 1 && listed.next_cursor == nil)
            #expect(listed.items.first?.expand?.tag?.label == "red")

            let patched = try await client.update_things(
                path: .init(id: thing.id),
                headers: .init(If_hyphen_Match: "\"1\""),
                body: .json(.init(quantity: 4, title: "Patched thing"))
            ).ok.body.json
            #expect(patched.version == 2 && patched.quantity == 4 && patched.title == "Patched thing" && patched.price == 9.5)
            let stale = try await client.update_things(
                path: .init(id: thing.id),
                headers: .init(If_hyphen_Match: "\"1\""),
                body: .json(.init(quantity: 5))
            )
            #expect(try stale.preconditionFailed.body.application_problem_plus_json.status == 412)

            let invalid = try await client.create_things(body: .json(.init(quantity: -1, title: "")))
            let problem = try invalid.unprocessableContent.body.application_problem_plus_json
            #expect(Set(problem.errors?.map(\.field) ?? []) == ["/title", "/quantity"])

            _ = try await client.delete_things(path: .init(id: thing.id)).noContent
            #expect(try await client.get_things(path: .init(id: thing.id)).notFound.body.application_problem_plus_json.status == 404)
        }
    }
}
