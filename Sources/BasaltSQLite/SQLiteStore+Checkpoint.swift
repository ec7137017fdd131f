import Foundation
internal import GRDB
import Logging
import Synchronization

/// The write-ahead log's state, for logs, metrics and advisors.
public struct WALStatus: Sendable {
    /// The WAL file's size after the last checkpoint, in bytes (a restarted log reuses the file,
    /// which `journal_size_limit` keeps near the target).
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
    /// connection of its own (SQLite's automatic checkpoint would copy and sync inside a
    /// committing write, stalling every writer behind it).
    ///
    /// A PASSIVE checkpoint never waits, but it can only copy frames no reader still needs, and
    /// the log only restarts when no reader uses it at all: under steady reads that moment never
    /// comes, and the file grows for as long as the load lasts (1.35 GB in ten minutes in the
    /// issue that found it). So once the file passes `walTargetBytes`, the checkpoint escalates
    /// to RESTART: it takes the write lock, waits at most `escalatedWait` for readers of older
    /// snapshots to finish (new ones read the database file, which holds everything), then
    /// starts the log over. Writers wait meanwhile, retrying every millisecond (see
    /// `retryEveryMillisecond`), so they resume as soon as it is done. When it cannot finish it
    /// has still copied what it could, says why in the log, and backs off before trying again.
    public func checkpoint() async throws {
        let mayEscalate = wal.withLock { $0.escalateAfter.map { ContinuousClock.now >= $0 } ?? true }
        let target = walTargetBytes
        let start = ContinuousClock.now
        let (escalate, finished) = try await checkpointer.writeWithoutTransaction { db -> (Bool, Bool) in
            // The bulk of the copying and syncing happens here, blocking no one; an escalation
            // right after it only has the last milliseconds' frames to copy under the lock.
            let frames = try db.checkpoint(.passive).walFrameCount
            let pageSize = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
            // The log's length since it last restarted (its file may be longer: it is reused).
            guard mayEscalate, Int64(frames) * (pageSize + 24) > target else { return (false, true) }
            // Catch up with what was written during that pass, and again, until a pass is short:
            // the escalation then copies only a few milliseconds' frames under the lock.
            for _ in 0..<4 {
                let pass = ContinuousClock.now
                _ = try db.checkpoint(.passive)
                if ContinuousClock.now - pass < .milliseconds(15) { break }
            }
            do {
                // RESTART, not TRUNCATE: the next write starts over at the beginning of the file
                // and `journal_size_limit` trims it to the target, without the cost of shrinking
                // and regrowing the file on every escalation.
                _ = try db.checkpoint(.restart)
                return (true, true)
            } catch let e as DatabaseError where e.resultCode == .SQLITE_BUSY || e.resultCode == .SQLITE_LOCKED {
                return (true, false)
            }
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

    /// A busy handler that retries every millisecond for up to `timeout`. SQLite's own (behind
    /// `busy_timeout`) sleeps 1, 2, 5 … then 100 ms between tries: a writer that found the lock
    /// taken by a checkpoint for 20 ms could sleep on for 100 ms more, and every escalated
    /// checkpoint became a 250–350 ms stall of all writers in the benchmark.
    static func retryEveryMillisecond(for timeout: Duration) -> Database.BusyCallback {
        let limit = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        return { tries in
            guard tries < limit else { return false }
            usleep(1000)
            return true
        }
    }

    func fileSize(_ path: String) -> Int64 {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : 0
    }
}
