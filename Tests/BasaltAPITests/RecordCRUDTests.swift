import BasaltCore
import BasaltTesting
import HTTPTypes
import Testing

@Suite("Records: CRUD, status codes and headers")
struct RecordCRUDTests {
    @Test(arguments: TestBackend.all)
    func createReturns201WithLocationAndFullRecord(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let r = try await api.post("/v1/posts", #"{"title":"Hello"}"#)
            #expect(r.status == .created)
            let id = try #require(r["id"]?.stringValue)
            #expect(r.header("Location") == "/v1/posts/\(id)")
            #expect(r.header("ETag") == "\"1\"")
            #expect(r.header("Content-Type") == "application/json")
            // UUIDv7, lowercase
            #expect(id == id.lowercased() && id.count == 36 && Array(id)[14] == "7")
            #expect(r["version"] == .int(1))
            #expect(r["status"] == .string("draft"))  // default
            #expect(r["views"] == .int(0))
            #expect(r["body"] == .null)  // present, never omitted
            #expect(r["meta"] == .null)
            let created = try #require(r["created_at"]?.stringValue)
            #expect(created.hasSuffix("Z") && created.count == 24)
            #expect(r["updated_at"]?.stringValue == created)
        }
    }

    @Test(arguments: TestBackend.all)
    func getHeadETagAndConditional(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let rec = try await api.create("posts", #"{"title":"A","score":1.5,"featured":true,"meta":{"a":[1,2]}}"#)
            let id = rec["id"]!.stringValue!
            let g = try await api.get("/v1/posts/\(id)")
            #expect(g.status == .ok)
            #expect(g.header("ETag") == "\"1\"")
            #expect(g.header("Cache-Control") == "private, no-cache")
            #expect(g.header("Vary") == "Authorization, Accept")
            #expect(g["score"] == .double(1.5))
            #expect(g["meta"] == ["a": [1, 2]])
            let h = try await api.send(.head, "/v1/posts/\(id)")
            #expect(h.status == .ok && h.text.isEmpty && h.header("ETag") == "\"1\"")
            let nm = try await api.get("/v1/posts/\(id)", headers: ["If-None-Match": "\"1\""])
            #expect(nm.status == .notModified)
            #expect(nm.text.isEmpty)
            let miss = try await api.get("/v1/posts/\(RecordID.make())")
            #expect(miss.status == .notFound && miss.problem == "not-found")
            #expect(miss.header("Content-Type") == "application/problem+json")
            let bad = try await api.get("/v1/posts/not-a-uuid")
            #expect(bad.status == .notFound)
            let unknown = try await api.get("/v1/nope")
            #expect(unknown.status == .notFound)
        }
    }

    @Test(arguments: TestBackend.all)
    func putReplacesAndPatchMerges(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let rec = try await api.create("posts", #"{"title":"A","body":"b","views":5,"meta":{"a":1,"b":{"c":2,"d":3}}}"#)
            let id = rec["id"]!.stringValue!
            // PATCH: JSON Merge Patch, recursive into json fields.
            let p = try await api.send(
                .patch,
                "/v1/posts/\(id)",
                json: #"{"body":null,"meta":{"a":null,"b":{"c":9}}}"#,
                contentType: "application/merge-patch+json"
            )
            #expect(p.status == .ok)
            #expect(p["body"] == .null)
            #expect(p["title"] == "A")
            #expect(p["meta"] == ["b": ["c": 9, "d": 3]])
            #expect(p["version"] == .int(2))
            #expect(p.header("ETag") == "\"2\"")
            // PUT: absent optional fields become null / default.
            let u = try await api.put("/v1/posts/\(id)", #"{"title":"B"}"#)
            #expect(u.status == .ok)
            #expect(u["views"] == .int(0))
            #expect(u["meta"] == .null)
            #expect(u["version"] == .int(3))
            // GET-modify-PUT round trip with system fields repeated unchanged.
            var full = try await api.get("/v1/posts/\(id)").json.objectValue!
            full["title"] = "C"
            full["expand"] = nil
            let rt = try await api.put("/v1/posts/\(id)", JSONValue.object(full).serialized())
            #expect(rt.status == .ok)
            #expect(rt["title"] == "C")
            // A changed system field is read_only.
            let ro = try await api.patch("/v1/posts/\(id)", #"{"version":1}"#)
            #expect(ro.status == .unprocessableContent)
            #expect(ro.fieldErrors.contains { $0 == ("/version", "read_only") })
            let db = try await api.get("/v1/posts/\(id)")
            #expect(db["version"] == .int(4))
        }
    }

    @Test(arguments: TestBackend.all)
    func deleteIs204ThenGone(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let id = try await api.create("posts", #"{"title":"A"}"#)["id"]!.stringValue!
            let d = try await api.delete("/v1/posts/\(id)")
            #expect(d.status == .noContent)
            #expect(d.text.isEmpty)
            #expect(try await api.get("/v1/posts/\(id)").status == .notFound)
            #expect(try await api.delete("/v1/posts/\(id)").status == .notFound)
        }
    }

    @Test(arguments: TestBackend.all)
    func ifMatchGuardsWrites(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let id = try await api.create("posts", #"{"title":"A"}"#)["id"]!.stringValue!
            let stale = try await api.patch("/v1/posts/\(id)", #"{"title":"B"}"#, headers: ["If-Match": "\"7\""])
            #expect(stale.status == .preconditionFailed && stale.problem == "precondition-failed")
            #expect(try await api.get("/v1/posts/\(id)")["title"] == "A")  // nothing changed
            let weak = try await api.patch("/v1/posts/\(id)", #"{"title":"B"}"#, headers: ["If-Match": "W/\"1\""])
            #expect(weak.status == .preconditionFailed)  // strong comparison
            let ok = try await api.patch("/v1/posts/\(id)", #"{"title":"B"}"#, headers: ["If-Match": "\"1\""])
            #expect(ok.status == .ok)
            #expect(try await api.delete("/v1/posts/\(id)", headers: ["If-Match": "\"1\""]).status == .preconditionFailed)
            // Percent-encoded, as Swift clients generated by swift-openapi-generator send every header.
            #expect(try await api.get("/v1/posts/\(id)", headers: ["If-None-Match": "%222%22"]).status == .notModified)
            let encodedStale = try await api.patch("/v1/posts/\(id)", #"{"title":"C"}"#, headers: ["If-Match": "%221%22"])
            #expect(encodedStale.status == .preconditionFailed)
            #expect(try await api.patch("/v1/posts/\(id)", #"{"title":"C"}"#, headers: ["If-Match": "%222%22"]).status == .ok)
            #expect(try await api.delete("/v1/posts/\(id)", headers: ["If-Match": "\"3\""]).status == .noContent)
        }
    }

    @Test(arguments: TestBackend.all)
    func clientSuppliedIDIsNormalizedAndDuplicateIs409(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let upper = "0190A0B0-C0D0-7E0F-8A0B-0C0D0E0F1A2B"
            let r = try await api.post("/v1/posts", #"{"id":"\#(upper)","title":"A"}"#)
            #expect(r.status == .created)
            #expect(r["id"] == .string(upper.lowercased()))
            let dup = try await api.post("/v1/posts", #"{"id":"\#(upper.lowercased())","title":"B"}"#)
            #expect(dup.status == .conflict)
            #expect(dup.fieldErrors.first?.0 == "/id")
            let bad = try await api.post("/v1/posts", #"{"id":"nope","title":"B"}"#)
            #expect(bad.status == .unprocessableContent)
        }
    }
}
