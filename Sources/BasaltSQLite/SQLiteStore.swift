import BasaltCore
public import BasaltStorage
public import BasaltTelemetry
import Foundation
internal import GRDB
internal import GRDBSQLite
public import Logging
import Synchronization

/// The embedded default: one SQLite file in WAL mode, one writer and a pool of readers (GRDB
/// `DatabasePool`). Every call goes through GRDB's async API, so no NIO event loop or Swift
/// concurrency thread ever waits on SQLite.
public final class SQLiteStore: Store, StatisticsTracking {
    public let dialect: any SQLDialect = SQLiteDialect()
    public let commits = Beacon()
    let pool: DatabasePool
    /// Writes waiting to commit together (see `SQLiteStore+GroupCommit.swift`).
    let groups = WriteGroups()
    /// A connection of its own for WAL checkpoints (see `housekeep`).
    let checkpointer: DatabaseQueue
    /// Connections for reads on the calling thread (see `SQLiteStore+DirectReads.swift`).
    let direct: DirectReaders
    let logger: Logger
    static let readerCount = max(2, ProcessInfo.processInfo.activeProcessorCount * 2)
    /// Readers and the one writer.
    public var connectionLimit: Int { Self.readerCount + 1 }
    /// Where database calls are timed (`GET /metrics`); nil: not measured.
    public let metrics: Metrics?
    /// Writes per table since its statistics were last refreshed (see `noteWrites`).
    let writesSinceAnalyze = Mutex<[String: Int]>([:])
    let rowsAtAnalyze = Mutex<[String: Int64]>([:])
    let dueTables = Mutex<Set<String>>([])
    let ticks = Mutex(0)
    /// The WAL size above which checkpoints escalate (see `checkpoint()`).
    public let walTargetBytes: Int64
    let walPath: String
    let wal = Mutex(WALStatus())

    /// Durability: `normal` survives a process crash (WAL); `full` also survives power loss.
    public enum Synchronous: String, Sendable {
        case normal = "NORMAL"
        case full = "FULL"
    }

    /// Opens (creating if needed) `directory/data.db` and applies Basalt's own migrations.
    /// - `walTargetBytes`: the size the write-ahead log is kept near under load (see `checkpoint()`).
    /// - `cacheBytes`: the page cache of each connection (readers and the writer).
    public init(
        directory: String,
        synchronous: Synchronous = .normal,
        busyTimeout: Duration = .seconds(5),
        walTargetBytes: Int64 = 32 << 20,
        cacheBytes: Int64 = 32 << 20,
        metrics: Metrics? = nil,
        logger: Logger
    ) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // A read-only folder or file system would fail deep inside SQLite; say it plainly instead.
        if access(directory, W_OK) != 0, errno == EROFS || errno == EACCES {
            throw BasaltError(.unavailable, "the data folder \(directory) is read-only: Basalt must be able to write its database there")
        }
        var config = Configuration()
        config.foreignKeysEnabled = true
        // Another process holding the write lock longer than this (a `basalt schema apply` from a
        // shell, a backup) makes a write a `503`, not a hang.
        config.busyMode = .callback(Self.retryEveryMillisecond(for: busyTimeout))
        config.maximumReaderCount = Self.readerCount
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous.rawValue)")
            try db.execute(sql: "PRAGMA cache_size = -\(max(1, cacheBytes >> 10))")
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
            // Checkpoints run from `housekeep` on their own connection: SQLite's automatic one
            // runs inside a committing write and syncs the database file there, which stalled
            // every writer behind it (patch p99 over a second in the benchmark).
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
            // When a writer restarts the log from its beginning, the file shrinks back to this.
            try db.execute(sql: "PRAGMA journal_size_limit = \(walTargetBytes)")
            // SQLite's lower() folds ASCII only; `~` must fold like PostgreSQL's ICU lower().
            db.add(
                function: DatabaseFunction("basalt_lower", argumentCount: 1, pure: true) { values in
                    guard let s = String.fromDatabaseValue(values[0]) else { return nil }
                    return CaseFolding.simpleLowercase(s)
                }
            )
        }
        self.pool = try DatabasePool(path: directory + "/data.db", configuration: config)
        self.direct = DirectReaders(path: directory + "/data.db", configuration: config, limit: Self.readerCount)
        var checkpointConfig = Configuration()
        // An escalated checkpoint waits at most this long for the write lock and old readers,
        // polling as finely as the writers do (coarser sleeps would lose every race to them).
        checkpointConfig.busyMode = .callback(Self.retryEveryMillisecond(for: .milliseconds(Int(Self.escalatedWait * 1000))))
        self.checkpointer = try DatabaseQueue(path: directory + "/data.db", configuration: checkpointConfig)
        self.logger = logger
        self.metrics = metrics
        self.walTargetBytes = walTargetBytes
        self.walPath = directory + "/data.db-wal"
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS \"\(InternalTables.historyTable)\" (\"name\" TEXT PRIMARY KEY NOT NULL)")
            for m in InternalTables.migrations {
                let done = try Bool.fetchOne(db, sql: "SELECT 1 FROM \"\(InternalTables.historyTable)\" WHERE name = ?", arguments: [m.name]) ?? false
                if done { continue }
                try db.inTransaction {
                    for s in m.sqlite { try db.execute(sql: s) }
                    try db.execute(sql: "INSERT INTO \"\(InternalTables.historyTable)\" (name) VALUES (?)", arguments: [m.name])
                    return .commit
                }
            }
        }
        try analyzeAll()
    }

    public func fetch(_ query: SQLQuery, types: [SQLColumnType]) async throws -> [SQLRow] {
        guard Trace.databaseSpans else { return try await fetchMeasured(query, types: types) }
        return try await Trace.database("sqlite", "read", query.sql) { try await fetchMeasured(query, types: types) }
    }

    func fetchMeasured(_ query: SQLQuery, types: [SQLColumnType]) async throws -> [SQLRow] {
        guard let metrics else { return try await fetchUnmeasured(query, types: types) }
        let start = metrics.operationStarted(.read)
        defer { metrics.operationFinished(.read, since: start) }
        return try await fetchUnmeasured(query, types: types)
    }

    /// On the calling thread when that is quick (see `DirectReaders`), else on a reader's queue.
    func fetchUnmeasured(_ query: SQLQuery, types: [SQLColumnType]) async throws -> [SQLRow] {
        do {
            if let rows = try direct.rows(query, types) {
                // Still a point where other tasks run: a task reading many times in a row must
                // not hold the thread from every request queued behind it.
                await Task.yield()
                return rows
            }
            return try await pool.read { db in try Self.rows(db, query, types) }
        } catch {
            throw Self.translate(error, tag: 0)
        }
    }

    static func rows(_ db: Database, _ query: SQLQuery, _ types: [SQLColumnType]) throws -> [SQLRow] {
        let stmt = try db.cachedStatement(sql: query.sql)
        // SQLite counts a statement's steps across its runs, and the progress handler fires each
        // time the count passes a multiple of the budget: without a reset, every 20th run of a
        // cheap cached statement was "over budget" and went the slow way (see `DirectReaders`).
        sqlite3_stmt_status(stmt.sqliteStatement, SQLITE_STMTSTATUS_VM_STEP, 1)
        try stmt.setArguments(arguments(query.binds))
        var rows: [SQLRow] = []
        let cursor = try Row.fetchCursor(stmt)
        while let row = try cursor.next() { rows.append(decode(row, types)) }
        return rows
    }

    /// Nothing here needs it (SQLite numbers events as it inserts them): a plain write.
    public func writeUnannounced(_ statements: [SQLStatement]) async throws {
        try await write(statements)
    }

    public func write(_ statements: [SQLStatement], finish: (@Sendable ([[SQLRow]]) throws -> [SQLStatement])?) async throws -> [[SQLRow]] {
        guard Trace.databaseSpans else { return try await writeMeasured(statements, finish: finish) }
        return try await Trace.database("sqlite", "write", statements.map(\.query.sql).joined(separator: ";\n")) {
            try await writeMeasured(statements, finish: finish)
        }
    }

    func writeMeasured(_ statements: [SQLStatement], finish: (@Sendable ([[SQLRow]]) throws -> [SQLStatement])?) async throws -> [[SQLRow]] {
        guard let metrics else { return try await writeGrouped(statements, finish: finish) }
        let start = metrics.operationStarted(.write)
        defer { metrics.operationFinished(.write, since: start) }
        return try await writeGrouped(statements, finish: finish)
    }

    static func run(_ s: SQLStatement, index i: Int, _ db: Database) throws -> [SQLRow] {
        let stmt = try db.cachedStatement(sql: s.query.sql)
        try stmt.setArguments(arguments(s.query.binds))
        var rows: [SQLRow] = []
        if s.returning.isEmpty {
            try stmt.execute()
            if s.expect == .one, db.changesCount != 1 {
                throw StoreError.expectationFailed(statement: i, tag: s.tag)
            }
        } else {
            let cursor = try Row.fetchCursor(stmt)
            while let row = try cursor.next() { rows.append(decode(row, s.returning)) }
            if s.expect == .one, rows.count != 1 {
                throw StoreError.expectationFailed(statement: i, tag: s.tag)
            }
        }
        return rows
    }

    public func migrate(_ statements: [SQLQuery]) async throws {
        try await Trace.database("sqlite", "migrate", statements.map(\.sql).joined(separator: ";\n")) {
            let start = metrics?.operationStarted(.migrate)
            defer { if let start { metrics?.operationFinished(.migrate, since: start) } }
            try await migrateUnmeasured(statements)
        }
    }

    func migrateUnmeasured(_ statements: [SQLQuery]) async throws {
        do {
            try await pool.writeWithoutTransaction { db in
                // Table rebuilds must not fire ON DELETE actions or rewrite references: the
                // documented SQLite procedure runs them with foreign keys off, then checks.
                try db.execute(sql: "PRAGMA foreign_keys = OFF")
                defer { try? db.execute(sql: "PRAGMA foreign_keys = ON") }
                try db.inTransaction {
                    for s in statements {
                        let stmt = try db.makeStatement(sql: s.sql)
                        try stmt.setArguments(Self.arguments(s.binds))
                        try stmt.execute()
                    }
                    if try Row.fetchOne(db, sql: "PRAGMA foreign_key_check") != nil {
                        throw StoreError.other(underlying: "foreign key check failed after migration")
                    }
                    return .commit
                }
            }
        } catch let e as StoreError {
            throw e
        } catch {
            throw Self.translate(error, tag: 0)
        }
        try analyzeAll()
    }

    /// Keeps planner statistics current without anyone's help. Without them SQLite answers
    /// `status = 'published' && views > 500 ORDER BY views DESC` through the status index and
    /// sorts every match; with them it walks the views index and stops after a page.
    /// Sampled statistics (`analysis_limit`) are not enough: a sample of N rows caps every
    /// value's estimated frequency at N, so a two-valued `status` looks selective. Tables up to
    /// `exactAnalyzeRows` are analyzed exactly (about 50 ms per 100,000 rows here); larger ones
    /// with a sample that large.
    public func refreshStatistics(tables: [String]) async throws {
        for t in tables {
            let n = try await fetchOne(SQLQuery(sql: "SELECT COUNT(*) FROM \(dialect.quote(t))"), types: [.int])?.first?.int ?? 0
            let quoted = dialect.quote(t)
            try await pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA analysis_limit = \(n <= Self.exactAnalyzeRows ? 0 : Self.exactAnalyzeRows)")
                try db.execute(sql: "ANALYZE \(quoted)")
            }
            rowsAtAnalyze.withLock { $0[t] = n }
            writesSinceAnalyze.withLock { $0[t] = 0 }
        }
        plannersMustReload()
    }

    /// SQLite loads planner statistics with the schema, once per connection, and ANALYZE on the
    /// writer does not change the schema cookie: reader connections kept planning with the
    /// statistics they opened with (an empty table's, after a bulk load), and a filtered, sorted
    /// list ran through the wrong index and sorted every match — 31 instead of thousands of
    /// lists a second on 100,000 rows. New statistics therefore retire the readers; the next
    /// reads open connections that load them.
    func plannersMustReload() {
        pool.invalidateReadOnlyConnections()
        direct.retire()
    }

    static let exactAnalyzeRows: Int64 = 2_000_000

    /// Counts inserted and deleted rows; once they reach the row count seen by the last ANALYZE
    /// (the table doubled or was rewritten, and at least 1000), the table's statistics are due and
    /// the next `housekeep` tick refreshes them — never inside a request. Plans depend on the shape
    /// of the data, not its exact size, and an exact ANALYZE holds the write lock while it runs.
    public func noteWrites(table: String, count: Int) {
        let base = rowsAtAnalyze.withLock { $0[table] ?? 0 }
        writesSinceAnalyze.withLock {
            let n = ($0[table] ?? 0) + count
            $0[table] = n
            if n >= max(1000, Int(base)) { _ = dueTables.withLock { $0.insert(table) } }
        }
    }

    func analyzeAll() throws {
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA analysis_limit = \(Self.exactAnalyzeRows)")
            try db.execute(sql: "ANALYZE")
            let tables = try String.fetchAll(
                db,
                sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_basalt%' ESCAPE '\\'"
            )
            for t in tables {
                let n = try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM \"\(t.replacingOccurrences(of: "\"", with: "\"\""))\"") ?? 0
                rowsAtAnalyze.withLock { $0[t] = n }
            }
        }
        writesSinceAnalyze.withLock { $0 = [:] }
        plannersMustReload()
    }

    /// Frequent upkeep: a checkpoint (see `checkpoint()`), planner statistics that are due, and
    /// SQLite's own `PRAGMA optimize` every ten minutes.
    public func housekeep() async throws {
        try await checkpoint()
        let due = dueTables.withLock { d -> [String] in
            defer { d.removeAll() }
            return Array(d)
        }
        if !due.isEmpty { try await refreshStatistics(tables: due) }
        // On a schedule too: SQLite's own heuristic, cheap when nothing changed.
        if ticks.withLock({
            $0 += 1
            return $0 % 600 == 0
        }) {
            try await pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA optimize") }
            plannersMustReload()
        }
    }

    public func ping() async -> Bool {
        (try? await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }) == 1
    }

    public func close() async throws {
        // Writes already queued commit (or fail) before the connections close.
        while groups.busy { try? await Task.sleep(for: .milliseconds(1)) }
        direct.close()
        try? await pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA optimize") }
        try? await checkpointer.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
        try checkpointer.close()
        try pool.close()
    }

    /// A consistent online copy of the database (SQLite backup API).
    public func backup(to path: String) throws {
        let dest = try DatabaseQueue(path: path)
        try pool.backup(to: dest)
        try dest.close()
    }

    // MARK: - Values

    static func arguments(_ binds: [SQLValue]) -> StatementArguments {
        StatementArguments(
            binds.map { v -> (any DatabaseValueConvertible)? in
                switch v {
                case .null: return nil
                case .int(let i): return i
                case .double(let d): return d
                case .text(let s), .uuid(let s), .json(let s): return s
                case .bool(let b): return b ? Int64(1) : Int64(0)
                case .timestamp(let t): return t.rfc3339
                }
            }
        )
    }

    static func decode(_ row: Row, _ types: [SQLColumnType]) -> SQLRow {
        var out = SQLRow()
        out.reserveCapacity(types.count)
        for (i, t) in types.enumerated() {
            let dbv: DatabaseValue = row[i]
            switch (dbv.storage, t) {
            case (.null, _): out.append(.null)
            case (.int64(let v), .bool): out.append(.bool(v != 0))
            case (.int64(let v), .double): out.append(.double(Double(v)))
            case (.int64(let v), _): out.append(.int(v))
            case (.double(let d), .int): out.append(.int(Int64(d)))
            case (.double(let d), _): out.append(.double(d))
            case (.string(let s), .timestamp): out.append(Timestamp(rfc3339: s).map { .timestamp($0) } ?? .null)
            case (.string(let s), .uuid): out.append(.uuid(s))
            case (.string(let s), .json): out.append(.json(s))
            case (.string(let s), _): out.append(.text(s))
            case (.blob, _): out.append(.null)
            }
        }
        return out
    }

    static func translate(_ error: any Error, tag: Int) -> any Error {
        guard let e = error as? DatabaseError else { return StoreError.other(underlying: String(reflecting: error)) }
        let message = e.message ?? ""
        switch e.extendedResultCode {
        case .SQLITE_CONSTRAINT_UNIQUE, .SQLITE_CONSTRAINT_PRIMARYKEY:
            // "UNIQUE constraint failed: posts.title" or "…: index 'bx_…'"
            var table: String?
            var columns: [String] = []
            if let r = message.range(of: "failed: ") {
                let rest = message[r.upperBound...]
                if rest.hasPrefix("index '") {
                    columns = [String(rest.dropFirst(7).dropLast())]
                    table = nil
                } else {
                    for part in rest.split(separator: ",") {
                        let p = part.trimmingCharacters(in: .whitespaces).split(separator: ".", maxSplits: 1)
                        if p.count == 2 {
                            table = String(p[0])
                            columns.append(String(p[1]))
                        }
                    }
                }
            }
            return StoreError.uniqueViolation(table: table, columns: columns, tag: tag, underlying: message)
        case .SQLITE_CONSTRAINT_FOREIGNKEY:
            return StoreError.foreignKeyViolation(tag: tag, underlying: message)
        default:
            // A full disk, a read-only file or file system, a lock held too long: the database
            // cannot take the write now. The transaction rolled back; nothing acknowledged is lost.
            if [.SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_CANTOPEN, .SQLITE_FULL, .SQLITE_IOERR, .SQLITE_READONLY, .SQLITE_PROTOCOL]
                .contains(e.resultCode)
            {
                return StoreError.unavailable(underlying: String(describing: e))
            }
            return StoreError.other(underlying: String(describing: e))
        }
    }
}
