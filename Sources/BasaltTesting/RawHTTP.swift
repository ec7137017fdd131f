import Foundation
import HTTPTypes
import HummingbirdTesting

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bytes to a loopback port and whatever comes back until the server closes: for requests no
/// well-behaved client sends (an over-long request line). Runs on a thread of its own, so the
/// cooperative pool never blocks.
public enum RawHTTP {
    /// A TCP socket connected to `127.0.0.1:port`, reads timing out after `seconds`. The caller closes it.
    static func connectLoopback(port: Int, timeout seconds: Int) throws -> Int32 {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw TestSetupError("socket: errno \(errno)") }
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port)).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let e = errno
            close(fd)
            throw TestSetupError("connect: errno \(e)")
        }
        return fd
    }

    public static func exchange(port: Int, _ request: [UInt8], timeout seconds: Int = 10) async throws -> String {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<String, any Error>) in
            Thread {
                cont.resume(with: Result { try exchangeBlocking(port: port, request, timeout: seconds) })
            }.start()
        }
    }

    /// `exchange`, the answer as bytes (a WebSocket's frames are not text).
    public static func exchangeBytes(port: Int, _ request: [UInt8], timeout seconds: Int = 10) async throws -> [UInt8] {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<[UInt8], any Error>) in
            Thread {
                cont.resume(with: Result { try exchangeBlockingBytes(port: port, request, timeout: seconds) })
            }.start()
        }
    }

    static func exchangeBlocking(port: Int, _ request: [UInt8], timeout seconds: Int) throws -> String {
        String(decoding: try exchangeBlockingBytes(port: port, request, timeout: seconds), as: UTF8.self)
    }

    static func exchangeBlockingBytes(port: Int, _ request: [UInt8], timeout seconds: Int) throws -> [UInt8] {
        let fd = try connectLoopback(port: port, timeout: seconds)
        defer { close(fd) }
        // The server may answer and stop reading before all is sent: a short write is no failure.
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return out
    }
}

extension APIClient {
    /// `send`, but on a connection of its own (`Connection: close`), with its own timeout: for
    /// requests that must really run at the same time (the test client pipelines on one connection).
    public func sendAlone(
        _ method: String,
        _ uri: String,
        json: String? = nil,
        headers extra: [String: String] = [:],
        timeout: Int = 60
    ) async throws -> Reply {
        guard let port = client.port else { throw TestSetupError("the test client has no port (not a live test)") }
        let body = Array((json ?? "").utf8)
        var head = "\(method) \(uri) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer \(adminKey)\r\n"
        if json != nil { head += "Content-Type: application/json\r\n" }
        head += "Content-Length: \(body.count)\r\n"
        for (k, v) in extra { head += "\(k): \(v)\r\n" }
        let raw = try await RawHTTP.exchange(port: port, Array((head + "\r\n").utf8) + body, timeout: timeout)
        return try Reply(raw: raw)
    }
}

extension APIClient.Reply {
    /// Parses a whole HTTP/1.1 response (status line, fields, a plain or chunked body).
    init(raw: String) throws {
        guard let split = raw.range(of: "\r\n\r\n") else { throw TestSetupError("no complete response: \(raw.prefix(200))") }
        let lines = raw[..<split.lowerBound].components(separatedBy: "\r\n")
        let statusParts = lines.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, let code = Int(statusParts[1]) else { throw TestSetupError("bad status line: \(lines.first ?? "")") }
        var fields = HTTPFields()
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":"), let name = HTTPField.Name(String(line[..<colon])) else { continue }
            fields.append(HTTPField(name: name, value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var body = String(raw[split.upperBound...])
        if fields[.transferEncoding]?.lowercased() == "chunked" {
            var decoded = ""
            var rest = Substring(body)
            while let lineEnd = rest.range(of: "\r\n"), let size = Int(rest[..<lineEnd.lowerBound], radix: 16), size > 0 {
                let chunk = rest[lineEnd.upperBound...].utf8.prefix(size)
                decoded += String(decoding: chunk, as: UTF8.self)
                rest = Substring(String(decoding: rest[lineEnd.upperBound...].utf8.dropFirst(size + 2), as: UTF8.self))
            }
            body = decoded
        }
        self.init(status: HTTPResponse.Status(code: code), headers: fields, text: body)
    }
}
