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
/// the group's COMMIT, so an acknowledged write is as durable as before.
final class WriteGroups: Sendable {
    struct Pending: Sendable {
        var statements: [SQLStatement]
        var finish: (@Sendable ([[SQLRow]]) throws -> [SQLStatement])?
        var reply: CheckedContinuation<[[SQLRow]], any Error>
    }

    /// Writes waiting for the next group, and whether a group is being committed now.
    let state = Mutex<(waiting: [Pending], committing: Bool)>(([], false))
    /// A bound on one transaction's size (and so on how long the writer is held).
    static let maxGroup = 64

    /// Queues `p`; true when the caller must start committing (no group is under way).
    func enqueue(_ p: Pending) -> Bool {
        state.withLock { s in
            s.waiting.append(p)
            if s.committing { return false }
            s.committing = true
            return true
        }
    }

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

/// SQLite rolled the whole transaction back on its own (a full disk, an I/O error): the writes
/// before the failing one are undone too, so every write of the group fails.
struct GroupRolledBack: Error {
    var underlying: any Error
}

extension SQLiteStore {
    func writeGrouped(_ statements: [SQLStatement], finish: (@Sendable ([[SQLRow]]) throws -> [SQLStatement])?) async throws -> [[SQLRow]] {
        try await withCheckedThrowingContinuation { reply in
            if groups.enqueue(.init(statements: statements, finish: finish, reply: reply)) {
                Task { await commitGroups() }
            }
        }
    }

    /// Commits groups until none is waiting.
    func commitGroups() async {
        while true {
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
                for p in group {
                    try db.execute(sql: "SAVEPOINT basalt_write")
                    do {
                        let rows = try Self.run(p.statements, finish: p.finish, db)
                        // A deferred foreign key would otherwise fail the whole group at COMMIT.
                        if Self.hasDeferredViolations(db) {
                            throw StoreError.foreignKeyViolation(tag: p.statements.last?.tag ?? 0, underlying: "FOREIGN KEY constraint failed")
                        }
                        try db.execute(sql: "RELEASE SAVEPOINT basalt_write")
                        outcomes.append(.success(rows))
                    } catch {
                        guard db.isInsideTransaction else { throw GroupRolledBack(underlying: error) }
                        try db.execute(sql: "ROLLBACK TO SAVEPOINT basalt_write")
                        try db.execute(sql: "RELEASE SAVEPOINT basalt_write")
                        outcomes.append(.failure(error))
                    }
                }
                return outcomes
            }
        } catch {
            // BEGIN or COMMIT failed (the lock held past its timeout, a full disk): nothing of the
            // group was written.
            let cause = (error as? GroupRolledBack)?.underlying ?? error
            for p in group { p.reply.resume(throwing: Self.storeError(cause, tag: p.statements.last?.tag ?? 0)) }
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
