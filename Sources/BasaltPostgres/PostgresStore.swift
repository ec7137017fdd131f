import BasaltCore
public import BasaltStorage
public import BasaltTelemetry
import Foundation
public import Logging
public import PostgresNIO
public import ServiceLifecycle
import Synchronization

/// The scale-out backend: a PostgresNIO `PostgresClient` pool. Every call leases a connection for
/// itself only; no connection is held across calls.
///
/// The client only works while its `run()` is active: add the store to the app's `ServiceGroup`
/// (it is a `Service`), or wrap short-lived work in ``withRunning(_:)``.
///
/// ```swift
/// let store = try PostgresStore(url: "postgres://basalt:secret@127.0.0.1:5432/basalt", logger: logger)
/// try await store.withRunning {
///     try await store.bootstrap()
///     let rows = try await store.fetch(SQLQuery(sql: "SELECT 1"), types: [.int])
/// }
/// ```
public final class PostgresStore: Store, Service {
    public let dialect: any SQLDialect = PostgresDialect()
    public let commits = Beacon()
    /// Commits made by this process (`commits` also rises for other processes' commits).
    let localCommits = Beacon()
    /// How each pool is configured (with `search_path` when a schema name is given).
    let clientConfiguration: PostgresClient.Configuration
    /// The PostgreSQL schema every connection works in (`search_path`), or `nil` for the server's default.
    public let schemaName: String?
    /// How long a call waits for a connection before it fails as `unavailable` (a `503`, not a hang).
    public let acquireTimeout: Duration
    let logger: Logger
    let pools: Pools
    /// Per connection, its queries in flight (see `run`).
    let inFlight = Mutex<[ObjectIdentifier: InFlightQueries]>([:])
    /// Where database calls are timed (`GET /metrics`); nil: not measured.
    public let metrics: Metrics?
    /// The deadlines of the leases being waited for (see ``leased(_:)``).
    let deadlines: LeaseDeadlines

    /// Connects to `url` (`postgres://user:pass@host:port/db`, also `postgresql://`).
    ///
    /// - `schemaName`: when given, every connection starts with `search_path` set to that schema alone;
    ///   ``bootstrap()`` creates it. Tests use one fresh schema each and ``dropSchema()`` it afterwards.
    /// - TLS follows the URL's `sslmode` (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`);
    ///   without one it is off for loopback hosts and `prefer` (certificate verified) elsewhere.
    /// - `?host=/path/to/socket/dir` connects through that directory's Unix socket instead of TCP.
    /// - `maxConnections`: the size of the pool (per process).
    public convenience init(
        url: String,
        schemaName: String? = nil,
        maxConnections: Int = 20,
        acquireTimeout: Duration = .seconds(5),
        metrics: Metrics? = nil,
        logger: Logger
    ) throws {
        var configuration = try Self.configuration(url: url)
        configuration.options.maximumConnections = maxConnections
        try self.init(configuration: configuration, schemaName: schemaName, acquireTimeout: acquireTimeout, metrics: metrics, logger: logger)
    }

    /// Uses a ready configuration (pool size, timeouts, TLS). `search_path` is added to its startup
    /// parameters when `schemaName` is given.
    public init(
        configuration: PostgresClient.Configuration,
        schemaName: String? = nil,
        acquireTimeout: Duration = .seconds(5),
        metrics: Metrics? = nil,
        logger: Logger
    ) throws {
        var configuration = configuration
        if let schemaName {
            guard !schemaName.isEmpty, schemaName.utf8.count <= 63, !schemaName.utf8.contains(0) else {
                throw StoreError.other(underlying: "invalid PostgreSQL schema name")
            }
            // A startup parameter is applied like `SET search_path` before the first query, on every
            // connection the pool opens, so no query can run in another schema. Only this schema:
            // unqualified names never fall back to `public` (pg_catalog is always searched first).
            configuration.options.additionalStartupParameters.removeAll { $0.0 == "search_path" }
            configuration.options.additionalStartupParameters.append(
                ("search_path", PostgresDialect().quote(schemaName))
            )
        }
        // A connection attempt to a host that does not answer must not outlast a caller's wait.
        if configuration.options.connectTimeout > acquireTimeout { configuration.options.connectTimeout = acquireTimeout }
        self.clientConfiguration = configuration
        self.schemaName = schemaName
        self.acquireTimeout = acquireTimeout
        self.logger = logger
        self.metrics = metrics
        // A deadline fires at most a tick late: a tenth of the timeout, within 10–100 ms.
        self.deadlines = LeaseDeadlines(tick: min(max(acquireTimeout / 10, Duration.milliseconds(10)), Duration.milliseconds(100)))
        self.pools = Pools(first: PostgresClient(configuration: configuration, backgroundLogger: logger))
    }

    public var connectionLimit: Int { clientConfiguration.options.maximumConnections }

    /// The connection pool in use now.
    public var client: PostgresClient { pools.current }

    // MARK: - Lifecycle

    /// Runs the connection pools until cancelled or until graceful shutdown. Call once.
    ///
    /// After an outage PostgresNIO's pool retries connecting with a backoff that grows to a
    /// minute, so service would come back up to a minute after the database does. Instead, while
    /// calls fail for want of a connection, a fresh pool replaces the current one every
    /// `replaceEvery`: its first attempt is immediate, so service is back within about that long
    /// of the database. A replaced pool keeps running for `retireAfter`, for calls still using it.
    public func run() async throws {
        await pools.run(
            replaceEvery: .seconds(1),
            retireAfter: .seconds(30),
            makeClient: { [clientConfiguration, logger] in PostgresClient(configuration: clientConfiguration, backgroundLogger: logger) },
            logger: logger
        )
    }

    /// Runs the pools around `body`, then stops them: for CLI commands and tests, which have no
    /// `ServiceGroup`. Use either this or ``run()``, once per store.
    ///
    /// ```swift
    /// try await store.withRunning { try await store.bootstrap() }
    /// ```
    public func withRunning<T>(_ body: () async throws -> T) async rethrows -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.run() }
            defer { group.cancelAll() }
            return try await body()
        }
    }

    /// Runs `body` on a leased connection, waiting at most `acquireTimeout` for one. The lease
    /// and the deadline race for one atomic verdict: either the body runs (and its outcome, commit
    /// included, is the call's), or the call fails as `unavailable` and the body never runs —
    /// never a commit reported as a failure. The lease is waited for in a task of its own, which
    /// the deadline (kept by ``LeaseDeadlines``, not a timer per call) cancels. Calls that cannot
    /// reach the database mark the pool for replacement, calls that can clear the mark (see ``run()``).
    func leased<R: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> R) async throws -> R {
        let client = pools.current
        let race = LeaseRace()
        let lease = Task { () async throws -> R? in
            try await client.withConnection { conn in
                // Too late: the caller is told `unavailable`; hand the connection back unused.
                guard race.claim(.leased) else { return nil }
                return try await body(conn)
            }
        }
        let timedOut = StoreError.unavailable(underlying: "no database connection within \(acquireTimeout)")
        let ticket = deadlines.add(deadline: .now + acquireTimeout) {
            if race.claim(.timedOut) { lease.cancel() }
        }
        do {
            let value = try await withTaskCancellationHandler {
                try await lease.value
            } onCancel: {
                lease.cancel()
            }
            deadlines.remove(ticket)
            guard let value else { throw timedOut }  // leased after the deadline: the body did not run
            pools.noteSuccess(client)
            return value
        } catch {
            deadlines.remove(ticket)
            let error = race.verdict == .timedOut ? timedOut : error
            if case .unavailable = Self.translate(error, tag: 0), race.verdict != .leased || Self.isConnectionLoss(error) {
                pools.noteFailure(client)
            } else if race.verdict == .leased {
                pools.noteSuccess(client)  // the database answered (with an error of the query's own)
            }
            throw error
        }
    }

    /// Who won a lease race: the lease, or the timer.
    final class LeaseRace: Sendable {
        enum Verdict: Int {
            case open = 0
            case leased = 1
            case timedOut = 2
        }
        let state = Atomic(0)
        /// Takes the verdict if nobody has yet.
        func claim(_ v: Verdict) -> Bool {
            state.compareExchange(expected: Verdict.open.rawValue, desired: v.rawValue, ordering: .acquiringAndReleasing).exchanged
        }
        var verdict: Verdict { Verdict(rawValue: state.load(ordering: .acquiring)) ?? .open }
    }

    /// Creates the schema (when configured) and applies Basalt's own migrations that are not yet
    /// recorded in `_basalt_internal_migrations`, all in one transaction under an advisory lock, so
    /// replicas starting together apply each migration exactly once.
    public func bootstrap() async throws {
        try await transaction(tag: 0) { conn in
            let key = "basalt.bootstrap:" + (self.schemaName ?? "")
            try await self.execute(
                SQLQuery(sql: "SELECT pg_advisory_xact_lock(hashtext($1))", binds: [.text(key)]),
                on: conn
            )
            if let schemaName = self.schemaName {
                try await self.execute(
                    SQLQuery(sql: "CREATE SCHEMA IF NOT EXISTS \(self.dialect.quote(schemaName))"),
                    on: conn
                )
            }
            let history = self.dialect.quote(InternalTables.historyTable)
            try await self.execute(
                SQLQuery(sql: "CREATE TABLE IF NOT EXISTS \(history) (\"name\" TEXT PRIMARY KEY NOT NULL)"),
                on: conn
            )
            let done = Set(
                try await self.execute(SQLQuery(sql: "SELECT \"name\" FROM \(history)"), on: conn, types: [.text])
                    .rows.compactMap { $0.first?.text }
            )
            for m in InternalTables.migrations where !done.contains(m.name) {
                for s in m.postgres { try await self.execute(SQLQuery(sql: s), on: conn) }
                try await self.execute(
                    SQLQuery(sql: "INSERT INTO \(history) (\"name\") VALUES ($1)", binds: [.text(m.name)]),
                    on: conn
                )
                self.logger.info("applied internal migration", metadata: ["migration.name": "\(m.name)"])
            }
        }
    }

    /// Drops the configured schema and everything in it (tests). Refuses without a schema name.
    public func dropSchema() async throws {
        guard let schemaName else { throw StoreError.other(underlying: "dropSchema needs a schemaName") }
        do {
            let sql = "DROP SCHEMA IF EXISTS \(dialect.quote(schemaName)) CASCADE"
            try await leased { conn in _ = try await self.run(PostgresQuery(unsafeSQL: sql), on: conn) }
        } catch {
            throw Self.translate(error, tag: 0)
        }
    }

    // MARK: - Store

    public func fetch(_ query: SQLQuery, types: [SQLColumnType]) async throws -> [SQLRow] {
        guard Trace.databaseSpans else { return try await fetchMeasured(query, types: types) }
        return try await Trace.database("postgresql", "read", query.sql) { try await fetchMeasured(query, types: types) }
    }

    func fetchMeasured(_ query: SQLQuery, types: [SQLColumnType]) async throws -> [SQLRow] {
        guard let metrics else { return try await fetchUnmeasured(query, types: types) }
        let start = metrics.operationStarted(.read)
        defer { metrics.operationFinished(.read, since: start) }
        return try await fetchUnmeasured(query, types: types)
    }

    func fetchUnmeasured(_ query: SQLQuery, types: [SQLColumnType]) async throws -> [SQLRow] {
        do {
            let q = try Self.postgresQuery(query)
            return try await leased { conn in
                let result = try await self.run(q, on: conn)
                return try result.rows.map { try Self.decode($0, types) }
            }
        } catch {
            throw Self.translate(error, tag: 0)
        }
    }

    public func write(_ statements: [SQLStatement], finish: (@Sendable ([[SQLRow]]) throws -> [SQLStatement])?) async throws -> [[SQLRow]] {
        let out = try await write(statements, finish: finish, announce: true)
        return out
    }

    public func writeUnannounced(_ statements: [SQLStatement]) async throws {
        _ = try await write(statements, finish: nil, announce: false)
    }

    func write(
        _ statements: [SQLStatement],
        finish: (@Sendable ([[SQLRow]]) throws -> [SQLStatement])?,
        announce: Bool
    ) async throws -> [[SQLRow]] {
        guard Trace.databaseSpans else { return try await writeMeasured(statements, finish: finish, announce: announce) }
        return try await Trace.database("postgresql", "write", statements.map(\.query.sql).joined(separator: ";\n")) {
            try await writeMeasured(statements, finish: finish, announce: announce)
        }
    }

    func writeMeasured(
        _ statements: [SQLStatement],
        finish: (@Sendable ([[SQLRow]]) throws -> [SQLStatement])?,
        announce: Bool
    ) async throws -> [[SQLRow]] {
        guard let metrics else { return try await writeUnmeasured(statements, finish: finish, announce: announce) }
        let start = metrics.operationStarted(.write)
        defer { metrics.operationFinished(.write, since: start) }
        return try await writeUnmeasured(statements, finish: finish, announce: announce)
    }

    func writeUnmeasured(
        _ statements: [SQLStatement],
        finish: (@Sendable ([[SQLRow]]) throws -> [SQLStatement])?,
        announce: Bool
    ) async throws -> [[SQLRow]] {
        // A deferred foreign key fails at COMMIT, after the last statement.
        let out = try await transaction(tag: statements.last?.tag ?? 0) { conn in
            var out: [[SQLRow]] = []
            out.reserveCapacity(statements.count)
            func runAll(_ list: [SQLStatement], from offset: Int) async throws {
                for (i, s) in list.enumerated() {
                    let result: (rows: [SQLRow], affected: Int?)
                    do {
                        result = try await self.execute(s.query, on: conn, types: s.returning)
                    } catch {
                        throw Self.translate(error, tag: s.tag)
                    }
                    if s.expect == .one {
                        let n = s.returning.isEmpty ? (result.affected ?? result.rows.count) : result.rows.count
                        if n != 1 { throw StoreError.expectationFailed(statement: offset + i, tag: s.tag) }
                    }
                    out.append(result.rows)
                }
            }
            try await runAll(statements, from: 0)
            if let finish { try await runAll(try finish(out), from: statements.count) }
            return out
        }
        if announce {
            localCommits.bump()
            commits.bump()
        }
        return out
    }

    public func migrate(_ statements: [SQLQuery]) async throws {
        try await Trace.database("postgresql", "migrate", statements.map(\.sql).joined(separator: ";\n")) {
            let start = metrics?.operationStarted(.migrate)
            defer { if let start { metrics?.operationFinished(.migrate, since: start) } }
            try await migrateUnmeasured(statements)
        }
    }

    func migrateUnmeasured(_ statements: [SQLQuery]) async throws {
        try await transaction(tag: 0) { conn in
            // Serializes schema changes between replicas; DDL in PostgreSQL is transactional.
            let key = "basalt.migrate:" + (self.schemaName ?? "")
            try await self.execute(
                SQLQuery(sql: "SELECT pg_advisory_xact_lock(hashtext($1))", binds: [.text(key)]),
                on: conn
            )
            for s in statements { try await self.execute(s, on: conn) }
        }
    }

    /// PostgreSQL's autovacuum keeps statistics current by itself; this runs `ANALYZE` on the given
    /// tables for callers that want fresh plans right after a bulk change.
    public func refreshStatistics(tables: [String]) async throws {
        guard !tables.isEmpty else { return }
        let list = tables.map { dialect.quote($0) }.joined(separator: ", ")
        do {
            try await leased { conn in _ = try await self.run(PostgresQuery(unsafeSQL: "ANALYZE \(list)"), on: conn) }
        } catch {
            throw Self.translate(error, tag: 0)
        }
    }

    /// Whether the database answers `SELECT 1` (within the acquire timeout: see ``leased(_:)``).
    public func ping() async -> Bool {
        (try? await fetch(SQLQuery(sql: "SELECT 1"), types: [.int]).first?.first) == .int(1)
    }

    /// Nothing to do: the pool closes its connections when the task running ``run()`` (or
    /// ``withRunning(_:)``) ends.
    public func close() async throws {}

    /// PostgreSQL checkpoints and vacuums on its own.
    public func housekeep() async throws {}

    // MARK: - Transactions and statements

    /// Runs `body` between BEGIN and COMMIT on one leased connection; any error rolls back.
    /// Errors come out as `StoreError`: those `body` throws as they are, others translated with `tag`.
    func transaction<R: Sendable>(tag: Int, _ body: @escaping @Sendable (PostgresConnection) async throws -> R) async throws -> R {
        do {
            return try await leased { conn in
                _ = try await self.run("BEGIN", on: conn)
                let value: R
                do {
                    value = try await body(conn)
                } catch {
                    do {
                        _ = try await self.run("ROLLBACK", on: conn)
                    } catch {
                        // Never hand a connection in an unknown transaction state back to the pool.
                        try? await conn.close()
                    }
                    throw error
                }
                _ = try await self.run("COMMIT", on: conn)
                return value
            }
        } catch let e as StoreError {
            throw e
        } catch {
            throw Self.translate(error, tag: tag)
        }
    }

    /// Runs one query, ending it when its connection closes. PostgresNIO 1.33 writes a query to
    /// the channel without a promise, so a query written to a connection that closed a moment
    /// before (the pipeline already torn down) is dropped and its result never completes: a
    /// request in flight when PostgreSQL died waited forever, holding its lease. The queries in
    /// flight on a connection are failed together by one callback on its `closeFuture`
    /// (`InFlightQueries`); a callback per query would stay registered — holding the query's
    /// whole result — until the connection closed, which pooled connections never do.
    func run(_ query: PostgresQuery, on conn: PostgresConnection) async throws -> PostgresQueryResult {
        let inFlight = inFlightQueries(on: conn)
        let result: EventLoopFuture<PostgresQueryResult> = conn.query(query, logger: logger)
        let outcome = result.eventLoop.makePromise(of: PostgresQueryResult.self)
        let once = FirstOutcome()
        // Both completions run on the connection's event loop: a result that arrived before the
        // close (a COMMIT's, say) always wins.
        guard let ticket = inFlight.add({ if once.take() { outcome.fail(ChannelError.ioOnClosedChannel) } }) else {
            if once.take() { outcome.fail(ChannelError.ioOnClosedChannel) }
            return try await outcome.futureResult.get()
        }
        result.whenComplete { r in
            inFlight.remove(ticket)
            if once.take() { outcome.completeWith(r) }
        }
        return try await outcome.futureResult.get()
    }

    /// The registry of `conn`'s queries in flight, made (with its one close callback) on first use.
    func inFlightQueries(on conn: PostgresConnection) -> InFlightQueries {
        let key = ObjectIdentifier(conn)
        let (registry, isNew) = inFlight.withLock { all -> (InFlightQueries, Bool) in
            if let r = all[key] { return (r, false) }
            let r = InFlightQueries()
            all[key] = r
            return (r, true)
        }
        if isNew {
            conn.closeFuture.whenComplete { [self] _ in
                inFlight.withLock { _ = $0.removeValue(forKey: key) }
                registry.close()
            }
        }
        return registry
    }

    /// Queries in flight on one connection: each one's way to fail, until it completes.
    final class InFlightQueries: Sendable {
        struct State {
            var closed = false
            var next = 0
            var failures: [Int: @Sendable () -> Void] = [:]
        }
        let state = Mutex(State())

        /// A ticket to `remove` with, or nil when the connection has already closed.
        func add(_ fail: @escaping @Sendable () -> Void) -> Int? {
            state.withLock { s in
                guard !s.closed else { return nil }
                s.next += 1
                s.failures[s.next] = fail
                return s.next
            }
        }

        func remove(_ ticket: Int) { state.withLock { _ = $0.failures.removeValue(forKey: ticket) } }

        var count: Int { state.withLock { $0.failures.count } }

        func close() {
            let pending = state.withLock { s in
                s.closed = true
                defer { s.failures = [:] }
                return Array(s.failures.values)
            }
            for fail in pending { fail() }
        }
    }

    /// Which of two completions came first.
    final class FirstOutcome: Sendable {
        let taken = Atomic(false)
        func take() -> Bool { taken.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged }
    }

    /// Runs one statement and collects its rows and the affected-row count of its command tag.
    @discardableResult
    func execute(
        _ query: SQLQuery,
        on conn: PostgresConnection,
        types: [SQLColumnType] = []
    ) async throws
        -> (rows: [SQLRow], affected: Int?)
    {
        let result = try await run(try Self.postgresQuery(query), on: conn)
        var rows: [SQLRow] = []
        if !types.isEmpty {
            rows.reserveCapacity(result.rows.count)
            for row in result.rows { rows.append(try Self.decode(row, types)) }
        }
        return (rows, result.metadata.rows)
    }

    // MARK: - Configuration

    /// Parses `postgres://user:pass@host:port/db?sslmode=…&host=…` into a client configuration.
    public static func configuration(url: String) throws -> PostgresClient.Configuration {
        // Errors never repeat the URL: it may carry a password.
        guard let c = URLComponents(string: url), let scheme = c.scheme?.lowercased(),
            scheme == "postgres" || scheme == "postgresql"
        else {
            throw StoreError.other(underlying: "invalid PostgreSQL URL: expected postgres://user:pass@host:port/db")
        }
        var query: [String: String] = [:]
        for item in c.queryItems ?? [] { query[item.name] = item.value ?? "" }
        let username = c.user.flatMap { $0.isEmpty ? nil : $0 } ?? query["user"] ?? "postgres"
        let password = c.password ?? query["password"]
        var database = c.path
        while database.hasPrefix("/") { database.removeFirst() }
        database = database.removingPercentEncoding ?? database
        let port = c.port ?? query["port"].flatMap { Int($0) } ?? 5432
        var host = c.host ?? ""
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        host = host.removingPercentEncoding ?? host

        var config: PostgresClient.Configuration
        if let socketDirectory = query["host"], socketDirectory.hasPrefix("/") {
            config = .init(
                unixSocketPath: socketDirectory + "/.s.PGSQL.\(port)",
                username: username,
                password: password,
                database: database.isEmpty ? nil : database
            )
        } else {
            if host.isEmpty { host = query["host"] ?? "localhost" }
            let loopback = host == "localhost" || host == "::1" || host.hasPrefix("127.")
            let tls: PostgresClient.Configuration.TLS
            switch query["sslmode"]?.lowercased() {
            case "disable", "allow": tls = .disable
            case "require":
                // libpq's `require` encrypts without verifying the certificate.
                var t = TLSConfiguration.makeClientConfiguration()
                t.certificateVerification = .none
                tls = .require(t)
            case "verify-ca":
                var t = TLSConfiguration.makeClientConfiguration()
                t.certificateVerification = .noHostnameVerification
                tls = .require(t)
            case "verify-full": tls = .require(.makeClientConfiguration())
            case "prefer": tls = .prefer(.makeClientConfiguration())
            case nil: tls = loopback ? .disable : .prefer(.makeClientConfiguration())
            case let other?: throw StoreError.other(underlying: "unsupported sslmode \(other)")
            }
            config = .init(
                host: host,
                port: port,
                username: username,
                password: password,
                database: database.isEmpty ? nil : database,
                tls: tls
            )
        }
        if let app = query["application_name"] {
            config.options.additionalStartupParameters.append(("application_name", app))
        }
        return config
    }
}
