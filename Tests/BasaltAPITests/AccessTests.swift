import BasaltCore
import BasaltTesting
import HTTPTypes
import Testing

@Suite("Grants: public, default deny, credentials")
struct AccessTests {
    @Test(arguments: TestBackend.all)
    func publicGrantsWithWhereRules(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let pub = try await api.create("posts", #"{"title":"pub","status":"published"}"#)["id"]!.stringValue!
            let draft = try await api.create("posts", #"{"title":"draft"}"#)["id"]!.stringValue!
            let list = try await api.get("/v1/posts?total=true", auth: .none)
            #expect(list.status == .ok)
            #expect(list["total"] == .int(1))
            #expect(list["items"]?.arrayValue?.first?["id"] == .string(pub))
            #expect(list.header("Cache-Control") == "private, no-cache")  // conditional grant
            #expect(try await api.get("/v1/posts/\(pub)", auth: .none).status == .ok)
            #expect(try await api.get("/v1/posts/\(draft)", auth: .none).status == .notFound)
            // authors: unconditional public list → shareable
            let authors = try await api.get("/v1/authors", auth: .none)
            #expect(authors.header("Cache-Control") == "no-cache")
            #expect(authors.header("Vary") == "Authorization, Accept")
        }
    }

    @Test(arguments: TestBackend.all)
    func defaultDenyAndBadCredentials(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let create = try await api.post("/v1/posts", #"{"title":"x"}"#, auth: .none)
            #expect(create.status == .unauthorized && create.problem == "unauthenticated")
            #expect(create.header("WWW-Authenticate") == "Bearer")
            let comments = try await api.get("/v1/comments", auth: .none)
            #expect(comments.status == .unauthorized)
            let bad = try await api.get("/v1/authors", auth: .bearer("bsk_not-a-real-key"))
            #expect(bad.status == .unauthorized)
            #expect(bad.header("WWW-Authenticate")?.contains("invalid_token") == true)
            let jwtish = try await api.get("/v1/authors", auth: .bearer("eyJhbGciOiJub25lIn0.e30."))
            #expect(jwtish.status == .unauthorized)
            #expect(try await api.get("/health/live", auth: .bearer("garbage")).status == .ok)
            // Roles of a key must be roles of the schema.
            let unknownRole = try await api.post("/v1/admin/api-keys", #"{"name":"svc","roles":["viewer"]}"#)
            #expect(unknownRole.status == .unprocessableContent && unknownRole.fieldErrors.first?.0 == "/roles/0")
            // A non-admin key is known but has no grant: 403.
            let created = try await api.post("/v1/admin/api-keys", #"{"name":"svc","roles":[]}"#)
            #expect(created.status == .created)
            let key = try #require(created["key"]?.stringValue)
            #expect(key.hasPrefix("bsk_"))
            let forbidden = try await api.post("/v1/posts", #"{"title":"x"}"#, auth: .bearer(key))
            #expect(forbidden.status == .forbidden && forbidden.problem == "forbidden")
            #expect(try await api.get("/v1/admin/schema", auth: .bearer(key)).status == .forbidden)
            #expect(try await api.get("/v1/admin/schema", auth: .none).status == .unauthorized)
            // The key list never shows a key again; revocation takes effect.
            let keys = try await api.get("/v1/admin/api-keys")
            #expect(!keys.text.contains(key))
            let id = created["id"]!.stringValue!
            #expect(try await api.delete("/v1/admin/api-keys/\(id)").status == .noContent)
            #expect(try await api.get("/v1/authors", auth: .bearer(key)).status == .unauthorized)
        }
    }
}
