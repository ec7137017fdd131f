import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bytes to a loopback port and whatever comes back until the server closes: for requests no
/// well-behaved client sends (an over-long request line). Runs on a thread of its own, so the
/// cooperative pool never blocks.
public enum RawHTTP {
    public static func exchange(port: Int, _ request: [UInt8], timeout seconds: Int = 10) async throws -> String {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<String, any Error>) in
            Thread {
                cont.resume(with: Result { try exchangeBlocking(port: port, request, timeout: seconds) })
            }.start()
        }
    }

    static func exchangeBlocking(port: Int, _ request: [UInt8], timeout seconds: Int) throws -> String {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw TestSetupError("socket: errno \(errno)") }
        defer { close(fd) }
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port)).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TestSetupError("connect: errno \(errno)") }
        // The server may answer and stop reading before all is sent: a short write is no failure.
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
