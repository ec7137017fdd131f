// Tracing (issue "Operations"): `basalt serve` with the standard OTEL_* variables exports spans
// over OTLP/HTTP to a real receiver, which decodes them with the `opentelemetry-proto` package.

import BasaltTesting
import Foundation
import Testing

/// An OTLP/HTTP trace receiver: one JSON line per span (name, ids, parent, kind, attributes).
enum OTLPReceiver {
    static let script = #"""
        import gzip, json, sys
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
        out = open(sys.argv[2], "a", buffering=1)
        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.headers.get("content-encoding") == "gzip": body = gzip.decompress(body)
                req = trace_service_pb2.ExportTraceServiceRequest()
                req.ParseFromString(body)
                for rs in req.resource_spans:
                    service = [a.value.string_value for a in rs.resource.attributes if a.key == "service.name"]
                    for ss in rs.scope_spans:
                        for s in ss.spans:
                            attrs = {a.key: (a.value.string_value if a.value.HasField("string_value") else a.value.int_value) for a in s.attributes}
                            out.write(json.dumps({"path": self.path, "service": service[0] if service else None, "name": s.name,
                                "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(), "parent": s.parent_span_id.hex(),
                                "kind": s.kind, "attributes": attrs}) + "\n")
                answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            def log_message(self, *a): pass
        s = ThreadingHTTPServer(("127.0.0.1", 0), H)
        open(sys.argv[1], "w").write(str(s.server_address[1]))
        s.serve_forever()
        """#

    static func available() async -> Bool {
        let probe = try? await Subprocess.run(["python3", "-c", "import opentelemetry.proto.collector.trace.v1.trace_service_pb2"])
        return probe?.succeeded == true
    }
}

@Suite("Tracing over OTLP")
struct TracingProcessTests {
    @Test(
        "spans reach a real OTLP receiver: the server span continues the incoming trace, database and hashing spans are its children, logs carry the ids"
    )
    func spansReachTheReceiver() async throws {
        guard await OTLPReceiver.available() else {
            try #require(ProcessInfo.processInfo.environment["CI"] == nil, "pip install opentelemetry-proto")
            return
        }
        let dir = try TempDir("basalt-tracing")
        defer { dir.remove() }
        let receiver = try await PythonPeer(OTLPReceiver.script, name: "otlp", in: dir)
        defer { receiver.stop() }
        let data = dir.path("data")
        let key = try await createAdminKey(data: data, in: dir)
        let env = [
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:\(receiver.port)",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_SERVICE_NAME": "basalt-under-test",
        ]
        let server = try await Server.start(data: data, in: dir, env: env)
        defer { server.forceKill() }
        #expect(
            try await server.request("POST", "/v1/admin/collections", key: key, json: ["name": "notes", "fields": ["note": ["type": "text"]]]).status
                == 201
        )

        func list(traceparent: String, more: [(String, String)] = []) async throws -> HTTPResponse {
            try await onThread {
                try HTTPClient.send(
                    port: server.port,
                    method: "GET",
                    path: "/v1/notes",
                    headers: [("Authorization", "Bearer \(key)"), ("traceparent", traceparent)] + more,
                    body: nil,
                    timeout: 30
                )
            }
        }
        // A request that continues a trace.
        let traceID = "0af7651916cd43dd8448eb211c80319c"
        let parentID = "b7ad6b7169203331"
        let listed = try await list(traceparent: "00-\(traceID)-\(parentID)-01")
        #expect(listed.status == 200)
        let answered = try #require(listed.headers["traceparent"])
        let parts = answered.split(separator: "-").map(String.init)
        #expect(parts.count == 4 && parts[1] == traceID, "the answer continues the trace: \(answered)")
        let serverSpanID = parts.count == 4 ? parts[2] : ""

        // An invalid traceparent starts a new trace.
        let fresh = try await list(traceparent: "00-\(traceID.uppercased())-\(parentID)-01")
        #expect(fresh.headers["traceparent"].map { !$0.contains(traceID) } == true)

        // A malformed tracestate beside a valid traceparent: the trace continues, and no header
        // (the credential least of all) reaches a log.
        let withState = try await list(traceparent: "00-\(traceID)-\(parentID)-01", more: [("tracestate", "Foo=1")])
        #expect(withState.headers["traceparent"]?.contains(traceID) == true)

        // A sign-up hashes a password.
        #expect(
            try await server.request("POST", "/v1/auth/register", json: ["email": "t@example.com", "password": "correct horse battery"]).status == 201
        )

        var spans: [[String: Any]] = []
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            spans = receiver.lines
            // Spans come in batches as they end: the register span ends after its hashing span.
            if spans.contains(where: { $0["name"] as? String == "password.hash" && !($0["parent"] as? String ?? "").isEmpty }),
                spans.contains(where: { $0["name"] as? String == "POST /v1/auth/register" }),
                spans.contains(where: { $0["span_id"] as? String == serverSpanID })
            {
                break
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(spans.allSatisfy { $0["path"] as? String == "/v1/traces" && $0["service"] as? String == "basalt-under-test" })
        let serverSpan = try #require(spans.first { $0["span_id"] as? String == serverSpanID }, "\(spans.map { $0["name"] ?? "" })")
        #expect(serverSpan["name"] as? String == "GET /v1/{collection}")
        #expect(serverSpan["trace_id"] as? String == traceID)
        #expect(serverSpan["parent"] as? String == parentID)
        #expect(serverSpan["kind"] as? Int == 2, "SPAN_KIND_SERVER")
        let attributes = serverSpan["attributes"] as? [String: Any] ?? [:]
        #expect(attributes["http.route"] as? String == "/v1/{collection}")
        #expect(attributes["http.response.status_code"] as? Int == 200)

        let children = spans.filter { $0["parent"] as? String == serverSpanID }
        let read = try #require(children.first { $0["name"] as? String == "sqlite read" }, "\(children)")
        #expect(read["trace_id"] as? String == traceID)
        let text = (read["attributes"] as? [String: Any])?["db.query.text"] as? String ?? ""
        #expect(text.contains("FROM \"notes\""), "the statement: \(text)")

        let register = try #require(spans.first { $0["name"] as? String == "POST /v1/auth/register" })
        let hash = try #require(spans.first { $0["name"] as? String == "password.hash" && $0["parent"] as? String == register["span_id"] as? String })
        #expect(hash["trace_id"] as? String == register["trace_id"] as? String)
        // No value ever reaches a span: the sign-up's email is in no attribute.
        #expect(!receiver.lines.contains { ($0["attributes"] as? [String: Any]).map { "\($0)".contains("t@example.com") } ?? false })

        // The request's log line names its trace and span (read after the stop flushed the log).
        #expect(await server.stop()?.isSuccess == true)
        let logLine = server.child.stdout.split(separator: "\n").first { $0.contains("\"msg\":\"request\"") && $0.contains(serverSpanID) }
        #expect(logLine?.contains("\"trace_id\":\"\(traceID)\"") == true, "a log line with the span's ids")
        #expect(!(server.child.stdout + server.child.stderr).contains(key), "the admin key in the server's output")
    }
}
