import BasaltCore
import Basalt
import BasaltHTTP
import BasaltTesting
import HTTPTypes
import Testing

@Suite("Edge: request ids, tracing, headers, methods, CORS, rate limits, health")
struct EdgeTests {
    @Test(arguments: TestBackend.all)
    func requestIDAndTraceparent(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let echoed = try await api.get("/v1/authors", headers: ["X-Request-Id": "abc.DEF_1:2-3"])
            #expect(echoed.header("X-Request-Id") == "abc.DEF_1:2-3")
            let replaced = try await api.get("/v1/authors", headers: ["X-Request-Id": "bad id!"])
            #expect(replaced.header("X-Request-Id") != "bad id!")
            #expect(replaced.header("X-Request-Id")?.isEmpty == false)
            let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            let t = try await api.get("/v1/authors", headers: ["traceparent": trace])
            let out = try #require(t.header("traceparent"))
            #expect(out.hasPrefix("00-4bf92f3577b34da6a3ce929d0e0e4736-"))
            #expect(!out.contains("00f067aa0ba902b7"))
            #expect(t.header("X-Content-Type-Options") == "nosniff")
            #expect(t.header("X-Frame-Options") == "DENY")
        }
    }

    @Test(arguments: TestBackend.all)
    func methodNotAllowedListsAllow(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let r = try await api.send(.delete, "/v1/posts")
            #expect(r.status == .methodNotAllowed && r.problem == "method-not-allowed")
            #expect(r.header("Allow") == "GET, HEAD, POST")
            let p = try await api.send(.post, "/v1/posts/\(RecordID.make())", json: "{}")
            #expect(p.status == .methodNotAllowed)
            #expect(r.header("Content-Type") == "application/problem+json")
            let nothing = try await api.get("/nothing/here")
            #expect(nothing.status == .notFound && nothing.problem == "not-found")
        }
    }

    @Test(arguments: [TestBackend.sqlite])
    func corsAllowlist(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog, configure: { $0.http.corsOrigins = ["https://app.example"] }) { api in
            let ok = try await api.get("/v1/authors", headers: ["Origin": "https://app.example"])
            #expect(ok.header("Access-Control-Allow-Origin") == "https://app.example")
            let other = try await api.get("/v1/authors", headers: ["Origin": "https://evil.example"])
            #expect(other.header("Access-Control-Allow-Origin") == nil)
            let pre = try await api.send(.options, "/v1/posts", auth: .none,
                                         headers: ["Origin": "https://app.example", "Access-Control-Request-Method": "POST"])
            #expect(pre.status == .noContent)
            #expect(pre.header("Access-Control-Allow-Methods")?.contains("PATCH") == true)
        }
    }

    @Test(arguments: [TestBackend.sqlite])
    func rateLimitHeadersAnd429(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog, configure: { $0.http.anonymousPerMinute = 3 }) { api in
            let first = try await api.get("/v1/authors", auth: .none)
            #expect(first.header("RateLimit-Policy") == "\"default\";q=3;w=60")
            #expect(first.header("RateLimit")?.hasPrefix("\"default\";r=2;t=") == true)
            _ = try await api.get("/v1/authors", auth: .none)
            _ = try await api.get("/v1/authors", auth: .none)
            let limited = try await api.get("/v1/authors", auth: .none)
            #expect(limited.status == .tooManyRequests && limited.problem == "rate-limited")
            let retry = try #require(limited.header("Retry-After").flatMap(Int.init))
            #expect(retry > 0 && retry <= 60)
            #expect(try await api.get("/health/live", auth: .none).status == .ok)
        }
    }

    @Test(arguments: TestBackend.all)
    func healthAndProblemPages(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            #expect(try await api.get("/health/live", auth: .none).status == .ok)
            #expect(try await api.get("/health/ready", auth: .none).status == .ok)
            let page = try await api.get("/problems/validation-failed", auth: .none)
            #expect(page.status == .ok)
            #expect(page.header("Content-Type")?.hasPrefix("text/html") == true)
            #expect(try await api.get("/problems/no-such-thing", auth: .none).status == .notFound)
            let docs = try await api.get("/docs", auth: .none)
            #expect(docs.status == .ok && docs.text.contains("authors"))
        }
    }
}
