public import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a helper program (python tools, validators) from a test without ever blocking the
/// cooperative pool (two threads here): output goes to a file, the exit is polled.
public enum Subprocess {
    public struct Result: Sendable {
        public var status: Int32
        public var output: String
        public var succeeded: Bool { status == 0 }
    }

    /// Runs `arguments` (a program on the PATH and its arguments) to its end, in `directory` if
    /// given; a run past `timeout` is killed and throws.
    public static func run(_ arguments: [String], in directory: URL? = nil, timeout: Duration = .seconds(120)) async throws -> Result {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("basalt-subprocess-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: out) }
        let child = try ChildProcess(arguments, directory: directory?.path, stdout: .file(out.path), stderr: .file(out.path))
        guard let termination = await child.waitExit(timeout: timeout) else {
            child.signal(SIGKILL)
            throw TestSetupError("\(arguments.joined(separator: " ")) did not finish within \(timeout)")
        }
        let text = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        return Result(status: termination.bySignal ? 128 + termination.status : termination.status, output: text)
    }
}

/// Decodes base32 (RFC 4648, no padding) — what an authenticator app does with the secret.
public func base32Decode(_ s: String) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    var bytes: [UInt8] = []
    var buffer = 0
    var bits = 0
    for c in s {
        guard let v = alphabet.firstIndex(of: c) else { continue }
        buffer = (buffer << 5) | v
        bits += 5
        if bits >= 8 {
            bytes.append(UInt8((buffer >> (bits - 8)) & 0xFF))
            bits -= 8
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}
