import Basalt
import BasaltCore
import BasaltSQLite
import BasaltServices
import BasaltTesting
import Foundation
import HTTPTypes
import Synchronization
import Testing

/// Issue "SQLite under sustained load": with readers always active, PASSIVE checkpoints never
/// let the log restart and it grew without bound. Escalated checkpoints keep it near its target.
@Suite("SQLite write-ahead log under sustained load", .serialized)
struct WALTests {
    @Test func theLogStaysNearItsTargetWhileReadersNeverStop() async throws {
        try await writeWhile { records, _ in
            _ = try await records.list("posts", query: ListQuery(limit: "50"), principal: .anonymous("reader"))
        }
    }

    /// Issue "SQLite under sustained load": a backup copies the database under a read snapshot;
    /// taken back to back while writers run, the log must still come back to its target.
    @Test func theLogStaysNearItsTargetWhileBackupsRunBackToBack() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("basalt-wal-backup-\(UUID().uuidString).gz").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try await writeWhile(readers: 1) { _, runtime in
            try await runtime.createBackup(to: file)
        }
    }

    /// Writes 300 records of 4 KB with `readers` tasks running `read` without a pause, and checks
    /// the log's largest size.
    func writeWhile(readers: Int = 3, _ read: @escaping @Sendable (RecordService, BasaltRuntime) async throws -> Void) async throws {
        let target: Int64 = 256 << 10
        try await TestBackend.sqlite.withApp(schema: Fixtures.blog, configure: { $0.sqliteWALTargetBytes = target }) { api in
            let store = try #require(api.runtime.store as? SQLiteStore)
            let walPath = api.runtime.configuration.dataDirectory + "/data.db-wal"
            func walSize() -> Int64 { ((try? FileManager.default.attributesOfItem(atPath: walPath))?[.size] as? Int64) ?? 0 }
            let body = String(repeating: "w", count: 4_000)
            let records = api.runtime.records
            let writing = Running()
            // Through the services, not the test client (one connection, one request at a time):
            // three readers that never pause, so some read transaction is always open, and a
            // writer of 300 records (about 13 MB of log without escalation), however long a
            // loaded machine takes for them.
            let largest = try await withThrowingTaskGroup(of: Int64.self) { group in
                for _ in 0..<readers {
                    group.addTask {
                        while writing.isOn { try await read(records, api.runtime) }
                        return 0
                    }
                }
                group.addTask {
                    defer { writing.stop() }
                    for n in 1...300 {
                        let post = try JSONValue.parse(#"{"title":"p\#(n)","body":"\#(body)","status":"published"}"#)
                        _ = try await records.execute(.create(collection: "posts", body: post), principal: .system)
                        // Sustained, not a burst: at most 25 writes a housekeeping tick, however
                        // fast this machine writes (group commit writes 300 in half a second).
                        if n % 25 == 0 {
                            let seen = writing.ticks
                            while writing.ticks == seen { try await Task.sleep(for: .milliseconds(1)) }
                        }
                    }
                    return 0
                }
                // The housekeeping tick, faster than the service's once a second, watching the file.
                group.addTask {
                    var largest: Int64 = 0
                    while writing.isOn {
                        try await store.checkpoint()
                        largest = max(largest, walSize())
                        writing.tick()
                        try await Task.sleep(for: .milliseconds(100))
                    }
                    return largest
                }
                return try await group.reduce(0) { max($0, $1) }
            }
            // Through the service too: the test client's connection idles while this runs.
            let page = try await records.list("posts", query: ListQuery(limit: "1", total: true), principal: .system)
            let written = try #require(page.total)
            #expect(written == 300)
            // Without escalation the log holds every page written (about written × 8 KiB here);
            // with it, at most what a tick adds above the target.
            #expect(largest < target * 8, "the WAL reached \(largest) bytes for a target of \(target) after \(written) writes")
            #expect(store.walStatus.unfinished < 5)
        }
    }
}

/// A flag one task clears and others poll.
final class Running: Sendable {
    let state = Mutex(true)
    let count = Mutex(0)
    var isOn: Bool { state.withLock { $0 } }
    func stop() { state.withLock { $0 = false } }
    /// A counter another task watches (checkpoints done).
    var ticks: Int { count.withLock { $0 } }
    func tick() { count.withLock { $0 += 1 } }
}
