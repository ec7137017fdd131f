import BasaltCore
import BasaltTesting
import HTTPTypes
import Testing

@Suite("Validation, uniqueness and relations")
struct ValidationTests {
    @Test(arguments: TestBackend.all)
    func everyInvalidFieldIsReported(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let body = #"""
                {"title":"","slug":"Not Valid","status":"archived","views":-1,"score":"x","featured":1,
                 "published_at":"yesterday","website":"not a url","nope":1,"created_at":"2020-01-01T00:00:00Z"}
                """#
            let r = try await api.post("/v1/posts", body)
            #expect(r.status == .unprocessableContent)
            #expect(r.problem == "validation-failed")
            #expect(r.header("Content-Type") == "application/problem+json")
            #expect(r["title"] == "Validation failed")
            #expect(r["status"] == .int(422))
            #expect(r["instance"] == "/v1/posts")
            #expect(r["request_id"]?.stringValue == r.header("X-Request-Id"))
            let errs = r.fieldErrors
            for expected in [
                ("/title", "min"), ("/slug", "pattern"), ("/status", "enum"), ("/views", "min"), ("/score", "type"),
                ("/featured", "type"), ("/published_at", "format"), ("/website", "format"), ("/nope", "unknown_field"),
                ("/created_at", "read_only"),
            ] {
                #expect(errs.contains { $0 == expected }, "missing \(expected) in \(errs)")
            }
            // A client-supplied id of the wrong JSON type is `type`; a string that is no UUID is `format`.
            for (id, code) in [("5", "type"), ("true", "type"), (#"{"a":1}"#, "type"), (#""not-a-uuid""#, "format")] {
                let r = try await api.post("/v1/posts", #"{"title":"x","id":\#(id)}"#)
                #expect(r.status == .unprocessableContent && r.fieldErrors.map { [$0.0, $0.1] } == [["/id", code]], "\(id): \(r.text)")
            }
            let missing = try await api.post("/v1/posts", "{}")
            #expect(missing.fieldErrors.contains { $0 == ("/title", "required") })
            let long = try await api.post("/v1/posts", #"{"title":"\#(String(repeating: "é", count: 201))"}"#)
            #expect(long.fieldErrors.contains { $0 == ("/title", "max") })
            let exact = try await api.post("/v1/posts", #"{"title":"\#(String(repeating: "é", count: 200))"}"#)
            #expect(exact.status == .created)  // max counts code points, not bytes
            let list = try await api.get("/v1/posts?total=true")
            #expect(list["total"] == .int(1))  // nothing else was written
        }
    }

    @Test(arguments: TestBackend.all)
    func typesNormalize(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let r = try await api.post("/v1/posts", #"{"title":"t","views":3.0,"score":2,"published_at":"2026-11-27T11:08:06.1234+01:00"}"#)
            #expect(r.status == .created)
            #expect(r["views"] == .int(3))
            #expect(r["score"] == .double(2))
            #expect(r["published_at"] == "2026-11-27T10:08:06.123Z")
            let frac = try await api.post("/v1/posts", #"{"title":"t","views":3.5}"#)
            #expect(frac.fieldErrors.contains { $0 == ("/views", "type") })
        }
    }

    @Test(arguments: TestBackend.all)
    func uniqueViolationNamesTheField(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            _ = try await api.create("posts", #"{"title":"a","slug":"same"}"#)
            let r = try await api.post("/v1/posts", #"{"title":"b","slug":"same"}"#)
            #expect(r.status == .conflict)
            #expect(r.problem == "conflict")
            #expect(r.fieldErrors.first?.0 == "/slug")
            #expect(r.fieldErrors.first?.1 == "unique")
            // Emails are unique case-insensitively; nulls never collide.
            _ = try await api.create("authors", #"{"name":"a","email":"Ann@Example.com"}"#)
            let e = try await api.post("/v1/authors", #"{"name":"b","email":"ann@example.COM"}"#)
            #expect(e.status == .conflict && e.fieldErrors.first?.0 == "/email")
            #expect(try await api.post("/v1/authors", #"{"name":"c"}"#).status == .created)
            #expect(try await api.post("/v1/authors", #"{"name":"d"}"#).status == .created)
            #expect(!r.text.contains("UNIQUE") && !r.text.contains("bx_") && !r.text.contains("duplicate key"))
        }
    }

    @Test(arguments: TestBackend.all)
    func relationsEnforceTargetsAndOnDelete(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let missing = try await api.post("/v1/posts", #"{"title":"t","author":"\#(RecordID.make())"}"#)
            #expect(missing.status == .unprocessableContent)
            #expect(missing.fieldErrors.contains { $0 == ("/author", "not_found") })
            let a = try await api.create("authors", #"{"name":"A"}"#)["id"]!.stringValue!
            let e = try await api.create("authors", #"{"name":"E"}"#)["id"]!.stringValue!
            let post = try await api.create("posts", #"{"title":"t","author":"\#(a)","editor":"\#(e)"}"#)
            let pid = post["id"]!.stringValue!
            let comment = try await api.create("comments", #"{"post":"\#(pid)","text":"hi"}"#)
            // restrict: the post is still referenced by a comment.
            let blocked = try await api.delete("/v1/posts/\(pid)")
            #expect(blocked.status == .conflict)
            #expect(blocked["detail"]?.stringValue?.contains("comments.post") == true)
            // set_null: deleting the editor nulls the field and bumps the post's version.
            #expect(try await api.delete("/v1/authors/\(e)").status == .noContent)
            let after = try await api.get("/v1/posts/\(pid)")
            #expect(after["editor"] == .null)
            #expect(after["version"] == .int(2))
            // cascade: deleting the author deletes the post — once the comment is gone.
            #expect(try await api.delete("/v1/comments/\(comment["id"]!.stringValue!)").status == .noContent)
            #expect(try await api.delete("/v1/authors/\(a)").status == .noContent)
            #expect(try await api.get("/v1/posts/\(pid)").status == .notFound)
        }
    }

    @Test(arguments: TestBackend.all)
    func malformedBodies(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let bad = try await api.post("/v1/posts", #"{"title": "#)
            #expect(bad.status == .badRequest && bad.problem == "bad-request")
            let dupKey = try await api.post("/v1/posts", #"{"title":"a","title":"b"}"#)
            #expect(dupKey.status == .badRequest)
            let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
            let nested = try await api.post("/v1/posts", #"{"title":"a","meta":\#(deep)}"#)
            #expect(nested.status == .badRequest)
            let notObject = try await api.post("/v1/posts", "[1]")
            #expect(notObject.status == .badRequest)
            let form = try await api.send(.post, "/v1/posts", json: "title=a", contentType: "application/x-www-form-urlencoded")
            #expect(form.status == .unsupportedMediaType && form.problem == "unsupported-media-type")
            let big = try await api.post("/v1/posts", #"{"title":"a","body":"\#(String(repeating: "x", count: 1_100_000))"}"#)
            #expect(big.status == .contentTooLarge && big.problem == "payload-too-large")
            let accept = try await api.get("/v1/posts", headers: ["Accept": "text/html"])
            #expect(accept.status == .notAcceptable)
            #expect(try await api.get("/v1/posts?total=true")["total"] == .int(0))
        }
    }

    /// API.md §1: at most 10,000 members in an object (`400`), duplicates found in linear time,
    /// and a problem lists at most 100 field errors with the total in `detail`.
    @Test(arguments: TestBackend.all)
    func wideObjectsAreBounded(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            func members(_ n: Int) -> String { (0..<n).map { #""\#(String($0, radix: 36))":0"# }.joined(separator: ",") }
            // 100,000 members, about 900 KB (under the body limit), on a public endpoint: refused
            // as soon as the 10,001st member is read.
            let hostile = "{" + members(100_000) + "}"
            #expect(hostile.utf8.count < 1 << 20)
            for path in ["/v1/posts", "/v1/auth/login"] {
                let r = try await api.post(path, hostile, auth: .none)
                #expect(r.status == .badRequest && r.problem == "bad-request", "\(path)")
                #expect(r.text.contains("10000 members"), "\(r.text.prefix(300))")
            }
            #expect(try await api.post("/v1/posts", "{" + members(10_001) + "}").status == .badRequest)
            // 10,000 unknown members: a 422 of 100 errors, the total in `detail`.
            let wide = try await api.post("/v1/posts", "{" + members(10_000) + "}")
            #expect(wide.status == .unprocessableContent)
            #expect(
                wide.fieldErrors.count == 100 && wide["detail"]?.stringValue?.contains("10001 fields are invalid") == true,
                "\(wide["detail"] ?? .null)"
            )
            #expect(wide.text.utf8.count < 20_000)
            // A duplicate far into a wide object is still found.
            let dup = try await api.post("/v1/posts", "{" + members(5_000) + #","a":1}"#)
            #expect(dup.status == .badRequest && dup.text.contains("duplicate"))
            #expect(try await api.get("/v1/posts?total=true")["total"] == .int(0))
        }
    }
}
