import Basalt
import BasaltCore
import BasaltServices
import BasaltTesting
import HTTPTypes
import Testing

@Suite("Idempotency-Key and batch")
struct WriteProtocolTests {
    @Test(arguments: TestBackend.all)
    func idempotentCreateReplays(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let h = ["Idempotency-Key": "key-1"]
            let first = try await api.post("/v1/posts", #"{"title":"once"}"#, headers: h)
            #expect(first.status == .created)
            #expect(first.header("Idempotent-Replayed") == nil)
            let again = try await api.post("/v1/posts", #"{"title":"once"}"#, headers: h)
            #expect(again.status == .created)
            #expect(again.header("Idempotent-Replayed") == "true")
            #expect(again.text == first.text)
            #expect(again.header("Location") == first.header("Location"))
            #expect(again.header("X-Request-Id") != first.header("X-Request-Id"))
            let total = try await api.get("/v1/posts?total=true")["total"]
            #expect(total == .int(1))
            let other = try await api.post("/v1/posts", #"{"title":"different"}"#, headers: h)
            #expect(other.status == .unprocessableContent)
            // 4xx answers are kept too, with the first request's id.
            let bad = try await api.post("/v1/posts", "{}", headers: ["Idempotency-Key": "key-2"])
            let badAgain = try await api.post("/v1/posts", "{}", headers: ["Idempotency-Key": "key-2"])
            #expect(bad.status == .unprocessableContent && badAgain.status == .unprocessableContent)
            #expect(badAgain["request_id"] == bad["request_id"])
            #expect(badAgain.header("Idempotent-Replayed") == "true")
            // Keys are per caller: anonymous callers cannot see an admin's replay.
            let invalid = try await api.post("/v1/posts", #"{"title":"x"}"#, headers: ["Idempotency-Key": ""])
            #expect(invalid.status == .badRequest)
        }
    }

    @Test(arguments: TestBackend.all)
    func retryWhileTheFirstRunsIs409(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            // The first request is "still running": its record is begun but not completed.
            let admin = try #require(try await api.runtime.apiKeys.authenticate(api.adminKey))
            let body = try JSONValue.parse(#"{"title":"slow"}"#)
            let begun = try await api.runtime.idempotency.begin(
                key: "k-running", caller: admin.callerKey, method: "POST", path: "/v1/posts", body: body.canonicalBytes())
            guard case .proceed = begun else {
                Issue.record("expected a fresh key")
                return
            }
            let retry = try await api.post("/v1/posts", #"{ "title" : "slow" }"#, headers: ["Idempotency-Key": "k-running"])
            #expect(retry.status == .conflict && retry.problem == "conflict")
            #expect(try await api.get("/v1/posts?total=true")["total"] == .int(0))
            // The same key on another path is another request.
            let other = try await api.post("/v1/authors", #"{"name":"a"}"#, headers: ["Idempotency-Key": "k-running"])
            #expect(other.status == .created)
        }
    }

    @Test(arguments: TestBackend.all)
    func idempotentPatch(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let id = try await api.create("posts", #"{"title":"a","views":1}"#)["id"]!.stringValue!
            let h = ["Idempotency-Key": "p1"]
            let a = try await api.patch("/v1/posts/\(id)", #"{"views":2}"#, headers: h)
            let b = try await api.patch("/v1/posts/\(id)", #"{"views":2}"#, headers: h)
            #expect(a.status == .ok && b.status == .ok)
            #expect(b.header("Idempotent-Replayed") == "true")
            #expect(try await api.get("/v1/posts/\(id)")["version"] == .int(2))
        }
    }

    @Test(arguments: TestBackend.all)
    func batchIsAllOrNothing(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let existing = try await api.create("posts", #"{"title":"keep"}"#)["id"]!.stringValue!
            let newID = RecordID.make()
            let ok = try await api.post("/v1/batch", #"""
            {"operations":[
              {"method":"POST","path":"/v1/authors","body":{"id":"\#(newID)","name":"A"}},
              {"method":"POST","path":"/v1/posts","body":{"title":"by A","author":"\#(newID)"}},
              {"method":"PATCH","path":"/v1/posts/\#(existing)","body":{"views":9},"if_match":"\"1\""}
            ]}
            """#)
            #expect(ok.status == .ok, "\(ok.text)")
            let results = try #require(ok["results"]?.arrayValue)
            #expect(results.map { $0["status"] } == [.int(201), .int(201), .int(200)])
            #expect(results[2]["body"]?["views"] == .int(9))
            let fail = try await api.post("/v1/batch", #"""
            {"operations":[
              {"method":"POST","path":"/v1/posts","body":{"title":"never"}},
              {"method":"DELETE","path":"/v1/posts/\#(existing)"},
              {"method":"POST","path":"/v1/posts","body":{"views":-5}}
            ]}
            """#)
            #expect(fail.status == .unprocessableContent)
            #expect(fail["operation_index"] == .int(2))
            #expect(try await api.get("/v1/posts/\(existing)").status == .ok)  // the delete rolled back
            #expect(try await api.get("/v1/posts?total=true&filter=\(q("title = 'never'"))")["total"] == .int(0))
            let empty = try await api.post("/v1/batch", #"{"operations":[]}"#)
            #expect(empty.status == .unprocessableContent)
            let ops = Array(repeating: #"{"method":"POST","path":"/v1/posts","body":{"title":"x"}}"#, count: 101).joined(separator: ",")
            #expect(try await api.post("/v1/batch", #"{"operations":[\#(ops)]}"#).status == .unprocessableContent)
            let stale = try await api.post("/v1/batch", #"{"operations":[{"method":"DELETE","path":"/v1/posts/\#(existing)","if_match":"\"1\""}]}"#)
            #expect(stale.status == .preconditionFailed && stale["operation_index"] == .int(0))
        }
    }
}
