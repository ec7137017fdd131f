import BasaltStorage
internal import GRDB
internal import GRDBSQLite
import Synchronization

/// Group commit. SQLite has one writer, and each transaction pays for its commit: every page it
/// dirtied is appended to the log whole (4 KiB for a 300-byte row) and later copied back by the
/// checkpoint. Writes that arrive while a transaction runs wait for it, then run together in
/// the next one, each inside a savepoint of its own: one write's failure (a unique or foreign
/// key violation, a failed expectation) rolls back that write alone and fails only its caller,
/// and the others commit. Pages that several writes touch — the table's last leaf, the outbox's
/// last leaf — are written once per group instead of once per write. Nobody is answered before
/// the group's COMMIT, so an acknowledged write is as durable as before. A queued write is not
/// cancelled with its caller's task: once handed to the writer it commits or fails as a whole
/// (its caller, if gone, is simply not answered).
final class WriteGroups: Sendable {
    struct Pending: Sendable {
        var statements: [SQLStatement]
        var finish: (@Sendable ([[SQLRow]]) throws -> [SQLStatement])?
        var reply: CheckedContinuation<[[SQLRow]], any Error>
    }

    /// Writes waiting for the next group, and whether a group is being committed now.
    let state = Mutex<(waiting: [Pending], committing: Bool)>(([], false))
    /// A bound on one transaction's size (and so on how long the writer is held: a few
    /// milliseconds at this size). 64 left a quarter of the writes of 256 concurrent callers to
    /// a fourth commit: creates at 256 connections 9,900 → 12,800 req/s with 256.
    static let maxGroup = 256

    /// Queues `p`; true when the caller must start committing (no group is under way).
    func enqueue(_ p: Pending) -> Bool {
        state.withLock { s in
            s.waiting.append(p)
            if s.committing { return false }
            s.committing = true
            return true
        }
    }

    /// Writes waiting for the next group.
    var waitingCount: Int { state.withLock { $0.waiting.count } }

    /// Whether writes are queued or being committed (`close` waits for them).
    var busy: Bool { state.withLock { $0.committing } }

    /// The next group, oldest first; empty (and committing over) when none is waiting.
    func next() -> [Pending] {
        state.withLock { s in
            let n = min(s.waiting.count, Self.maxGroup)
            let group = Array(s.waiting.prefix(n))
            s.waiting.removeFirst(n)
            if group.isEmpty { s.committing = false }
            return group
        }
    }
}

/// SQLite rolled the whole transaction back on its own (a full disk, an I/O error) while the
/// write at `index` ran: the writes before it are undone too.
struct GroupRolledBack: Error {
    var index: Int
    var underlying: any Error
}

extension SQLiteStore {
    /// How many times the drain yields, at most, to let a group grow (see `commitGroups`).
    static let gatherYields = 3

    func writeGrouped(_ statements: [SQLStatement], finish: (@Sendable ([[SQLRow]]) throws -> [SQLStatement])?) async throws -> [[SQLRow]] {
        try await withCheckedThrowingContinuation { reply in
            if groups.enqueue(.init(statements: statements, finish: finish, reply: reply)) {
                // Detached: the drain must not run at the first caller's priority or under its
                // task-locals for the groups of everyone after it.
                Task.detached { await self.commitGroups() }
            }
        }
    }

    /// Commits groups until none is waiting.
    ///
    /// Before taking a group it yields while the queue still grows (at most `gatherYields`
    /// times): writers whose requests are being parsed or planned right now join this group
    /// instead of waiting for the next commit. At 32 concurrent creates on one core this took
    /// groups from 17 to 22 writes and creates from 4,650 to 4,800–4,990 req/s (one commit
    /// pays for its shared pages, its log header and SQLite's page-cache bookkeeping, whatever
    /// its size). A lone write pays one yield; under a saturated pool a yield waits behind the
    /// queued tasks, which is why it stops as soon as nobody joined.
    func commitGroups() async {
        while true {
            var seen = groups.waitingCount
            for _ in 0..<Self.gatherYields {
                await Task.yield()
                let now = groups.waitingCount
                if now == seen || now >= WriteGroups.maxGroup { break }
                seen = now
            }
            let group = groups.next()
            if group.isEmpty { return }
            await commit(group)
        }
    }

    func commit(_ group: [WriteGroups.Pending]) async {
        let outcomes: [Result<[[SQLRow]], any Error>]
        do {
            outcomes = try await pool.write { db in
                var outcomes: [Result<[[SQLRow]], any Error>] = []
                outcomes.reserveCapacity(group.count)
                for (index, p) in group.enumerated() {
                    try db.cachedStatement(sql: "SAVEPOINT basalt_write").execute()
                    do {
                        let rows = try Self.run(p.statements, finish: p.finish, db)
                        // A deferred foreign key would otherwise fail the whole group at COMMIT.
                        if Self.hasDeferredViolations(db) {
                            throw StoreError.foreignKeyViolation(tag: p.statements.last?.tag ?? 0, underlying: "FOREIGN KEY constraint failed")
                        }
                        try db.cachedStatement(sql: "RELEASE SAVEPOINT basalt_write").execute()
                        outcomes.append(.success(rows))
                    } catch {
                        guard db.isInsideTransaction else { throw GroupRolledBack(index: index, underlying: error) }
                        try db.cachedStatement(sql: "ROLLBACK TO SAVEPOINT basalt_write").execute()
                        try db.cachedStatement(sql: "RELEASE SAVEPOINT basalt_write").execute()
                        outcomes.append(.failure(error))
                    }
                }
                return outcomes
            }
        } catch let e as GroupRolledBack {
            // The write that failed fails; the others, undone with it, are tried again without it.
            let culprit = group[e.index]
            culprit.reply.resume(throwing: Self.storeError(e.underlying, tag: culprit.statements.last?.tag ?? 0))
            var rest = group
            rest.remove(at: e.index)
            if !rest.isEmpty { await commit(rest) }
            return
        } catch {
            // BEGIN or COMMIT failed (the lock held past its timeout, a full disk): nothing of the
            // group was written.
            for p in group { p.reply.resume(throwing: Self.storeError(error, tag: p.statements.last?.tag ?? 0)) }
            return
        }
        if outcomes.contains(where: { if case .success = $0 { true } else { false } }) { commits.bump() }
        for (p, outcome) in zip(group, outcomes) {
            switch outcome {
            case .success(let rows): p.reply.resume(returning: rows)
            case .failure(let error): p.reply.resume(throwing: Self.storeError(error, tag: p.statements.last?.tag ?? 0))
            }
        }
    }

    /// One write's statements, then its `finish` statements, in order.
    static func run(_ statements: [SQLStatement], finish: (@Sendable ([[SQLRow]]) throws -> [SQLStatement])?, _ db: Database) throws -> [[SQLRow]] {
        var out: [[SQLRow]] = []
        out.reserveCapacity(statements.count)
        func runAll(_ list: [SQLStatement], from offset: Int) throws {
            for (i, s) in list.enumerated() {
                do {
                    out.append(try run(s, index: offset + i, db))
                } catch let e as StoreError {
                    throw e
                } catch {
                    throw translate(error, tag: s.tag)
                }
            }
        }
        try runAll(statements, from: 0)
        if let finish { try runAll(try finish(out), from: statements.count) }
        return out
    }

    static func storeError(_ error: any Error, tag: Int) -> any Error {
        error is StoreError ? error : translate(error, tag: tag)
    }

    /// Whether the transaction holds foreign key violations that SQLite would report at COMMIT.
    static func hasDeferredViolations(_ db: Database) -> Bool {
        var current: Int32 = 0
        var highest: Int32 = 0
        sqlite3_db_status(db.sqliteConnection, SQLITE_DBSTATUS_DEFERRED_FKS, &current, &highest, 0)
        return current > 0
    }
}
