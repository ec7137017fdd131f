// The spawner every test's child processes go through (BasaltTesting's `ChildProcess`): what it
// hands a child, what it keeps from it, and how it reports the child's end.

import BasaltTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("ChildProcess, the tests' spawner")
struct ChildProcessTests {
    @Test("an exit code and a killing signal are told apart")
    func terminations() async throws {
        let exited = try ChildProcess(["sh", "-c", "exit 3"])
        #expect(await exited.waitExit(timeout: .seconds(10)) == .init(status: 3, bySignal: false))
        let killed = try ChildProcess(["sleep", "30"])
        #expect(killed.isRunning)
        killed.signal(SIGKILL)
        #expect(await killed.waitExit(timeout: .seconds(10)) == .init(status: SIGKILL, bySignal: true))
        #expect(!killed.isRunning)
        killed.signal(SIGKILL)  // reaped: a no-op, not a signal to whatever has its pid now
    }

    @Test("streams, arguments, environment and directory reach the child as given")
    func whatTheChildGets() async throws {
        let dir = try TempDir("basalt-child")
        defer { dir.remove() }
        let out = dir.path("out.log")
        let child = try ChildProcess(
            ["sh", "-c", #"printf '%s|%s|%s\n' "$1" "$GREETING" "$(pwd)"; echo oops >&2"#, "sh", "one two"],
            environment: ["GREETING": "hello", "PATH": "/usr/bin:/bin"],
            directory: dir.url.path,
            stdout: .file(out),
            stderr: .file(out)
        )
        #expect(await child.waitExit(timeout: .seconds(10))?.isSuccess == true)
        let text = try String(contentsOfFile: out, encoding: .utf8)
        let realDir = URL(fileURLWithPath: dir.url.path).resolvingSymlinksInPath().path
        #expect(text.contains("one two|hello|") && text.contains("oops"), "\(text)")
        #expect(text.contains(realDir) || text.contains(dir.url.path), "\(text)")
    }

    @Test("a descriptor of the test process never leaks into a child: a pipe's reader sees its end")
    func nothingLeaks() async throws {
        let pipe = try ChildProcess.pipe()
        // A long-lived child spawned while both ends are open: were the write end inherited, the
        // read below would wait for this child instead of seeing the end of the pipe.
        let bystander = try ChildProcess(["sleep", "30"])
        defer { bystander.signal(SIGKILL) }
        // A child given the write end as its stdout writes a line and exits.
        let writer = try ChildProcess(["echo", "through the pipe"], stdout: .descriptor(pipe.write))
        close(pipe.write)
        #expect(await writer.waitExit(timeout: .seconds(10))?.isSuccess == true)
        let text = try await onThread { () -> String in
            defer { close(pipe.read) }
            var data = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 256)
            while true {
                let n = read(pipe.read, &buffer, buffer.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                data += buffer[0..<n]
            }
            return String(decoding: data, as: UTF8.self)
        }
        #expect(text == "through the pipe\n")
        #expect(bystander.isRunning, "the read ended because the bystander died, not because the pipe closed")
    }
}
