import BasaltStorage
internal import GRDB
internal import GRDBSQLite
import Synchronization

/// Reads on the calling thread. A read through GRDB's async API is a job for a reader's dispatch
/// queue and another to resume the caller: two thread switches around a statement that takes
/// SQLite a few microseconds for a record by id or a page of a list, and on a two-core machine
/// the switches cost more than the read (a GET by id: 7,400 → 10,300 requests a second without
/// them). A read instead borrows a connection of its own and runs on the thread that asked.
///
/// That thread belongs to Swift's cooperative pool, which must not be held long, so nothing here
/// ever waits and no statement runs for long: with no connection free (all borrowed by other
/// threads), when SQLite answers busy (a checkpoint resetting the log), or once a statement has
/// run `stepBudget` virtual-machine steps (SQLite's progress handler interrupts it: a scan, a
/// count over many rows), the read goes GRDB's async way instead, from the start. A page of 20
/// through an index takes about 500 steps, a record by id 17; a count over 50,000 rows 270,000.
/// Each statement runs in autocommit: its own read transaction, on the latest commit.
final class DirectReaders: Sendable {
    struct Connection: Sendable {
        let queue: DatabaseQueue
        /// The statistics generation it opened with (see `retire`).
        let generation: Int
    }

    struct State {
        var idle: [Connection] = []
        var open = 0
        var generation = 0
        var closed = false
    }

    /// About half a millisecond of SQLite's work; the interrupted statement's steps are wasted.
    static let stepBudget: Int32 = 10_000

    let state = Mutex(State())
    let path: String
    let configuration: Configuration
    let limit: Int

    init(path: String, configuration: Configuration, limit: Int) {
        var c = configuration
        c.readonly = true
        // Busy means "go the async way", never "wait here".
        c.busyMode = .immediateError
        c.prepareDatabase { db in
            // Any non-zero answer interrupts the statement (SQLITE_INTERRUPT): over budget.
            sqlite3_progress_handler(db.sqliteConnection, Self.stepBudget, { _ in 1 }, nil)
        }
        self.path = path
        self.configuration = c
        self.limit = limit
    }

    /// The rows of `query`, read on this thread; nil when no connection is free, SQLite is busy
    /// or the budget ran out (the caller then reads the async way). Other errors are thrown.
    func rows(_ query: SQLQuery, _ types: [SQLColumnType]) throws -> [SQLRow]? {
        guard let connection = try borrow() else { return nil }
        var keep = true
        defer { giveBack(connection, keep: keep) }
        do {
            return try connection.queue.inDatabase { db in try SQLiteStore.rows(db, query, types) }
        } catch let e as DatabaseError where [.SQLITE_INTERRUPT, .SQLITE_BUSY, .SQLITE_LOCKED].contains(e.resultCode) {
            return nil
        } catch {
            // A connection that failed otherwise is not trusted again.
            keep = false
            throw error
        }
    }

    /// Connections open now (borrowed or idle).
    var openCount: Int { state.withLock { $0.open } }

    func borrow() throws -> Connection? {
        enum Next {
            case use(Connection)
            case open(generation: Int)
            case none
        }
        let next = state.withLock { s -> Next in
            if s.closed { return .none }
            if let c = s.idle.popLast() { return .use(c) }
            guard s.open < limit else { return .none }
            s.open += 1
            return .open(generation: s.generation)
        }
        switch next {
        case .use(let c): return c
        case .none: return nil
        case .open(let generation):
            do {
                return Connection(queue: try DatabaseQueue(path: path, configuration: configuration), generation: generation)
            } catch {
                state.withLock { $0.open -= 1 }
                throw error
            }
        }
    }

    func giveBack(_ c: Connection, keep: Bool) {
        let drop = state.withLock { s -> Bool in
            if keep, !s.closed, c.generation == s.generation {
                s.idle.append(c)
                return false
            }
            s.open -= 1
            return true
        }
        if drop { try? c.queue.close() }
    }

    /// New planner statistics: connections opened before them are closed as they come back, so
    /// the next lookups plan with the new ones (see `SQLiteStore.plannersMustReload`).
    func retire() {
        let stale = state.withLock { s -> [Connection] in
            s.generation += 1
            s.open -= s.idle.count
            defer { s.idle.removeAll() }
            return s.idle
        }
        for c in stale { try? c.queue.close() }
    }

    /// No lookup opens or keeps a connection after this.
    func close() {
        state.withLock { $0.closed = true }
        retire()
    }
}
