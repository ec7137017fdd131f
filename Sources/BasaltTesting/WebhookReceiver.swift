import Foundation
import Synchronization

/// A webhook receiver written with independent implementations: Python's `http.server`, the
/// `standardwebhooks` package verifying each signature and the `cloudevents` SDK parsing each
/// body. It answers `500` to the first `failFirst` requests, then `204`, and reports every request
/// as one JSON line: `{"webhook_id", "verified", "status", "event": {…}}`. The signing secret is
/// read from a file at each request, so it can be written after the webhook is registered.
public final class WebhookReceiver: Sendable {
    public let port: Int
    let process: ChildProcess
    let secretFile: URL
    let lines = Mutex<[String]>([])
    let stopped = Mutex(false)

    static let script = #"""
        import json, os, sys, threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from standardwebhooks import Webhook
        try:
            from cloudevents.http import from_http
        except ImportError:  # cloudevents 2.x keeps the 1.x API here
            from cloudevents.v1.http import from_http

        secret_file, fail_first = sys.argv[1], int(sys.argv[2])
        # Gone with its parent: stdin closes when the test stops it or dies.
        threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
        seen = {"n": 0}

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                report = {"webhook_id": headers.get("webhook-id"), "path": self.path}
                try:
                    Webhook(open(secret_file).read().strip()).verify(body, headers)
                    report["verified"] = True
                except Exception as e:
                    report["verified"] = False
                    report["error"] = repr(e)
                try:
                    ev = from_http(headers, body)
                    report["event"] = {k: ev[k] for k in ev.get_attributes()}
                    report["event"]["data"] = ev.data
                except Exception as e:
                    report["event_error"] = repr(e)
                seen["n"] += 1
                status = 500 if seen["n"] <= fail_first else 204
                report["status"] = status
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
                print(json.dumps(report), flush=True)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        print(server.server_address[1], flush=True)
        server.serve_forever()
        """#

    public static func start(failFirst: Int = 0) async throws -> WebhookReceiver {
        let secretFile = FileManager.default.temporaryDirectory.appendingPathComponent("basalt-whsec-\(UUID().uuidString)")
        try Data("whsec_AAAA".utf8).write(to: secretFile)
        // Two pipes: the receiver's reports come in on one; the other is its stdin, closed to stop it.
        let out = try ChildProcess.pipe()
        let input = try ChildProcess.pipe()
        let p: ChildProcess
        do {
            p = try ChildProcess(
                ["python3", "-c", script, secretFile.path, String(failFirst)],
                stdin: .descriptor(input.read),
                stdout: .descriptor(out.write)
            )
        } catch {
            for fd in [out.read, out.write, input.read, input.write] { close(fd) }
            throw error
        }
        // The child has its copies; ours of its ends would keep the report stream from ending.
        close(out.write)
        close(input.read)
        // The first line is the port; the rest are reports, read on a thread of their own.
        let (stream, continuation) = AsyncStream<String>.makeStream()
        Thread.detachNewThread {
            var buffer = Data()
            var bytes = [UInt8](repeating: 0, count: 4096)
            let fd = out.read
            defer { close(fd) }
            while true {
                // EINTR: a signal to this process interrupted the read.
                let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                buffer.append(contentsOf: bytes[0..<n])
                while let nl = buffer.firstIndex(of: 0x0A) {
                    continuation.yield(String(decoding: buffer[buffer.startIndex..<nl], as: UTF8.self))
                    buffer.removeSubrange(buffer.startIndex...nl)
                }
            }
            continuation.finish()
        }
        var iterator = stream.makeAsyncIterator()
        guard let first = await iterator.next(), let port = Int(first) else {
            p.signal(SIGTERM)
            close(input.write)
            throw TestSetupError("the webhook receiver did not start (pip install standardwebhooks cloudevents)")
        }
        let receiver = WebhookReceiver(port: port, process: p, input: input.write, secretFile: secretFile)
        Task { [receiver] in
            var it = iterator
            while let line = await it.next() { receiver.lines.withLock { $0.append(line) } }
        }
        return receiver
    }

    /// The write end of the receiver's stdin.
    let input: Int32

    init(port: Int, process: ChildProcess, input: Int32, secretFile: URL) {
        self.port = port
        self.process = process
        self.input = input
        self.secretFile = secretFile
    }

    public func setSecret(_ secret: String) throws {
        try Data(secret.utf8).write(to: secretFile)
    }

    /// The reports so far, parsed.
    public var reports: [[String: Any]] {
        lines.withLock { $0 }.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    /// Waits until `count` requests arrived (or `timeout`), returning the reports.
    public func waitFor(_ count: Int, timeout: Duration = .seconds(20)) async throws -> [[String: Any]] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let r = reports
            if r.count >= count { return r }
            try await Task.sleep(for: .milliseconds(50))
        }
        return reports
    }

    public func stop() {
        // Once: a second close of `input` could close a descriptor another thread has since opened.
        guard
            stopped.withLock({ stopped in
                defer { stopped = true }
                return !stopped
            })
        else { return }
        // `python3` may be a launcher whose child is the server: closing stdin reaches the server.
        close(input)
        process.signal(SIGTERM)
        try? FileManager.default.removeItem(at: secretFile)
    }
}
