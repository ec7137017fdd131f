// Helpers for tests that drive the real `basalt` executable as a child process: locating the
// binary, temporary data folders, free loopback ports, running commands with bounded waits,
// and a tiny blocking HTTP/1.1 client (run on its own threads, never on the cooperative pool).

import BasaltTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Locating the binary

enum Basalt {
    /// `.build/debug/basalt` of the package that holds this file, or `$BASALT_BINARY`.
    static let binary: URL = {
        if let path = ProcessInfo.processInfo.environment["BASALT_BINARY"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return packageRoot.appendingPathComponent(".build/debug/basalt")
    }()

    static let packageRoot: URL = {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }()

    /// The environment for children: ours without any `BASALT_*` variable, plus `extra`.
    static func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("BASALT_") }
        for (k, v) in extra { env[k] = v }
        return env
    }
}

struct ProcessTestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

// MARK: - Temporary folders and ports

/// A fresh folder under the system temporary directory, removed by `remove()`.
struct TempDir: Sendable {
    let url: URL
    init(_ label: String = "basalt") throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8).lowercased())", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    func write(_ name: String, _ text: String) throws -> String {
        let p = path(name)
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }
    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// A loopback port that was free a moment ago (bind to port 0, read it back, close).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM_VALUE), 0)
    guard fd >= 0 else { throw ProcessTestError("socket: errno \(errno)") }
    defer { close(fd) }
    var addr = loopback(port: 0)
    let r = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard r == 0 else { throw ProcessTestError("bind: errno \(errno)") }
    var out = sockaddr_in()
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &out) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    return Int(UInt16(bigEndian: out.sin_port))
}

#if canImport(Glibc)
let SOCK_STREAM_VALUE = SOCK_STREAM.rawValue
let SEND_FLAGS = Int32(MSG_NOSIGNAL)
#else
let SOCK_STREAM_VALUE = SOCK_STREAM
let SEND_FLAGS: Int32 = 0
#endif

func loopback(port: Int) -> sockaddr_in {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port)).bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    return addr
}

// MARK: - Running on a dedicated thread

/// Runs blocking work on a new thread so the cooperative pool (two threads here) never blocks.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, any Error>) in
        let t = Thread { cont.resume(with: Result { try body() }) }
        t.stackSize = 1 << 20
        t.start()
    }
}

// MARK: - Child processes

/// A started `basalt` process whose output goes to files (a full pipe would block it).
final class Child: Sendable {
    let process: ChildProcess
    let stdoutPath: String
    let stderrPath: String
    let arguments: [String]

    init(_ arguments: [String], env: [String: String] = [:], cwd: URL, logPrefix: String) throws {
        self.arguments = arguments
        stdoutPath = cwd.appendingPathComponent("\(logPrefix).stdout").path
        stderrPath = cwd.appendingPathComponent("\(logPrefix).stderr").path
        process = try ChildProcess(
            arguments,
            executable: Basalt.binary.path,
            environment: Basalt.environment(env),
            directory: cwd.path,
            stdout: .file(stdoutPath),
            stderr: .file(stderrPath)
        )
    }

    var pid: Int32 { process.pid }
    var isRunning: Bool { process.isRunning }
    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    func signal(_ sig: Int32) { process.signal(sig) }

    /// Waits up to `timeout` seconds for the process to end; `nil` when it is still running.
    func waitExit(timeout: Double) async -> Termination? {
        await process.waitExit(timeout: .milliseconds(Int(timeout * 1000)))
    }

    /// SIGKILL if still running. Safe to call more than once. It does not wait (a `defer` cannot):
    /// the child is reaped the next time anyone asks whether it runs, or stays a zombie until the
    /// test process ends.
    func forceKill() { process.signal(SIGKILL) }

    var diagnostics: String {
        "`basalt \(arguments.joined(separator: " "))`\n--- stdout (tail) ---\n\(String(stdout.suffix(3000)))\n--- stderr (tail) ---\n\(String(stderr.suffix(3000)))"
    }
}

typealias Termination = ChildProcess.Termination

struct CommandResult: Sendable, CustomStringConvertible {
    var termination: Termination
    var stdout: String
    var stderr: String
    var succeeded: Bool { termination.isSuccess }
    /// Exited by itself with a non-zero status (not killed, not timed out).
    var failedCleanly: Bool { !termination.bySignal && termination.status != 0 }
    var description: String { "\(termination)\n--- stdout ---\n\(stdout.prefix(4000))\n--- stderr ---\n\(stderr.prefix(4000))" }
}

nonisolated(unsafe) private var logCounter = 0
private let logCounterLock = NSLock()
private func nextLogPrefix(_ base: String) -> String {
    logCounterLock.lock()
    defer { logCounterLock.unlock() }
    logCounter += 1
    return "\(base)-\(logCounter)"
}

/// Runs `basalt ARGS` to completion, killing it after `timeout` seconds (then the result says
/// "killed by signal 9" and the test fails on its exit status).
@discardableResult
func basalt(_ arguments: [String], env: [String: String] = [:], in dir: TempDir, timeout: Double = 30) async throws -> CommandResult {
    let child = try Child(arguments, env: env, cwd: dir.url, logPrefix: nextLogPrefix("cmd"))
    defer { child.forceKill() }
    let t = await child.waitExit(timeout: timeout)
    if t == nil {
        Issue.record("`basalt \(arguments.joined(separator: " "))` did not finish within \(timeout) s")
        child.forceKill()
    }
    return CommandResult(termination: t ?? Termination(status: SIGKILL, bySignal: true), stdout: child.stdout, stderr: child.stderr)
}

// MARK: - A running server

final class Server: @unchecked Sendable {
    let child: Child
    let port: Int

    private init(child: Child, port: Int) {
        self.child = child
        self.port = port
    }

    /// Starts `basalt serve --http 127.0.0.1:PORT --data DATA EXTRA` and waits (≤ 30 s) for
    /// `/health/ready`.
    static func start(data: String, in dir: TempDir, extra: [String] = [], env: [String: String] = [:]) async throws -> Server {
        try await launch(in: dir, env: { _ in env }) { port in ["serve", "--http", "127.0.0.1:\(port)", "--data", data] + extra }
    }

    /// Starts `basalt ARGUMENTS(port)` with `ENV(port)` and waits (≤ 30 s) for `/health/ready` on
    /// that port. Retries on another port when the chosen one was taken meanwhile.
    static func launch(
        in dir: TempDir,
        env: @Sendable (Int) -> [String: String] = { _ in [:] },
        arguments: @Sendable (Int) -> [String]
    ) async throws -> Server {
        var lastError = ""
        for _ in 0..<3 {
            let port = try freePort()
            let child = try Child(arguments(port), env: env(port), cwd: dir.url, logPrefix: nextLogPrefix("serve"))
            let server = Server(child: child, port: port)
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                if !child.isRunning { break }
                // Ready, and ready *here*: the port was free a moment ago, so another test's server
                // may have taken it; only our child's own log line proves it listens on it.
                if let r = try? await server.request("GET", "/health/ready", timeout: 2), r.status == 200,
                    child.stdout.contains("listening on 127.0.0.1:\(port)")
                {
                    return server
                }
                try? await Task.sleep(for: .milliseconds(100))
            }
            child.forceKill()
            lastError = child.diagnostics
            if !(child.stdout + child.stderr).lowercased().contains("in use") { break }
        }
        throw ProcessTestError("server did not become ready within 30 s:\n\(lastError)")
    }

    /// One request on a fresh connection. The default wait is long: in the suite's first minute
    /// two cores run every test at once, and a sign-in hashes with production parameters.
    func request(_ method: String, _ path: String, key: String? = nil, json: Any? = nil, timeout: Double = 30) async throws -> HTTPResponse {
        var headers: [(String, String)] = []
        if let key { headers.append(("Authorization", "Bearer \(key)")) }
        var body: Data?
        if let json {
            body = try JSONSerialization.data(withJSONObject: json)
            headers.append(("Content-Type", "application/json"))
        }
        let port = self.port
        let requestHeaders = headers
        let requestBody = body
        return try await onThread {
            try HTTPClient.send(port: port, method: method, path: path, headers: requestHeaders, body: requestBody, timeout: timeout)
        }
    }

    /// Every record of a collection, following `next_cursor` (≤ `maxPages` pages of 200).
    func listAll(_ collection: String, key: String, maxPages: Int = 500) async throws -> [[String: Any]] {
        var items: [[String: Any]] = []
        var cursor: String?
        for _ in 0..<maxPages {
            var path = "/v1/\(collection)?limit=200"
            if let cursor { path += "&cursor=" + (cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? cursor) }
            let r = try await request("GET", path, key: key, timeout: 30)
            guard r.status == 200, let obj = r.jsonObject, let page = obj["items"] as? [[String: Any]] else {
                throw ProcessTestError("list page failed: \(r.status) \(r.text.prefix(500))")
            }
            items += page
            guard let next = obj["next_cursor"] as? String else { return items }
            cursor = next
        }
        throw ProcessTestError("more than \(maxPages) pages")
    }

    /// SIGTERM (then SIGKILL after 15 s) and reap.
    func stop() async -> Termination? {
        child.signal(SIGTERM)
        let t = await child.waitExit(timeout: 15)
        child.forceKill()
        return t
    }

    func forceKill() { child.forceKill() }
}

// MARK: - A small blocking HTTP/1.1 client

struct HTTPResponse: @unchecked Sendable {
    var status: Int
    var headers: [String: String]  // lowercased names
    var body: Data
    var text: String { String(decoding: body, as: UTF8.self) }
    var jsonObject: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }
}

enum HTTPClient {
    enum Failure: Error, CustomStringConvertible {
        case connect(Int32)
        case send(Int32)
        case receive(Int32)
        case closedEarly(received: Int)
        case malformed(String)
        var description: String {
            switch self {
            case .connect(let e): "connect failed (errno \(e))"
            case .send(let e): "send failed (errno \(e))"
            case .receive(let e): "receive failed (errno \(e))"
            case .closedEarly(let n): "connection closed before a complete response (\(n) bytes)"
            case .malformed(let s): "malformed response: \(s)"
            }
        }
        /// No byte of a response arrived: the request may or may not have been processed.
        var isNoResponse: Bool {
            switch self {
            case .connect, .send, .receive: true
            case .closedEarly(let n): n == 0
            case .malformed: false
            }
        }
    }

    /// One request on a fresh connection (`Connection: close`), blocking, with socket timeouts.
    static func send(
        port: Int,
        method: String,
        path: String,
        headers: [(String, String)] = [],
        body: Data? = nil,
        timeout: Double = 10
    ) throws -> HTTPResponse {
        let conn = try Connection(port: port, timeout: timeout)
        defer { conn.close() }
        try conn.write(head(method: method, path: path, port: port, headers: headers, bodyLength: body?.count))
        if let body { try conn.write(body) }
        return try conn.readResponse()
    }

    static func head(method: String, path: String, port: Int, headers: [(String, String)], bodyLength: Int?) -> Data {
        var s = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\nAccept: application/json\r\n"
        for (k, v) in headers { s += "\(k): \(v)\r\n" }
        if let bodyLength { s += "Content-Length: \(bodyLength)\r\n" }
        s += "\r\n"
        return Data(s.utf8)
    }

    /// A raw connection, for requests written in pieces.
    final class Connection: @unchecked Sendable {
        let fd: Int32
        private var closed = false

        init(port: Int, timeout: Double) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM_VALUE), 0)
            guard fd >= 0 else { throw Failure.connect(errno) }
            var tv = timeval()
            tv.tv_sec = .init(Int(timeout))
            tv.tv_usec = .init(Int((timeout - Double(Int(timeout))) * 1_000_000))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var addr = loopback(port: port)
            let r = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if r != 0 {
                // Closed by `deinit`, which runs for an object whose initializer throws once every
                // property is set: closing here too closed the descriptor twice, and the second
                // close hit whatever socket had reused the number meanwhile (a database
                // connection, a server's socket) — on every refused connection while a server starts.
                throw Failure.connect(errno)
            }
        }

        func write(_ data: Data) throws {
            try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                var off = 0
                while off < raw.count {
                    let n = Glibc_send(fd, raw.baseAddress! + off, raw.count - off, SEND_FLAGS)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw Failure.send(errno)
                    }
                    off += n
                }
            }
        }

        func readResponse() throws -> HTTPResponse {
            var buf = Data()
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                if let r = try HTTPClient.parse(buf, complete: false) { return r }
                let n = recv(fd, &chunk, chunk.count, 0)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw Failure.receive(errno)
                }
                if n == 0 {
                    if let r = try HTTPClient.parse(buf, complete: true) { return r }
                    throw Failure.closedEarly(received: buf.count)
                }
                buf.append(contentsOf: chunk[0..<n])
            }
        }

        func close() {
            if !closed {
                closed = true
                Glibc_close(fd)
            }
        }
        deinit { close() }
    }

    /// A complete response in `buf`, `nil` when more bytes are needed.
    static func parse(_ buf: Data, complete: Bool) throws -> HTTPResponse? {
        let bytes = [UInt8](buf)
        guard let headEnd = find([13, 10, 13, 10], in: bytes, from: 0) else { return nil }
        let head = String(decoding: bytes[0..<headEnd], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw Failure.malformed("status line \(statusLine)")
        }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { throw Failure.malformed("header line \(line)") }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            headers[name] = headers[name].map { $0 + ", " + value } ?? value
        }
        let rest = Array(bytes[(headEnd + 4)...])
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            var body: [UInt8] = []
            var i = 0
            while true {
                guard let lineEnd = find([13, 10], in: rest, from: i) else { return nil }
                let sizeText = String(decoding: rest[i..<lineEnd], as: UTF8.self).split(separator: ";").first.map(String.init) ?? ""
                guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                    throw Failure.malformed("chunk size \(sizeText)")
                }
                let start = lineEnd + 2
                if size == 0 { return HTTPResponse(status: status, headers: headers, body: Data(body)) }
                guard rest.count >= start + size + 2 else { return nil }
                body += rest[start..<(start + size)]
                i = start + size + 2
            }
        }
        if let cl = headers["content-length"] {
            guard let n = Int(cl) else { throw Failure.malformed("content-length \(cl)") }
            if rest.count < n { return nil }
            return HTTPResponse(status: status, headers: headers, body: Data(rest[0..<n]))
        }
        if status == 204 || status == 304 || (100..<200).contains(status) {
            return HTTPResponse(status: status, headers: headers, body: Data())
        }
        return complete ? HTTPResponse(status: status, headers: headers, body: Data(rest)) : nil
    }

    static func find(_ needle: [UInt8], in hay: [UInt8], from: Int) -> Int? {
        guard hay.count >= needle.count, from <= hay.count - needle.count else { return nil }
        var i = from
        while i <= hay.count - needle.count {
            if hay[i] == needle[0] && Array(hay[i..<(i + needle.count)]) == needle { return i }
            i += 1
        }
        return nil
    }
}

#if canImport(Glibc)
@inline(__always) func Glibc_close(_ fd: Int32) { _ = Glibc.close(fd) }
@inline(__always) func Glibc_send(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int, _ flags: Int32) -> Int { Glibc.send(fd, p, n, flags) }
#else
@inline(__always) func Glibc_close(_ fd: Int32) { _ = Darwin.close(fd) }
@inline(__always) func Glibc_send(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int, _ flags: Int32) -> Int { Darwin.send(fd, p, n, flags) }
#endif

// MARK: - Fixtures

enum Schemas {
    static let events = """
        collections:
          events:
            fields:
              n: {type: integer, required: true}
              note: {type: text}

        """

    /// `events` without `note`: destructive once any record has a note.
    static let eventsWithoutNote = """
        collections:
          events:
            fields:
              n: {type: integer, required: true}

        """

    /// `events` plus an optional field: a non-destructive change.
    static let eventsWithTag = """
        collections:
          events:
            fields:
              n: {type: integer, required: true}
              note: {type: text}
              tag: {type: text}

        """
}

/// Creates an admin key in `data` with the CLI and returns it.
func createAdminKey(data: String, in dir: TempDir, name: String = "test") async throws -> String {
    let r = try await basalt(["admin", "key", "create", "--name", name, "--data", data], in: dir)
    guard r.succeeded else { throw ProcessTestError("admin key create failed: \(r)") }
    return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
}

extension Server {
    /// Opens `GET /v1/realtime` + `query` and reads until `count` events (`event: basalt.…` frames)
    /// have arrived or `timeout` passes; returns each event's `subject` (record id) and `sequence`
    /// in arrival order, and when the last of them arrived. Blocking: run it with `onThread`.
    func readEvents(
        _ query: String,
        key: String,
        count: Int,
        timeout: Double = 20
    ) throws -> (events: [(subject: String, sequence: String)], at: Date) {
        let c = try HTTPClient.Connection(port: port, timeout: 2)
        defer { c.close() }
        try c.write(
            HTTPClient.head(
                method: "GET",
                path: "/v1/realtime" + query,
                port: port,
                headers: [("Authorization", "Bearer \(key)"), ("Accept", "text/event-stream")],
                bodyLength: nil
            )
        )
        var raw = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(timeout)
        // Frames are written whole, one batch per chunk: a frame's text is never split by the
        // chunked framing, only (harmlessly) by TCP.
        let pattern = try NSRegularExpression(
            pattern: #"\nid: ([0-9]{20})\nevent: basalt\.record\.[a-z]+\ndata: \{[^\n]*?"subject":"([0-9a-f-]{36})""#
        )
        func parsed() -> [(String, String)] {
            let text = String(decoding: raw, as: UTF8.self)
            return pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { m in
                (String(text[Range(m.range(at: 2), in: text)!]), String(text[Range(m.range(at: 1), in: text)!]))
            }
        }
        // Count frames as bytes arrive (linear); parse once at the end.
        let marker = Array("\nevent: basalt.record.".utf8)
        var seen = 0
        var scanned = 0
        while Date() < deadline && seen < count {
            let n = recv(c.fd, &chunk, chunk.count, 0)
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { continue }
            if n <= 0 { break }
            raw += chunk[0..<n]
            var i = max(0, scanned - marker.count + 1)
            while i + marker.count <= raw.count {
                if raw[i] == marker[0] && raw[i..<(i + marker.count)].elementsEqual(marker) {
                    seen += 1
                    i += marker.count
                } else {
                    i += 1
                }
            }
            scanned = raw.count
        }
        let at = Date()
        return (parsed().map { (subject: $0.0, sequence: $0.1) }, at)
    }
}
