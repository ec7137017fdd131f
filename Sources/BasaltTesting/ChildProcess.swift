public import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34) and `…_addchdir_np` (2.29), which
/// its Swift module map leaves out.
@_silgen_name("posix_spawn_file_actions_addclosefrom_np")
private func spawnActionCloseFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ from: Int32) -> Int32
@_silgen_name("posix_spawn_file_actions_addchdir_np")
private func spawnActionChdir(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ path: UnsafePointer<CChar>) -> Int32

/// A child process of a test, spawned with `posix_spawn` directly rather than Foundation's
/// `Process`. On Linux with Swift 6.3, `Process.run()` scans `/proc/self/fd` copying each entry's
/// whole 256-byte name, reading past the end of glibc's directory buffer: now and then the test
/// process died in `memcpy` while spawning (swift-corelibs-foundation pull request 5472). Here the
/// child closes every inherited descriptor above 2 itself (`closefrom`), so nothing is scanned,
/// and a pipe or socket of one test cannot leak into another test's child: spawns need no lock.
///
/// Like `Process`, the child gets a process group of its own and the parent's signal mask and
/// dispositions. Its exit is polled (`waitpid` with `WNOHANG`), never waited for on a thread.
public final class ChildProcess: Sendable {
    /// Where one of the child's standard streams goes.
    public enum Stream: Sendable {
        case null
        /// A file, opened for writing and appended to; created if missing.
        case file(String)
        /// A descriptor of the parent (a pipe's end): the child gets a copy on that stream.
        case descriptor(Int32)
    }

    public struct Termination: Sendable, Equatable, CustomStringConvertible {
        public var status: Int32
        public var bySignal: Bool
        public var isSuccess: Bool { !bySignal && status == 0 }
        public var description: String { bySignal ? "killed by signal \(status)" : "exit \(status)" }
        public init(status: Int32, bySignal: Bool) {
            self.status = status
            self.bySignal = bySignal
        }
    }

    public let pid: pid_t
    private let ended = Mutex<Termination?>(nil)

    /// Starts `executable` (an absolute path; by default `env`, which finds the program named
    /// first in `arguments` on the PATH); `environment` nil inherits the test process's.
    public init(
        _ arguments: [String],
        executable: String = "/usr/bin/env",
        environment: [String: String]? = nil,
        directory: String? = nil,
        stdin: Stream = .null,
        stdout: Stream = .null,
        stderr: Stream = .null
    ) throws {
        var actions = posix_spawn_file_actions_t()
        try Self.check(posix_spawn_file_actions_init(&actions), "posix_spawn_file_actions_init")
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (stream, target) in [(stdin, Int32(0)), (stdout, 1), (stderr, 2)] {
            switch stream {
            case .null:
                let flags = target == 0 ? O_RDONLY : O_WRONLY
                try Self.check(posix_spawn_file_actions_addopen(&actions, target, "/dev/null", flags, 0), "addopen")
            case .file(let path):
                try Self.check(
                    posix_spawn_file_actions_addopen(&actions, target, path, O_WRONLY | O_CREAT | O_APPEND, 0o644),
                    "addopen"
                )
            case .descriptor(let fd):
                // dup2 onto the standard stream clears its close-on-exec flag.
                try Self.check(posix_spawn_file_actions_adddup2(&actions, fd, target), "adddup2")
            }
        }
        try Self.check(spawnActionCloseFrom(&actions, 3), "addclosefrom")
        if let directory {
            try Self.check(spawnActionChdir(&actions, directory), "addchdir")
        }

        var attributes = posix_spawnattr_t()
        try Self.check(posix_spawnattr_init(&attributes), "posix_spawnattr_init")
        defer { posix_spawnattr_destroy(&attributes) }
        try Self.check(posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP)), "setflags")
        try Self.check(posix_spawnattr_setpgroup(&attributes, 0), "setpgroup")

        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup($0) } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var child: pid_t = 0
        try Self.check(posix_spawn(&child, executable, &actions, &attributes, argv, envp), "posix_spawn \(executable)")
        pid = child
    }

    /// Whether the child is still running; reaps it once it has ended.
    public var isRunning: Bool { termination == nil }

    /// How the child ended, or nil while it runs.
    public var termination: Termination? {
        ended.withLock { ended in
            if let ended { return ended }
            var status: Int32 = 0
            var result: pid_t
            repeat { result = waitpid(pid, &status, WNOHANG) } while result < 0 && errno == EINTR
            guard result == pid else { return nil }
            // The <sys/wait.h> macros by hand: low 7 bits the signal, else the exit code above them.
            let signal = status & 0x7f
            ended = signal == 0 ? Termination(status: (status >> 8) & 0xff, bySignal: false) : Termination(status: signal, bySignal: true)
            return ended
        }
    }

    /// Sends `sig` unless the child has already been reaped (its pid may be another's by then).
    public func signal(_ sig: Int32) {
        ended.withLock { ended in
            if ended == nil { _ = kill(pid, sig) }
        }
    }

    /// Waits up to `timeout` for the child to end, polling; nil when it still runs.
    public func waitExit(timeout: Duration) async -> Termination? {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while true {
            if let termination { return termination }
            if ContinuousClock.now > deadline { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// A pipe to hand to a child as one of its streams. Every child spawned here closes what it
    /// inherits beyond its streams, so the pipe reaches no other child.
    public static func pipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        try check(Glibc.pipe(&fds) == 0 ? 0 : errno, "pipe")
        return (fds[0], fds[1])
    }

    private static func check(_ code: Int32, _ what: String) throws {
        guard code == 0 else { throw TestSetupError("\(what): \(String(cString: strerror(code)))") }
    }
}
