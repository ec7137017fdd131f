import Basalt
import BasaltCore
import BasaltServices
import BasaltStorage
import BasaltTesting
import HTTPTypes
import Testing

@Suite("Idempotency-Key and batch")
struct WriteProtocolTests {
    /// The admin's `POST /v1/posts {"title":"slow"}` under `key`, as the idempotency service sees it.
    static func adminCreate(
        _ api: APIClient,
        key: String,
        requestID: String
    ) async throws -> (IdempotencyService.Request, Principal, JSONValue) {
        let admin = try #require(try await api.runtime.apiKeys.authenticate(api.adminKey))
        let body = try JSONValue.parse(#"{"title":"slow"}"#)
        let request = IdempotencyService.Request(
            key: key,
            caller: admin.callerKey,
            method: "POST",
            path: "/v1/posts",
            body: body.canonicalBytes(),
            requestID: requestID
        )
        return (request, admin, body)
    }

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
            // A first request holds the key and has not finished: its write waits on `gate`.
            let (request, _, _) = try await Self.adminCreate(api, key: "k-running", requestID: "first")
            let gate = AsyncStream<Void>.makeStream()
            let first = Task {
                try await api.runtime.idempotency.perform(request) { _ in
                    for await _ in gate.stream { break }
                    return .batch([])
                }
            }
            try await eventually {
                try await api.runtime.store.fetch(SQLQuery(sql: #"SELECT 1 FROM "_basalt_idempotency""#), types: [.int]).count == 1
            }
            let retry = try await api.post("/v1/posts", #"{ "title" : "slow" }"#, headers: ["Idempotency-Key": "k-running"])
            #expect(retry.status == .conflict && retry.problem == "conflict")
            #expect(retry.header("Idempotent-Replayed") == nil)
            #expect(try await api.get("/v1/posts?total=true")["total"] == .int(0))
            // The same key on another path is another request.
            let other = try await api.post("/v1/authors", #"{"name":"a"}"#, headers: ["Idempotency-Key": "k-running"])
            #expect(other.status == .created)
            gate.continuation.yield()
            _ = try await first.value
        }
    }

    /// API.md §6: two simultaneous batches with one key run once — the other is `409` while the
    /// first runs, or its replay after — and a later retry replays the first answer.
    @Test(arguments: TestBackend.all)
    func concurrentBatchesWithOneKeyRunOnce(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let ops = (0..<100).map { #"{"method":"POST","path":"/v1/posts","body":{"title":"p\#($0)"}}"# }.joined(separator: ",")
            let body = #"{"operations":[\#(ops)]}"#
            let h = ["Idempotency-Key": "batch-1"]
            // Two connections: on one, the requests would be pipelined, one after the other.
            async let a = api.sendAlone("POST", "/v1/batch", json: body, headers: h)
            async let b = api.sendAlone("POST", "/v1/batch", json: body, headers: h)
            let answers = try await [a, b]
            #expect(try await api.get("/v1/posts?total=true")["total"] == .int(100))
            let fresh = answers.filter { $0.status == .ok && $0.header("Idempotent-Replayed") == nil }
            #expect(fresh.count == 1, "\(answers.map(\.status))")
            for other in answers where other.status != .ok || other.header("Idempotent-Replayed") != nil {
                #expect(other.status == .conflict || (other.status == .ok && other.text == fresh.first?.text))
            }
            let retry = try await api.post("/v1/batch", body, headers: h)
            #expect(retry.status == .ok && retry.header("Idempotent-Replayed") == "true" && retry.text == fresh.first?.text)
            #expect(try await api.get("/v1/posts?total=true")["total"] == .int(100))
        }
    }

    /// A stored 4xx is stored (API.md §6): a `409` from a unique conflict replays as `409` even
    /// after the conflicting record is gone.
    @Test(arguments: TestBackend.all)
    func refusalsAreRemembered(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let taken = try await api.create("posts", #"{"title":"a","slug":"taken"}"#)["id"]!.stringValue!
            let h = ["Idempotency-Key": "dup-1"]
            let first = try await api.post("/v1/posts", #"{"title":"b","slug":"taken"}"#, headers: h)
            #expect(first.status == .conflict && first.fieldErrors.first?.0 == "/slug")
            #expect(try await api.delete("/v1/posts/\(taken)").status == .noContent)
            let retry = try await api.post("/v1/posts", #"{"title":"b","slug":"taken"}"#, headers: h)
            #expect(retry.status == .conflict && retry.header("Idempotent-Replayed") == "true")
            #expect(retry["request_id"] == first["request_id"])
            #expect(try await api.get("/v1/posts?total=true")["total"] == .int(0))
            // A claim whose process died (running, older than the lease) is taken over.
            let stale = Timestamp.now().millisecondsSinceEpoch - IdempotencyService.leaseMillis - 1_000
            let admin = try #require(try await api.runtime.apiKeys.authenticate(api.adminKey))
            let keyHash = Digest.sha256Hex(["dead", admin.callerKey, "POST", "/v1/posts"].joined(separator: "\u{1F}"))
            let body = try JSONValue.parse(#"{"title":"c"}"#).canonicalBytes()
            _ = try await api.runtime.store.write([
                SQLStatement(
                    #"INSERT INTO "_basalt_idempotency" ("key_hash", "request_hash", "state", "created_at") VALUES (\#(keyHash), \#(Digest.sha256Hex(body)), 'running', \#(stale))"#,
                    api.runtime.store.dialect
                )
            ])
            let takeover = try await api.post("/v1/posts", #"{"title":"c"}"#, headers: ["Idempotency-Key": "dead"])
            #expect(takeover.status == .created && takeover.header("Idempotent-Replayed") == nil)
        }
    }

    /// A request that outlives the lease loses its claim: the retry that took the key over is
    /// the one that writes, and the late one rolls back (`409`) instead of writing a second time.
    @Test(arguments: TestBackend.all)
    func aClaimTakenOverIsFenced(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let (request, admin, body) = try await Self.adminCreate(api, key: "k-late", requestID: "late")
            let gate = AsyncStream<Void>.makeStream()
            let records = api.runtime.records
            let late = Task {
                try await api.runtime.idempotency.perform(request) { completion in
                    for await _ in gate.stream { break }
                    return .record(try await records.execute(.create(collection: "posts", body: body), principal: admin, completion: completion))
                }
            }
            let store = api.runtime.store
            try await eventually { try await store.fetch(SQLQuery(sql: #"SELECT 1 FROM "_basalt_idempotency""#), types: [.int]).count == 1 }
            // The lease runs out (its clock moved back by more than the lease).
            let old = Timestamp.now().millisecondsSinceEpoch - IdempotencyService.leaseMillis - 1_000
            _ = try await store.write([SQLStatement(#"UPDATE "_basalt_idempotency" SET "created_at" = \#(old)"#, store.dialect)])
            let retry = try await api.post("/v1/posts", #"{"title":"slow"}"#, headers: ["Idempotency-Key": "k-late"])
            #expect(retry.status == .created && retry.header("Idempotent-Replayed") == nil)
            gate.continuation.yield()
            await #expect(throws: BasaltError.self) { _ = try await late.value }
            #expect(try await api.get("/v1/posts?total=true")["total"] == .int(1))
            let again = try await api.post("/v1/posts", #"{"title":"slow"}"#, headers: ["Idempotency-Key": "k-late"])
            #expect(again.status == .created && again.header("Idempotent-Replayed") == "true" && again.text == retry.text)
        }
    }

    /// PUT and DELETE take keys as POST and PATCH do.
    @Test(arguments: TestBackend.all)
    func idempotentPutAndDelete(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let id = try await api.create("posts", #"{"title":"a"}"#)["id"]!.stringValue!
            let put1 = try await api.put("/v1/posts/\(id)", #"{"title":"b"}"#, headers: ["Idempotency-Key": "put"])
            let put2 = try await api.put("/v1/posts/\(id)", #"{"title":"b"}"#, headers: ["Idempotency-Key": "put"])
            #expect(put1.status == .ok && put2.status == .ok && put2.header("Idempotent-Replayed") == "true")
            #expect(put2.header("ETag") == "\"2\"" && put2.text == put1.text)
            let del1 = try await api.delete("/v1/posts/\(id)", headers: ["Idempotency-Key": "del"])
            let del2 = try await api.delete("/v1/posts/\(id)", headers: ["Idempotency-Key": "del"])
            #expect(del1.status == .noContent && del2.status == .noContent && del2.header("Idempotent-Replayed") == "true")
            // Without the key, the second delete is the 404 it is.
            #expect(try await api.delete("/v1/posts/\(id)").status == .notFound)
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
            let ok = try await api.post(
                "/v1/batch",
                #"""
                {"operations":[
                  {"method":"POST","path":"/v1/authors","body":{"id":"\#(newID)","name":"A"}},
                  {"method":"POST","path":"/v1/posts","body":{"title":"by A","author":"\#(newID)"}},
                  {"method":"PATCH","path":"/v1/posts/\#(existing)","body":{"views":9},"if_match":"\"1\""}
                ]}
                """#
            )
            #expect(ok.status == .ok, "\(ok.text)")
            let results = try #require(ok["results"]?.arrayValue)
            #expect(results.map { $0["status"] } == [.int(201), .int(201), .int(200)])
            #expect(results[2]["body"]?["views"] == .int(9))
            let fail = try await api.post(
                "/v1/batch",
                #"""
                {"operations":[
                  {"method":"POST","path":"/v1/posts","body":{"title":"never"}},
                  {"method":"DELETE","path":"/v1/posts/\#(existing)"},
                  {"method":"POST","path":"/v1/posts","body":{"views":-5}}
                ]}
                """#
            )
            #expect(fail.status == .unprocessableContent)
            #expect(fail["operation_index"] == .int(2))
            #expect(try await api.get("/v1/posts/\(existing)").status == .ok)  // the delete rolled back
            #expect(try await api.get("/v1/posts?total=true&filter=\(q("title = 'never'"))")["total"] == .int(0))
            let empty = try await api.post("/v1/batch", #"{"operations":[]}"#)
            #expect(empty.status == .unprocessableContent)
            let ops = Array(repeating: #"{"method":"POST","path":"/v1/posts","body":{"title":"x"}}"#, count: 101).joined(separator: ",")
            #expect(try await api.post("/v1/batch", #"{"operations":[\#(ops)]}"#).status == .unprocessableContent)
            // A `restrict` reference removed earlier in the same batch no longer stands in the way.
            let commented = try await api.create("posts", #"{"title":"with a comment"}"#)["id"]!.stringValue!
            let comment = try await api.create("comments", #"{"post":"\#(commented)","text":"hi"}"#)["id"]!.stringValue!
            #expect(try await api.delete("/v1/posts/\(commented)").status == .conflict)
            let both = try await api.post(
                "/v1/batch",
                #"""
                {"operations":[{"method":"DELETE","path":"/v1/comments/\#(comment)"},{"method":"DELETE","path":"/v1/posts/\#(commented)"}]}
                """#
            )
            #expect(both.status == .ok, "\(both.text)")
            let stale = try await api.post("/v1/batch", #"{"operations":[{"method":"DELETE","path":"/v1/posts/\#(existing)","if_match":"\"1\""}]}"#)
            #expect(stale.status == .preconditionFailed && stale["operation_index"] == .int(0))
        }
    }
}
