import BasaltTesting
import Foundation
import GeneratedRoleClient
import OpenAPIAsyncHTTPClient
import OpenAPIRuntime
import Testing

@Suite("Swift client generated from a role's document")
struct RoleGeneratedClientTests {
    /// Reviews exist only for the role editor; each names a thing (a relation).
    @Test(arguments: TestBackend.all)
    func crudOnRoleOnlyCollection(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: try Scopes.schema) { api in
            let callers = try await Scopes.callers(api)
            let client = Client(
                serverURL: Scopes.serverURL(api),
                configuration: generatedClientConfiguration,
                transport: AsyncHTTPClientTransport(),
                middlewares: [Bearer(token: callers.editorToken)]
            )
            guard case .things(let thing) = try await client.create_things(body: .json(.init(title: "Reviewed"))).created.body.json else {
                throw GeneratedClientFailure("the thing came back as {id} only")
            }
            guard
                case .reviews(let review) = try await client.create_reviews(body: .json(.init(comment: "good", rating: 4, thing: thing.id))).created
                    .body.json
            else { throw GeneratedClientFailure("the review came back as {id} only") }
            #expect(review.version == 1 && review.rating == 4 && review.verdict == .accept && review.thing == thing.id)
            let missing = try await client.create_reviews(body: .json(.init(rating: 9, thing: UUID().uuidString.lowercased())))
            let problem = try missing.unprocessableContent.body.application_problem_plus_json
            #expect(problem.errors?.map(\.field) == ["/rating"])
            // A relation target that does not exist is refused once the fields themselves are valid.
            let dangling = try await client.create_reviews(body: .json(.init(rating: 3, thing: UUID().uuidString.lowercased())))
            #expect(try dangling.unprocessableContent.body.application_problem_plus_json.errors?.first?.code == .not_found)
            #expect(try await client.get_reviews(path: .init(id: review.id)).ok.body.json.comment == "good")
            #expect(try await client.list_reviews(query: .init(filter: "rating >= 4")).ok.body.json.items.map(\.id) == [review.id])
            let patched = try await client.update_reviews(path: .init(id: review.id), body: .json(.init(verdict: .reject))).ok.body.json
            #expect(patched.version == 2 && patched.verdict == .reject)
            _ = try await client.delete_reviews(path: .init(id: review.id)).noContent
            #expect(try await client.get_reviews(path: .init(id: review.id)).notFound.body.application_problem_plus_json.status == 404)
        }
    }
}
