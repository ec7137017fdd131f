public import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a helper program (python tools, validators) from a test without ever blocking the
/// cooperative pool (two threads here) and without pipes. A pipe's write end can leak into
/// another child spawned at the same moment by a parallel test (a long-running server), and a
/// read-to-end would then wait for *that* process: a blocked cooperative thread waiting for a
/// test that cannot run. Output goes to a file; the exit is polled.
public enum Subprocess {
    public struct Result: Sendable {
        public var status: Int32
        public var output: String
        public var succeeded: Bool { status == 0 }
    }

    /// Spawns are serialized: Foundation's `Process` on Linux races when several threads spawn
    /// while descriptors are opened and closed around it. One lock for every spawn of the test
    /// process: helpers that spawn on their own take it too (a second lock let two spawns meet,
    /// and `Process.run` crashed in `memcpy`).
    public static let spawnLock = NSLock()

    /// Starts a long-running helper (a proxy, a receiver) with no pipes; the caller stops it.
    public static func start(_ arguments: [String]) throws -> Process {
        try spawnLock.withLock {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = arguments
            p.standardInput = FileHandle.nullDevice
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
    }

    public static func run(_ arguments: [String], timeout: Duration = .seconds(120)) async throws -> Result {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("basalt-subprocess-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out) }
        let process = try spawnLock.withLock { () throws -> Process in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = arguments
            let fd = open(out.path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
            // Not closed on deallocation: Foundation closes the parent's copy itself after the
            // spawn, and a second close could hit another thread's new descriptor (EBADF in a
            // parallel test), as BasaltProcessTests' Child explains.
            let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
            p.standardInput = FileHandle.nullDevice
            p.standardOutput = handle
            p.standardError = handle
            try p.run()
            return p
        }
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while process.isRunning {
            if ContinuousClock.now > deadline {
                kill(process.processIdentifier, SIGKILL)
                throw TestSetupError("\(arguments.joined(separator: " ")) did not finish within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let text = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        return Result(status: process.terminationStatus, output: text)
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
