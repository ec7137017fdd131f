import Basalt
import BasaltCore
import BasaltHTTP
import BasaltTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
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
            let pre = try await api.send(
                .options,
                "/v1/posts",
                auth: .none,
                headers: ["Origin": "https://app.example", "Access-Control-Request-Method": "POST"]
            )
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
            #expect(limited.header("RateLimit")?.hasPrefix("\"default\";r=0;t=") == true)
            #expect(limited.header("RateLimit-Policy") == "\"default\";q=3;w=60")
            #expect(try await api.get("/health/live", auth: .none).status == .ok)
        }
    }

    /// API.md §11: every answer of a rate-limited route carries the headers, error answers included.
    @Test(arguments: TestBackend.all)
    func errorAnswersCarryRateLimitHeaders(_ backend: TestBackend) async throws {
        try await backend.withApp(
            schema: IdentityFixtures.schema,
            configure: {
                $0.http.authPerMinute = 10
                $0.http.anonymousPerMinute = 10
            }
        ) { api in
            let login = try await api.post("/v1/auth/login", #"{"email":"nobody@example.com","password":"wrong wrong wrong"}"#, auth: .none)
            #expect(login.status == .unauthorized)
            #expect(login.header("RateLimit-Policy") == "\"auth\";q=10;w=60")
            #expect(login.header("RateLimit")?.hasPrefix("\"auth\";r=9;t=") == true)
            for (path, status) in [
                ("/v1/notes", HTTPResponse.Status.unauthorized), ("/v1/no_such_collection", .notFound),
                ("/v1/notes?limit=0", .unauthorized),
            ] {
                let r = try await api.get(path, auth: .none)
                #expect(r.status == status && r.header("RateLimit-Policy") == "\"default\";q=10;w=60", "\(path)")
            }
            let bad = try await api.post("/v1/auth/register", "{not json", auth: .none)
            #expect(bad.status == .badRequest && bad.header("RateLimit") != nil)
        }
    }

    /// API.md §1: every error is a problem document — a URI or a header over the parser's limits too.
    @Test(arguments: [TestBackend.sqlite])
    func oversizedRequestLinesAndHeadersGetAProblem(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let port = try #require(api.client.port)
            let uri = "GET /v1/authors?filter=\(String(repeating: "a", count: 100_000)) HTTP/1.1\r\nHost: x\r\n\r\n"
            let header = "GET /v1/authors HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "b", count: 100_000))\r\n\r\n"
            for request in [uri, header] {
                let answer = try await RawHTTP.exchange(port: port, Array(request.utf8))
                #expect(answer.hasPrefix("HTTP/1.1 400"), "\(answer.prefix(200))")
                #expect(answer.lowercased().contains("content-type: application/problem+json"), "\(answer.prefix(300))")
                let body = try JSONValue.parse(String(answer[answer.range(of: "\r\n\r\n")!.upperBound...]))
                #expect(body["type"] == "/problems/bad-request" && body["status"] == .int(400) && body["request_id"]?.stringValue != nil)
            }
        }
    }

    /// A query parameter holding U+0000 is a `400` on both backends (PostgreSQL cannot bind it as
    /// text: it was a `500` there), wherever the parameter goes — a filter, an audit search.
    @Test(arguments: TestBackend.all)
    func nulInTheQueryStringIsABadRequest(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            for path in [
                "/v1/admin/audit?collection=a%00b", "/v1/admin/audit?actor=%00", "/v1/authors?filter=name%20%3D%20%27%00%27",
                "/v1/authors?sort=name%00", "/v1/admin/users?filter=email%20~%20%27%00%27",
            ] {
                let r = try await api.get(path)
                #expect(r.status == .badRequest && r.problem == "bad-request", "\(path): \(r.status) \(r.text)")
            }
        }
    }

    /// `Link` is built from the route, never from the raw request target: `//v1/authors` must not
    /// answer a network-path reference to a host named `v1`.
    @Test(arguments: [TestBackend.sqlite])
    func linksNeverPointAtAnotherHost(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            for n in ["a", "b"] { _ = try await api.create("authors", #"{"name":"\#(n)"}"#) }
            for path in ["/v1/authors?limit=1", "//v1/authors?limit=1", "/v1//authors?limit=1"] {
                let r = try await api.get(path, auth: .none)
                let link = try #require(r.header("Link"), "\(path): \(r.status)")
                #expect(link.hasPrefix("</v1/authors?limit=1&cursor="), "\(path) → \(link)")
            }
        }
    }

    /// The `Link` of the next page carries every parameter back, percent-encoded (RFC 3986:
    /// everything but unreserved characters): followed as it is, it answers the page `next_cursor`
    /// names. Query values decode `+` as a space and `%XX` as bytes; a malformed escape or bytes
    /// that are not UTF-8 are a `400`.
    @Test(arguments: [TestBackend.sqlite])
    func linksCarryEveryParameterBackAndEscapesAreStrict(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            for n in ["Zoë & Ada", "Zoë & Bo", "Zoë & Cy", "Al+Bo"] { _ = try await api.create("authors", #"{"name":"\#(n)"}"#) }
            // `+` in the query is a space, `%2B` a plus; é and & arrive escaped.
            let first = try await api.get("/v1/authors?limit=1&sort=name&filter=name+~+%27Zo%C3%AB+%26%27", auth: .none)
            #expect(first.status == .ok)
            #expect(first["items"]?.arrayValue?.first?["name"] == .string("Zoë & Ada"))
            let link = try #require(first.header("Link"))
            #expect(link.hasPrefix("</v1/authors?limit=1&sort=name&filter=name%20~%20%27Zo%C3%AB%20%26%27&cursor="), "\(link)")
            #expect(link.utf8.allSatisfy { $0 < 0x80 })
            let target = String(link.dropFirst().prefix { $0 != ">" })
            let second = try await api.get(target, auth: .none)
            let viaCursor = try await api.get(
                "/v1/authors?limit=1&sort=name&filter=\(q("name ~ 'Zoë &'"))&cursor=\(q(first["next_cursor"]!.stringValue!))",
                auth: .none
            )
            #expect(second.status == .ok && second["items"] == viaCursor["items"])
            #expect(second["items"]?.arrayValue?.first?["name"] == .string("Zoë & Bo"))
            let plus = try await api.get("/v1/authors?filter=name+%3D+%27Al%2BBo%27", auth: .none)
            #expect(plus["items"]?.arrayValue?.count == 1)
            for bad in ["%zz", "%4", "%", "a%C3%28", "%FF"] {
                let r = try await api.get("/v1/authors?filter=\(bad)", auth: .none)
                #expect(r.status == .badRequest && r.problem == "bad-request", "\(bad): \(r.status) \(r.text)")
            }
        }
    }

    /// API.md §1: an invalid `traceparent` is ignored and a new trace starts; nothing of it is copied.
    @Test(arguments: [TestBackend.sqlite])
    func invalidTraceparentsStartANewTrace(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let trace = "4bf92f3577b34da6a3ce929d0e0e4736"
            let invalid = [
                "00-\(trace.uppercased())-00f067aa0ba902b7-01",  // upper-case hex
                "00-４bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  // a full-width digit
                "00-\(trace)-0000000000000000-01",  // all-zero parent id
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // all-zero trace id
                "00-\(trace)-00f067aa0ba902b7-" + String(repeating: "0", count: 4096),
                "ff-\(trace)-00f067aa0ba902b7-01",  // version ff
                "00-\(trace)-00f067aa0ba902b7-01-extra",  // version 00 has exactly four fields
            ]
            for t in invalid {
                let out = try #require(try await api.get("/v1/authors", headers: ["traceparent": t]).header("traceparent"))
                #expect(!out.contains(trace) && !out.lowercased().contains(trace) && out.utf8.count == 55, "\(t.prefix(60)) → \(out)")
                #expect(out.range(of: #"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"#, options: .regularExpression) != nil)
            }
            // A later version may carry more fields; its ids are continued.
            let future = try #require(
                try await api.get("/v1/authors", headers: ["traceparent": "01-\(trace)-00f067aa0ba902b7-01-what-ever"]).header("traceparent")
            )
            #expect(future.hasPrefix("00-\(trace)-"))
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
