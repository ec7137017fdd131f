import BasaltCore
import BasaltServices
import BasaltTesting
import HTTPTypes
import Testing

@Suite("Admin: schema, collections, migrations")
struct AdminSchemaTests {
    @Test(arguments: TestBackend.all)
    func collectionLifecycleThroughThePlanner(_ backend: TestBackend) async throws {
        try await backend.withApp { api in
            let created = try await api.post(
                "/v1/admin/collections",
                #"{"name":"notes","fields":{"text":{"type":"text","required":true}},"access":{"list":[{"who":"public"}]}}"#
            )
            #expect(created.status == .created, "\(created.text)")
            #expect(created.header("Location") == "/v1/admin/collections/notes")
            #expect(created["plan"]?["steps"]?.arrayValue?.first?["action"] == "create_collection")
            let n = try await api.create("notes", #"{"text":"hi"}"#)
            #expect(n["text"] == "hi")
            // Adding a field with a default fills existing rows.
            let add = try await api.patch("/v1/admin/collections/notes", #"{"fields":{"pinned":{"type":"boolean","default":false}}}"#)
            #expect(add.status == .ok, "\(add.text)")
            #expect(try await api.get("/v1/notes/\(n["id"]!.stringValue!)")["pinned"] == .bool(false))
            // Dropping a field that holds data is destructive: dry run shows it, apply refuses it.
            let dry = try await api.send(.patch, "/v1/admin/collections/notes?dry_run=true", json: #"{"fields":{"text":null}}"#)
            #expect(dry.status == .ok)
            #expect(dry["plan"]?["destructive"] == .bool(true))
            let refused = try await api.patch("/v1/admin/collections/notes", #"{"fields":{"text":null}}"#)
            #expect(refused.status == .conflict)
            #expect(!refused.fieldErrors.isEmpty)
            #expect(try await api.get("/v1/notes/\(n["id"]!.stringValue!)")["text"] == "hi")  // nothing changed
            let forced = try await api.send(.patch, "/v1/admin/collections/notes?allow_destructive=true", json: #"{"fields":{"text":null}}"#)
            #expect(forced.status == .ok, "\(forced.text)")
            #expect(try await api.get("/v1/notes/\(n["id"]!.stringValue!)")["text"] == nil)
            // Type change integer → number keeps values (widening).
            _ = try await api.patch("/v1/admin/collections/notes", #"{"fields":{"count":{"type":"integer"}}}"#)
            let c = try await api.create("notes", #"{"count":7}"#)
            let widen = try await api.patch("/v1/admin/collections/notes", #"{"fields":{"count":{"type":"number"}}}"#)
            #expect(widen.status == .ok, "\(widen.text)")
            #expect(try await api.get("/v1/notes/\(c["id"]!.stringValue!)")["count"] == .double(7))
            let history = try await api.get("/v1/admin/migrations")
            let versions = history["items"]?.arrayValue?.compactMap { $0["version"]?.integerValue } ?? []
            #expect(versions.count >= 4 && versions == versions.sorted(by: >))
            let drop = try await api.send(.delete, "/v1/admin/collections/notes?allow_destructive=true")
            #expect(drop.status == .ok)
            #expect(try await api.get("/v1/notes").status == .notFound)
        }
    }

    @Test(arguments: TestBackend.all)
    func invalidSchemasAre422(_ backend: TestBackend) async throws {
        try await backend.withApp { api in
            let bad = try await api.put(
                "/v1/admin/schema",
                #"{"collections":{"Bad-Name":{"fields":{}},"ok":{"fields":{"id":{"type":"text"},"r":{"type":"relation","collection":"missing"},"s":{"type":"select"}}}}}"#
            )
            #expect(bad.status == .unprocessableContent)
            let fields = Set(bad.fieldErrors.map(\.0))
            #expect(fields.contains("/collections/Bad-Name"))
            #expect(fields.contains("/collections/ok/fields/id"))
            #expect(fields.contains("/collections/ok/fields/s/values"))
            let rule = try await api.put(
                "/v1/admin/schema",
                #"{"collections":{"x":{"fields":{"a":{"type":"text"}},"access":{"list":[{"who":"public","where":"nope = 1"}]}}}}"#
            )
            #expect(rule.status == .unprocessableContent)
            let reserved = try await api.post("/v1/admin/collections", #"{"name":"batch","fields":{}}"#)
            #expect(reserved.status == .unprocessableContent)
            // The engines' own name spaces (API.md §1): refused by a dry run too, never a 500.
            for name in ["sqlite_stat1", "sqlite_x", "pg_class", "pg_x"] {
                let r = try await api.post("/v1/admin/collections", #"{"name":"\#(name)","fields":{}}"#)
                #expect(r.status == .unprocessableContent && r.fieldErrors.first?.1 == "invalid", "\(name): \(r.text)")
                #expect(r.fieldErrors.first?.0 == "/name", "the error points at the member that holds the name")
                let dry = try await api.put("/v1/admin/schema?dry_run=true", #"{"collections":{"\#(name)":{"fields":{"a":{"type":"text"}}}}}"#)
                #expect(dry.status == .unprocessableContent, "\(name): \(dry.text)")
            }
            #expect(try await api.post("/v1/admin/collections", #"{"name":"sqlitex","fields":{}}"#).status == .created)
            // Bounded documents: work to check a schema grows no faster than its size allows.
            let many = (0..<1_001).map { #""c\#($0)":{"fields":{}}"# }.joined(separator: ",")
            let tooMany = try await api.put("/v1/admin/schema?dry_run=true", #"{"collections":{\#(many)}}"#)
            #expect(tooMany.status == .unprocessableContent && tooMany.fieldErrors.map(\.1) == ["max"])
        }
    }

    @Test(arguments: TestBackend.all)
    func schemaRoundTripsAsYAML(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let yaml = try await api.get("/v1/admin/schema", headers: ["Accept": "application/yaml"])
            #expect(yaml.header("Content-Type") == "application/yaml")
            let reparsed = try Schema.decode(try SchemaYAML.parse(yaml.text))
            let json = try await api.get("/v1/admin/schema")
            #expect(try Schema.decode(json.json) == reparsed)
            // Re-applying the same schema is a no-op.
            let same = try await api.put("/v1/admin/schema", json.text)
            #expect(same.status == .ok)
            #expect(same["plan"]?["steps"]?.arrayValue?.isEmpty == true)
        }
    }
}
