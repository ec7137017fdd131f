import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Server-Sent Events client on a plain socket, for tests: opens `GET path` on a loopback port
/// and hands out frames as they arrive. Runs its reads on a thread of its own.
public final class SSEClient: Sendable {
    public struct Frame: Sendable, Equatable {
        public var id: String?
        public var event: String?
        public var data: String
        /// Comment lines (`: ping`).
        public var comments: [String]
    }

    public let status: Int
    public let headers: [String: String]
    /// Everything before the first frame when the answer is not a stream (a problem document).
    public let body: String
    public let frames: AsyncStream<Frame>
    let connection: Socket

    init(status: Int, headers: [String: String], body: String, frames: AsyncStream<Frame>, connection: Socket) {
        self.status = status
        self.headers = headers
        self.body = body
        self.frames = frames
        self.connection = connection
    }

    /// Ends the stream (the server sees the connection close).
    public func close() { connection.userClosed() }

    /// The descriptor, closed exactly once and only when both the reader thread and the user are
    /// done with it: a descriptor closed early is reused by the process's next socket, which a
    /// late `shutdown` would then cut (another test's database connection).
    final class Socket: Sendable {
        let fd: Int32
        let state = Mutex<(reading: Bool, user: Bool, closed: Bool)>((true, false, false))
        init(_ fd: Int32) { self.fd = fd }

        func userClosed() {
            state.withLock { s in
                guard !s.closed else { return }
                s.user = true
                if s.reading {
                    shutdown(fd, Int32(SHUT_RDWR))  // wakes the reader, which closes
                } else {
                    Glibc.close(fd)
                    s.closed = true
                }
            }
        }

        func readerDone() {
            state.withLock { s in
                s.reading = false
                if s.user && !s.closed {
                    Glibc.close(fd)
                    s.closed = true
                }
            }
        }

        deinit {
            state.withLock { s in
                if !s.closed { Glibc.close(fd) }
            }
        }
    }

    /// Connects and waits for the response head. `headers` are sent as given.
    public static func open(port: Int, path: String, headers: [String: String] = [:], timeout seconds: Int = 60) async throws -> SSEClient {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<SSEClient, any Error>) in
            Thread { run(port: port, path: path, headers: headers, timeout: seconds, opened: cont) }.start()
        }
    }

    static func run(port: Int, path: String, headers: [String: String], timeout: Int, opened: CheckedContinuation<SSEClient, any Error>) {
        let fd: Int32
        do {
            fd = try RawHTTP.connectLoopback(port: port, timeout: timeout)
        } catch {
            return opened.resume(throwing: error)
        }
        let owner = Socket(fd)
        defer { owner.readerDone() }
        var head = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        let request = Array((head + "\r\n").utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }

        var pending = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        func read() -> Bool {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return false }
            pending += buf[0..<n]
            return true
        }
        // The head.
        var headEnd: Int?
        while headEnd == nil {
            if let r = find(pending, [13, 10, 13, 10]) {
                headEnd = r
                break
            }
            guard read() else { return opened.resume(throwing: TestSetupError("no response head")) }
        }
        let lines = String(decoding: pending[..<headEnd!], as: UTF8.self).components(separatedBy: "\r\n")
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        var fields: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        pending.removeFirst(headEnd! + 4)
        let chunked = fields["transfer-encoding"]?.lowercased() == "chunked"
        let (stream, continuation) = AsyncStream<Frame>.makeStream()
        // De-chunk into `body`, then cut frames at blank lines.
        var body = [UInt8]()
        var done = false
        func dechunk() {
            guard chunked else {
                body += pending
                pending = []
                return
            }
            while let lineEnd = find(pending, [13, 10]) {
                let sizeText = String(decoding: pending[..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
                guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                    done = true
                    return
                }
                if size == 0 {
                    done = true
                    return
                }
                guard pending.count >= lineEnd + 2 + size + 2 else { return }
                body += pending[(lineEnd + 2)..<(lineEnd + 2 + size)]
                pending.removeFirst(lineEnd + 2 + size + 2)
            }
        }
        if status != 200 {
            // A problem document: read it whole.
            while !done {
                dechunk()
                if let n = fields["content-length"].flatMap(Int.init), body.count >= n { break }
                if done || !read() { break }
            }
            continuation.finish()
            return opened.resume(
                returning: SSEClient(status: status, headers: fields, body: String(decoding: body, as: UTF8.self), frames: stream, connection: owner)
            )
        }
        let client = SSEClient(status: status, headers: fields, body: "", frames: stream, connection: owner)
        opened.resume(returning: client)
        while true {
            dechunk()
            while let end = find(body, [10, 10]) {
                let text = String(decoding: body[..<end], as: UTF8.self)
                body.removeFirst(end + 2)
                var frame = Frame(id: nil, event: nil, data: "", comments: [])
                var data: [String] = []
                for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                    if line.hasPrefix(":") {
                        frame.comments.append(line.dropFirst().trimmingCharacters(in: .whitespaces))
                    } else if line.hasPrefix("id: ") {
                        frame.id = String(line.dropFirst(4))
                    } else if line.hasPrefix("event: ") {
                        frame.event = String(line.dropFirst(7))
                    } else if line.hasPrefix("data: ") {
                        data.append(String(line.dropFirst(6)))
                    }
                }
                frame.data = data.joined(separator: "\n")
                continuation.yield(frame)
            }
            if done || !read() { break }
        }
        continuation.finish()
    }

    static func find(_ hay: [UInt8], _ needle: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        var i = 0
        while i <= hay.count - needle.count {
            if hay[i] == needle[0] && Array(hay[i..<(i + needle.count)]) == needle { return i }
            i += 1
        }
        return nil
    }
}

extension SSEClient {
    /// Collects frames (not comments-only ones) until `count` are read or `timeout` passes: the
    /// frames read by then.
    public func next(_ count: Int, timeout: Duration = .seconds(10)) async -> [Frame] {
        let frames = self.frames
        return await withTaskGroup(of: [Frame]?.self) { group in
            group.addTask {
                var out: [Frame] = []
                for await f in frames where f.event != nil || !f.data.isEmpty {
                    out.append(f)
                    if out.count == count { break }
                }
                return out
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            var result: [Frame] = []
            for await r in group {
                group.cancelAll()  // the collector ends at cancellation with what it has
                if let r { result = r }
            }
            return result
        }
    }
}
