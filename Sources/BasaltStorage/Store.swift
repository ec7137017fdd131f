public import BasaltCore

/// One statement of a write transaction, with what it must affect.
public struct SQLStatement: Sendable {
    public enum Expectation: Sendable, Equatable {
        /// Anything goes.
        case any
        /// Exactly one row changed (or returned), else the transaction rolls back with
        /// `StoreError.expectationFailed(statement:)`. Optimistic concurrency rides on this.
        case one
    }
    public var query: SQLQuery
    /// Column types of a `RETURNING` clause (empty: nothing returned).
    public var returning: [SQLColumnType]
    public var expect: Expectation
    /// Which caller-level operation this belongs to (batch `operation_index`).
    public var tag: Int

    public init(_ query: SQLQuery, returning: [SQLColumnType] = [], expect: Expectation = .any, tag: Int = 0) {
        self.query = query
        self.returning = returning
        self.expect = expect
        self.tag = tag
    }
}

public typealias SQLRow = [SQLValue]

/// Errors a backend translates its driver's errors into. The original stays in `underlying`
/// for logs; nothing of it reaches a client.
public enum StoreError: Error, Sendable {
    /// A unique constraint failed; `table` and `columns` name it when the driver says so.
    case uniqueViolation(table: String?, columns: [String], tag: Int, underlying: String)
    case foreignKeyViolation(tag: Int, underlying: String)
    case expectationFailed(statement: Int, tag: Int)
    case unavailable(underlying: String)
    case other(underlying: String)
}

/// A storage backend: SQLite or PostgreSQL. One call is one transaction; no connection is held
/// across calls.
public protocol Store: Sendable {
    var dialect: any SQLDialect { get }
    /// How many connections the store may hold open at once (its pool's size).
    var connectionLimit: Int { get }
    /// Raised after every committed `write`: the outbox may have grown.
    var commits: Beacon { get }
    /// A read-only query.
    func fetch(_ query: SQLQuery, types: [SQLColumnType]) async throws -> [SQLRow]
    /// Runs `statements` in order in one transaction and returns each one's returned rows.
    /// `finish`, when given, runs after the last of them, still inside the transaction, with
    /// their results; the statements it returns run and commit with the rest (an idempotency
    /// record holding the answer those results make). It must be quick and do no I/O.
    func write(_ statements: [SQLStatement], finish: (@Sendable ([[SQLRow]]) throws -> [SQLStatement])?) async throws -> [[SQLRow]]
    /// Like `write`, for upkeep no reader waits for (numbering the outbox): `commits` is not
    /// raised, so a reader that does the upkeep before it reads is not woken by its own write.
    func writeUnannounced(_ statements: [SQLStatement]) async throws
    /// Runs DDL and bookkeeping statements of a schema migration in one transaction.
    func migrate(_ statements: [SQLQuery]) async throws
    /// Keeps planner statistics current after large changes (SQLite `ANALYZE`; no-op elsewhere).
    func refreshStatistics(tables: [String]) async throws
    /// Frequent upkeep, called about once a second (SQLite: copy the WAL back into the database
    /// off the commit path). A no-op where the engine does it itself.
    func housekeep() async throws
    /// Whether the database answers.
    func ping() async -> Bool
    func close() async throws
}

extension Store {
    /// Runs `statements` in order in one transaction and returns each one's returned rows.
    @discardableResult
    public func write(_ statements: [SQLStatement]) async throws -> [[SQLRow]] {
        try await write(statements, finish: nil)
    }

    public func fetchOne(_ query: SQLQuery, types: [SQLColumnType]) async throws -> SQLRow? {
        try await fetch(query, types: types).first
    }
}

/// Backends that want to know how many rows were inserted or deleted, to keep planner
/// statistics fresh (they refresh them from `housekeep`).
public protocol StatisticsTracking: Sendable {
    func noteWrites(table: String, count: Int)
}

extension StoreError: BasaltErrorConvertible {
    /// What a storage failure means to a client, when no service knows better (a service that can
    /// name the field of a unique violation maps it itself).
    public var basaltError: BasaltError {
        switch self {
        case .unavailable:
            return .unavailable(self)
        case .uniqueViolation:
            return BasaltError(.conflict, "The change conflicts with an existing record", underlying: self)
        case .foreignKeyViolation:
            return BasaltError(.conflict, "The change conflicts with a related record", underlying: self)
        case .expectationFailed:
            return BasaltError(.conflict, "The data changed while the request ran; retry it", underlying: self)
        case .other:
            return BasaltError(.internalError, "An internal error occurred; quote the request id when reporting it", underlying: self)
        }
    }
}

/// Backends shared by several processes (PostgreSQL): `relayCommits` tells the others when this
/// process committed events and raises `commits` when one of them did, so their event hubs and
/// dispatchers read at once rather than at their next poll. Runs until cancelled.
public protocol CommitRelaying: Store {
    func relayCommits() async
}

/// One consistent, read-only view of the whole database, for reads that must agree with each
/// other (a backup): every table as of one moment while writers carry on.
public protocol Snapshot: Sendable {
    var dialect: any SQLDialect { get }
    /// Rows of `query`, handed to `row` one at a time without holding the whole result.
    func scan(_ query: SQLQuery, types: [SQLColumnType], row: @Sendable (SQLRow) throws -> Void) async throws
}

extension Snapshot {
    public func fetch(_ query: SQLQuery, types: [SQLColumnType]) async throws -> [SQLRow] {
        let rows = RowCollector()
        try await scan(query, types: types) { rows.append($0) }
        return rows.rows
    }
}

/// Collects rows handed to a `@Sendable` callback that runs synchronously in its caller.
final class RowCollector: @unchecked Sendable {
    var rows: [SQLRow] = []
    func append(_ r: SQLRow) { rows.append(r) }
}

/// Stores that can read from one snapshot: SQLite copies the database with its online backup API
/// (writers are never blocked for long) and reads the copy; PostgreSQL reads in one
/// `REPEATABLE READ` transaction.
public protocol Snapshotting: Store {
    func withSnapshot<T: Sendable>(_ body: @escaping @Sendable (any Snapshot) async throws -> T) async throws -> T
}
