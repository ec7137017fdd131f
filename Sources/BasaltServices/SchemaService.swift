public import BasaltCore
public import BasaltStorage
public import Logging
import Synchronization

/// Owns the current schema: loads it, plans and applies changes through the one migration
/// planner, and swaps the compiled value atomically. Requests read `current` once.
public final class SchemaService: Sendable {
    public let store: any Store
    let state: Mutex<CompiledSchema>
    /// Serializes schema changes within this process (PostgreSQL also takes an advisory lock).
    let changing = AsyncLock()
    let logger: Logger

    public init(store: any Store, logger: Logger) async throws {
        self.store = store
        self.logger = logger
        let stored = try await SchemaRepository(store: store).load()
        state = Mutex(try CompiledSchema(schema: stored.schema, version: stored.version, dialect: store.dialect))
        // A new database (or one from before the built-in collections) gets them now.
        if try stored.schema.withBuiltins() != stored.schema {
            _ = try await apply(stored.schema, allowDestructive: false, source: "builtin")
        }
        // Collections made before the outbox get its triggers (a no-op where they exist).
        // A plain write, not `migrate`: SQLite's migrations end with a whole-database foreign key check.
        let triggers = current.schema.collections.flatMap(store.dialect.eventTriggers).map { SQLStatement(SQLQuery(sql: $0)) }
        if !triggers.isEmpty { try await store.write(triggers) }
    }

    public var current: CompiledSchema { state.withLock { $0 } }

    public struct Result: Sendable {
        public var plan: MigrationPlan
        public var applied: Bool
        public var version: Int64
    }

    /// Plans `wanted` against the live schema; applies it unless `dryRun`. A destructive plan
    /// without `allowDestructive` is refused with `409` before anything changes.
    public func apply(_ wanted: Schema, allowDestructive: Bool, dryRun: Bool = false, source: String) async throws -> Result {
        let wanted = try wanted.withBuiltins()
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await applyOnce(wanted, allowDestructive: allowDestructive, dryRun: dryRun, source: source)
            } catch let e as StoreError where attempt < 3 {
                // Another replica changed the schema between our read and our migration (two
                // processes starting on a new database both add the built-in collections): the
                // plan was made from a stale version. Plan again from the one now stored.
                guard try await SchemaRepository(store: store).load().version != current.version || attempt == 1 else { throw e }
                logger.info("schema changed concurrently; planning again", metadata: ["error": "\(e)"])
            }
        }
    }

    func applyOnce(_ wanted: Schema, allowDestructive: Bool, dryRun: Bool, source: String) async throws -> Result {
        try await changing.withLock {
            let repo = SchemaRepository(store: store)
            let stored = try await repo.load()
            // Validate and compile first: bad references or rules are a 422 before any DDL runs.
            try wanted.validate()
            _ = try CompiledSchema(schema: wanted, version: stored.version + 1, dialect: store.dialect)
            let plan = try await MigrationPlanner(store: store).plan(from: stored.schema, to: wanted)
            if dryRun || plan.isEmpty {
                if !dryRun && stored.version != current.version { try await reload() }
                return Result(plan: plan, applied: false, version: stored.version)
            }
            if plan.isDestructive && !allowDestructive { throw plan.destructiveRefusal }
            let version = try await repo.apply(plan, fromVersion: stored.version, source: source)
            let compiled = try CompiledSchema(schema: wanted, version: version, dialect: store.dialect)
            state.withLock { $0 = compiled }
            logger.info("schema applied", metadata: ["schema.version": "\(version)", "schema.steps": "\(plan.steps.count)"])
            return Result(plan: plan, applied: true, version: version)
        }
    }

    /// Re-reads the stored schema (another replica may have changed it).
    public func reload() async throws {
        let stored = try await SchemaRepository(store: store).load()
        let compiled = try CompiledSchema(schema: stored.schema, version: stored.version, dialect: store.dialect)
        state.withLock { $0 = compiled }
    }

    struct StoredVersion: StoredRow {
        static let columns: [SQLColumnType] = [.int]
        var version: Int64?
        init(_ r: inout RowReader) { version = r.int() }
    }

    /// Reloads when the stored version differs from the one in memory; returns whether it did.
    @discardableResult
    public func reloadIfChanged() async throws -> Bool {
        let sql: SQL = "SELECT \"version\" FROM \"_basalt_schema\" WHERE \"id\" = 1"
        let stored = try await store.fetchOne(sql, as: StoredVersion.self)?.version ?? 0
        guard stored != current.version else { return false }
        try await changing.withLock { try await self.reload() }
        logger.info("schema reloaded", metadata: ["schema.version": "\(stored)"])
        return true
    }

    public func history() async throws -> [SchemaRepository.HistoryEntry] {
        try await SchemaRepository(store: store).history()
    }
}

/// A FIFO async mutex for rare, long operations (schema changes).
public actor AsyncLock {
    var locked = false
    var waiters: [CheckedContinuation<Void, Never>] = []
    public init() {}

    public func withLock<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        if locked {
            await withCheckedContinuation { waiters.append($0) }
        }
        locked = true
        defer {
            if waiters.isEmpty { locked = false } else { waiters.removeFirst().resume() }
        }
        return try await body()
    }
}
