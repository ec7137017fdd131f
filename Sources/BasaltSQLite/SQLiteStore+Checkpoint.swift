import Foundation
internal import GRDB
import Logging
import Synchronization

/// The write-ahead log's state, for logs, metrics and advisors.
public struct WALStatus: Sendable {
    /// The WAL file's size after the last checkpoint, in bytes.
    public var bytes: Int64 = 0
    /// How long the last checkpoint took.
    public var lastDuration: Duration = .zero
    /// Whether the last checkpoint escalated (the WAL was over its target).
    public var lastEscalated = false
    /// Escalated checkpoints in a row that could not finish (readers or a writer held on).
    public var unfinished = 0
    /// When a failure was last logged (to log one a minute, not one a second).
    var lastWarning: ContinuousClock.Instant?
    /// No escalation before this: after failed ones the attempts back off (2, 4 … 30 s), so a
    /// reader that holds on does not make writers wait 250 ms every second.
    var escalateAfter: ContinuousClock.Instant?
}

extension SQLiteStore {
    /// How long an escalated checkpoint waits for the writer and for old readers.
    static let escalatedWait: TimeInterval = 0.25

    /// Copies the WAL back into the database, once a second from the housekeeping tick, on a
    /// connection of its own (SQLite's automatic checkpoint would run inside a committing write).
    ///
    /// A PASSIVE checkpoint never waits, but it can only copy frames no reader still needs, and
    /// the log is only restarted when no reader uses it at all: under steady reads that moment
    /// never comes, and the file grows for as long as the load lasts (1.35 GB in ten minutes in
    /// the issue that found it). So once the file passes `walTargetBytes`, the checkpoint
    /// escalates to TRUNCATE: it takes the write lock, waits at most `escalatedWait` for readers
    /// of older snapshots to finish (new ones read the database file, which holds everything),
    /// then empties the log. Writers queue behind it for that long at most; when it cannot
    /// finish it has still copied what it could, says why in the log, and tries again next tick.
    public func checkpoint() async throws {
        let before = fileSize(walPath)
        let escalate = before > walTargetBytes && wal.withLock { $0.escalateAfter.map { ContinuousClock.now >= $0 } ?? true }
        let start = ContinuousClock.now
        var finished = true
        do {
            try await checkpointer.writeWithoutTransaction { db in _ = try db.checkpoint(escalate ? .truncate : .passive) }
        } catch let e as DatabaseError where e.resultCode == .SQLITE_BUSY || e.resultCode == .SQLITE_LOCKED {
            finished = false
        }
        let elapsed = ContinuousClock.now - start
        let after = fileSize(walPath)
        let warn = wal.withLock { w -> Bool in
            w.bytes = after
            w.lastDuration = elapsed
            w.lastEscalated = escalate
            if escalate {
                w.unfinished = finished ? 0 : w.unfinished + 1
                w.escalateAfter = finished ? nil : .now + .seconds(min(1 << min(w.unfinished, 5), 30))
            }
            guard w.unfinished > 0, w.lastWarning.map({ $0.duration(to: .now) > .seconds(60) }) ?? true else { return false }
            w.lastWarning = .now
            return true
        }
        if warn {
            logger.warning(
                "WAL checkpoint could not finish: readers or a writer held the database longer than the wait",
                metadata: [
                    "wal.bytes": "\(after)", "wal.target_bytes": "\(walTargetBytes)", "checkpoint.attempts": "\(wal.withLock { $0.unfinished })",
                ]
            )
        }
    }

    /// The write-ahead log as of the last checkpoint.
    public var walStatus: WALStatus { wal.withLock { $0 } }

    func fileSize(_ path: String) -> Int64 {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : 0
    }
}
