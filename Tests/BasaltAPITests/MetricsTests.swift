import Basalt
import BasaltCore
import BasaltHTTP
import BasaltTesting
import Foundation
import HTTPTypes
import Testing

/// `GET /metrics` (API.md §1, issue 9): who may read it, that it parses as Prometheus text with
/// an independent parser (`prometheus_client`), that counters move with requests, and that no
/// request can add a label value of its own choosing.
@Suite("Metrics")
struct MetricsTests {
    struct Sample: Equatable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    /// The exposition parsed by `prometheus_client`'s text parser: a format error fails the test.
    static func parse(_ text: String) async throws -> [Sample] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("basalt-metrics-\(UUID().uuidString).txt")
        try Data(text.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let script = """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            out = []
            for family in text_string_to_metric_families(open(sys.argv[1]).read()):
                for s in family.samples:
                    out.append([s.name, s.labels, s.value])
            print(json.dumps(out))
            """
        let r = try await Subprocess.run(["python3", "-c", script, file.path])
        try #require(r.succeeded, "prometheus_client could not parse the exposition: \(r.output)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [[Any]])
        return rows.map { row in
            Sample(name: row[0] as? String ?? "", labels: row[1] as? [String: String] ?? [:], value: (row[2] as? NSNumber)?.doubleValue ?? .nan)
        }
    }

    static func value(_ samples: [Sample], _ name: String, _ labels: [String: String]) -> Double? {
        samples.first { s in s.name == name && labels.allSatisfy { k, v in s.labels[k] == v } }?.value
    }

    static func hasPrometheusClient() async -> Bool {
        let ok = (try? await Subprocess.run(["python3", "-c", "import prometheus_client"]))?.succeeded ?? false
        if !ok { #expect(ProcessInfo.processInfo.environment["CI"] == nil, "prometheus_client is not installed (pip install prometheus_client)") }
        return ok
    }

    @Test(arguments: TestBackend.all)
    func readableByAdminsAndTheTokenOnly(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog, configure: { $0.metricsToken = "scrape-me-0123456789" }) { api in
            let anonymous = try await api.get("/metrics", auth: .none)
            #expect(anonymous.status == .unauthorized && anonymous.problem == "unauthenticated")
            #expect(anonymous.header("Content-Type") == "application/problem+json")
            let ada = try await api.signUp("ada@example.com")
            let user = try await api.get("/metrics", auth: ada.auth)
            #expect(user.status == .forbidden && user.problem == "forbidden")
            #expect(try await api.get("/metrics", auth: .bearer("scrape-me-012345678")).status == .unauthorized)
            #expect(try await api.get("/metrics", auth: .bearer("bsk_not_a_key")).status == .unauthorized)

            for auth in [APIClient.Auth.admin, .bearer("scrape-me-0123456789")] {
                let r = try await api.get("/metrics", auth: auth)
                #expect(r.status == .ok)
                #expect(r.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
                #expect(r.header("Cache-Control") == "no-store")
                #expect(r.text.contains("# TYPE basalt_http_requests_total counter"))
            }
        }
        // Off: nothing is counted and the path does not exist.
        try await backend.withApp(configure: { $0.metricsEnabled = false }) { api in
            let r = try await api.get("/metrics")
            #expect(r.status == .notFound)
        }
    }

    @Test(arguments: TestBackend.all)
    func countersMoveWithRequestsAndQueueAndStoreAreMeasured(_ backend: TestBackend) async throws {
        guard await Self.hasPrometheusClient() else { return }
        try await backend.withApp(schema: Fixtures.blog) { api in
            for _ in 0..<3 { #expect(try await api.get("/v1/authors").status == .ok) }
            #expect(try await api.get("/v1/authors/\(RecordID.make())").status == .notFound)
            let before = try await Self.parse(try await api.get("/metrics").text)
            let list = ["method": "GET", "route": "/v1/{collection}", "status_class": "2xx"]
            let one = ["method": "GET", "route": "/v1/{collection}/{id}", "status_class": "4xx"]
            #expect(Self.value(before, "basalt_http_requests_total", list) == 3)
            #expect(Self.value(before, "basalt_http_requests_total", one) == 1)
            #expect(Self.value(before, "basalt_http_request_duration_seconds_count", list) == 3)

            for n in 0..<2 { _ = try await api.create("authors", #"{"name":"A\#(n)"}"#) }
            _ = try await api.get("/v1/authors")
            let after = try await Self.parse(try await api.get("/metrics").text)
            #expect(Self.value(after, "basalt_http_requests_total", list) == 4)
            #expect(Self.value(after, "basalt_http_requests_total", ["method": "POST", "route": "/v1/{collection}", "status_class": "2xx"]) == 2)
            // The scrape before this one is counted too, and this one is in flight.
            #expect(Self.value(after, "basalt_http_requests_total", ["route": "/metrics"]) == 1)
            #expect(Self.value(after, "basalt_http_requests_in_flight", [:]) == 1)
            let writes = Self.value(after, "basalt_db_operation_duration_seconds_count", ["operation": "write"]) ?? 0
            let writesBefore = Self.value(before, "basalt_db_operation_duration_seconds_count", ["operation": "write"]) ?? 0
            #expect(writes >= writesBefore + 2)
            #expect((Self.value(after, "basalt_db_operation_duration_seconds_count", ["operation": "read"]) ?? 0) > 0)
            for state in ["pending", "running", "failed", "dead", "succeeded"] {
                #expect(Self.value(after, "basalt_jobs", ["state": state]) != nil, "no basalt_jobs{state=\"\(state)\"}")
            }
            #expect((Self.value(after, "basalt_db_pool_size", [:]) ?? 0) >= 1)
            #expect((Self.value(after, "process_resident_memory_bytes", [:]) ?? 0) > 1_000_000)
            #expect((Self.value(after, "process_open_fds", [:]) ?? 0) > 0)
            if backend == .sqlite {
                for name in ["basalt_sqlite_wal_bytes", "basalt_sqlite_checkpoint_seconds", "basalt_sqlite_checkpoint_escalated"] {
                    #expect(Self.value(after, name, [:]) != nil, "no \(name)")
                }
            }
        }
    }

    /// Paths, methods and ids chosen by clients never become label values: every `route` label
    /// is a declared template (or the router's one name for "no route").
    @Test(arguments: TestBackend.all)
    func labelsStayBoundedUnderFuzzedPaths(_ backend: TestBackend) async throws {
        guard await Self.hasPrometheusClient() else { return }
        try await backend.withApp(schema: Fixtures.blog) { api in
            var rng = SystemRandomNumberGenerator()
            var tokens: [String] = []
            for i in 0..<80 {
                let token = "z\(UInt32.random(in: 0...UInt32.max, using: &rng))"
                tokens.append(token)
                let paths = [
                    "/\(token)", "/v1/\(token)", "/v1/authors/\(token)", "/v1/\(token)/\(token)/\(token)", "/v1/authors?filter=\(token)",
                    "/v1/admin/\(token)", "/problems/\(token)", "/v1/authors/\(RecordID.make())",
                ]
                _ = try await api.get(paths[i % paths.count])
            }
            let text = try await api.get("/metrics").text
            for t in tokens { #expect(!text.contains(t), "a request's path reached the metrics: \(t)") }
            let samples = try await Self.parse(text)
            let templates = Set(
                api.runtime.makeSurface().endpoints.map { e in
                    "/" + e.path.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
                }
            )
            let routes = Set(samples.compactMap { $0.labels["route"] })
            let unknown = routes.subtracting(templates).subtracting(["NotFound", "unmatched"])
            #expect(unknown.isEmpty, "route labels that are no template: \(unknown)")
            let series = Set(samples.filter { $0.name == "basalt_http_requests_total" }.map { $0.labels })
            #expect(series.count <= 12, "\(series.count) request series from 81 requests")
        }
    }
}
