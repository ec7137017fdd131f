import BasaltCore
import BasaltStorage
import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing

@testable import BasaltPostgres

// Runs against a real PostgreSQL reached through BASALT_TEST_POSTGRES_URL, one fresh schema per
// test, dropped afterwards (STYLE.md §6). Without the URL the tests are skipped, unless CI is set:
// then they fail.

enum TestPostgres {
    static let url: String? = {
        let u = ProcessInfo.processInfo.environment["BASALT_TEST_POSTGRES_URL"] ?? ""
        return u.isEmpty ? nil : u
    }()
    static let required = ProcessInfo.processInfo.environment["CI"] != nil
    /// Runs when there is a server, and under CI even without one (to fail).
    static let enabled = url != nil || required

    static let logger = Logger(label: "basalt.test.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    static func freshSchemaName() -> String {
        "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20)
    }

    static func makeStore(schema: String) throws -> PostgresStore {
        guard let url else { throw MissingServer() }
        // Not the production bound: the whole suite starts at once on two cores (TestBackend).
        return try PostgresStore(url: url, schemaName: schema, acquireTimeout: .seconds(30), logger: logger)
    }

    /// A bootstrapped store in a fresh schema, running for `body`, its schema dropped afterwards.
    static func withStore(_ body: (PostgresStore) async throws -> Void) async throws {
        let store = try makeStore(schema: freshSchemaName())
        try await store.withRunning {
            do {
                try await store.bootstrap()
                try await body(store)
            } catch {
                try? await store.dropSchema()
                throw error
            }
            try await store.dropSchema()
        }
    }
}

struct MissingServer: Error, CustomStringConvertible {
    var description: String { "BASALT_TEST_POSTGRES_URL is not set, and CI is: the PostgreSQL tests must run" }
}

/// A collection with one field of every type, and the relation's target.
enum Fixtures {
    static let authors = CollectionSchema(name: "authors", fields: [FieldSchema(name: "name", type: .text)])
    static let everything = CollectionSchema(
        name: "things",
        fields: FieldType.allCases.map { t in
            FieldSchema(
                name: "f_\(t.rawValue)",
                type: t,
                unique: t == .email,
                values: t == .select ? ["a", "b"] : [],
                target: t == .relation ? "authors" : nil
            )
        }
    )

    static func createTables(_ store: PostgresStore) async throws {
        let ddl = TableDDL(dialect: store.dialect)
        var statements = [SQLQuery(sql: ddl.createTable(authors)), SQLQuery(sql: ddl.createTable(everything))]
        statements += (ddl.indexes(authors) + ddl.indexes(everything)).map { SQLQuery(sql: $0.sql) }
        try await store.migrate(statements)
    }

    static let columns = ["id", "created_at", "updated_at", "version"] + everything.fields.map(\.name)
    static let types: [SQLColumnType] =
        [.uuid, .timestamp, .timestamp, .int] + everything.fields.map { SQLColumnType($0.type) }

    static func insert(
        _ values: [SQLValue],
        into table: String = "things",
        columns: [String] = columns,
        dialect: any SQLDialect
    )
        -> SQLQuery
    {
        var b = SQLBuilder(dialect)
        let list = columns.map { dialect.quote($0) }.joined(separator: ", ")
        b.append("INSERT INTO \(dialect.quote(table)) (\(list)) VALUES (")
        for (i, v) in values.enumerated() {
            if i > 0 { b.append(", ") }
            b.bind(v)
        }
        b.append(")")
        return b.query
    }

    static func authorRow(_ id: String) -> [SQLValue] {
        [
            .uuid(id), .timestamp(Timestamp(millisecondsSinceEpoch: 1)),
            .timestamp(Timestamp(millisecondsSinceEpoch: 1)), .int(1), .text("A"),
        ]
    }
    static let authorColumns = ["id", "created_at", "updated_at", "version", "name"]
}

@Suite(.enabled(if: TestPostgres.enabled, "needs BASALT_TEST_POSTGRES_URL"))
struct PostgresStoreTests {
    @Test func bootstrapIsIdempotent() async throws {
        try await TestPostgres.withStore { store in
            try await store.bootstrap()
            try await store.bootstrap()
            let applied = try await store.fetch(
                SQLQuery(sql: "SELECT \"name\" FROM \"_basalt_internal_migrations\" ORDER BY \"name\""),
                types: [.text]
            )
            #expect(applied == InternalTables.migrations.map { [.text($0.name)] })
            let tables = try await store.fetch(
                SQLQuery(
                    sql: "SELECT count(*) FROM information_schema.tables"
                        + " WHERE table_schema = $1 AND table_name LIKE '\\_basalt%'",
                    binds: [.text(store.schemaName!)]
                ),
                types: [.int]
            )
            // Every table the migrations create and do not drop again, and the history table.
            let statements = InternalTables.migrations.flatMap(\.postgres)
            let created = statements.filter { $0.contains("CREATE TABLE") }.count - statements.filter { $0.contains("DROP TABLE") }.count
            #expect(tables == [[.int(Int64(created + 1))]])
            #expect(await store.ping())
        }
    }

    @Test func concurrentBootstrapsApplyEachMigrationOnce() async throws {
        let schema = TestPostgres.freshSchemaName()
        let a = try TestPostgres.makeStore(schema: schema)
        let b = try TestPostgres.makeStore(schema: schema)
        try await a.withRunning {
            try await b.withRunning {
                async let x: Void = a.bootstrap()
                async let y: Void = b.bootstrap()
                _ = try await (x, y)
                let n = try await a.fetch(
                    SQLQuery(sql: "SELECT count(*) FROM \"_basalt_internal_migrations\""),
                    types: [.int]
                )
                #expect(n == [[.int(Int64(InternalTables.migrations.count))]])
                try await a.dropSchema()
            }
        }
    }

    @Test func everyValueTypeRoundTrips() async throws {
        try await TestPostgres.withStore { store in
            try await Fixtures.createTables(store)
            let author = "0190a3b4-5c6d-7e8f-9012-3456789abcde"
            let id = "0190a3b4-5c6d-7e8f-9012-000000000001"
            let created = Timestamp(rfc3339: "2026-11-27T10:08:06.123Z")!
            let before2000 = Timestamp(rfc3339: "1969-12-31T23:59:59.999Z")!
            var row: [SQLValue] = [.uuid(id), .timestamp(created), .timestamp(before2000), .int(7)]
            for f in Fixtures.everything.fields {
                switch f.type {
                case .text: row.append(.text("héllo \"wörld\" ✓"))
                case .integer: row.append(.int(Int64.max))
                case .number: row.append(.double(-1234.5625))
                case .boolean: row.append(.bool(true))
                case .datetime: row.append(.timestamp(Timestamp(millisecondsSinceEpoch: 1_700_000_000_001)))
                case .email: row.append(.text("a@example.com"))
                case .url: row.append(.text("https://example.com/?q=1"))
                case .select: row.append(.text("b"))
                case .json: row.append(.json(#"{"a":[1,2,{"b":null}],"c":"ü"}"#))
                case .relation: row.append(.uuid(author))
                }
            }
            let written = try await store.write([
                SQLStatement(
                    Fixtures.insert(
                        Fixtures.authorRow(author),
                        into: "authors",
                        columns: Fixtures.authorColumns,
                        dialect: store.dialect
                    ),
                    expect: .one
                ),
                SQLStatement(Fixtures.insert(row, dialect: store.dialect), expect: .one),
            ])
            #expect(written.map(\.count) == [0, 0])

            let select =
                "SELECT \(Fixtures.columns.map { store.dialect.quote($0) }.joined(separator: ", ")) FROM \"things\""
            let read = try await store.fetch(SQLQuery(sql: select), types: Fixtures.types)
            #expect(read.count == 1)
            let got = try #require(read.first)
            for (i, (want, have)) in zip(row, got).enumerated() {
                if case .json = want {
                    // jsonb normalizes spacing; compare parsed documents.
                    #expect(
                        try JSONValue.parse(have.text ?? "") == JSONValue.parse(want.text ?? ""),
                        "column \(Fixtures.columns[i])"
                    )
                } else {
                    #expect(have == want, "column \(Fixtures.columns[i])")
                }
            }

            // NULL in every nullable column, through RETURNING.
            let id2 = "0190a3b4-5c6d-7e8f-9012-000000000002"
            var nulls: [SQLValue] = [.uuid(id2), .timestamp(created), .timestamp(created), .int(1)]
            nulls += Fixtures.everything.fields.map { _ in .null }
            var insert = Fixtures.insert(nulls, dialect: store.dialect)
            insert.sql += " RETURNING " + Fixtures.columns.map { store.dialect.quote($0) }.joined(separator: ", ")
            let returned = try await store.write([SQLStatement(insert, returning: Fixtures.types, expect: .one)])
            #expect(returned == [[nulls]])

            // Binds of every type in a WHERE clause find the row.
            var b = SQLBuilder(store.dialect)
            b.append("SELECT count(*) FROM \"things\" WHERE \"f_integer\" = ")
            b.bind(.int(Int64.max))
            b.append(" AND \"f_boolean\" = ")
            b.bind(.bool(true))
            b.append(" AND \"f_datetime\" = ")
            b.bind(.timestamp(Timestamp(millisecondsSinceEpoch: 1_700_000_000_001)))
            b.append(" AND \"f_relation\" = ")
            b.bind(.uuid(author.uppercased()))
            b.append(" AND \"f_json\" @> ")
            b.bind(.json(#"{"c":"ü"}"#))
            b.append(" AND \"f_number\" < ")
            b.bind(.double(0))
            b.append(" AND \"f_text\" = ")
            b.bind(.text("héllo \"wörld\" ✓"))
            #expect(try await store.fetch(b.query, types: [.int]) == [[.int(1)]])

            // Case folding used by `~` works on this server (ICU root collation).
            let folded = try await store.fetch(
                SQLQuery(sql: "SELECT basalt_lower($1)", binds: [.text("ÀÉÎ Straße")]),
                types: [.text]
            )
            #expect(folded == [[.text("àéî straße")]])

            // Aggregates of other integer widths and NUMERIC decode as the asked type.
            let agg = try await store.fetch(
                SQLQuery(sql: "SELECT sum(\"version\"), count(*)::int4, 2::int2, sum(\"f_number\") FROM \"things\""),
                types: [.int, .int, .int, .double]
            )
            #expect(agg == [[.int(8), .int(2), .int(2), .double(-1234.5625)]])
        }
    }

    /// A finished query leaves nothing registered on its connection: each one used to add a
    /// callback to the connection's close future, holding its result, until the connection
    /// closed — the server's memory grew by every result it ever read (2.9 GB in a benchmark).
    @Test func finishedQueriesLeaveNothingOnTheirConnection() async throws {
        try await TestPostgres.withStore { store in
            for i in 0..<300 {
                let rows = try await store.fetch(SQLQuery(sql: "SELECT repeat('x', 10000), \(i)"), types: [.text, .int])
                #expect(rows.count == 1)
            }
            let registries = store.inFlight.withLock { Array($0.values) }
            #expect(!registries.isEmpty, "queries register while they run")
            #expect(registries.allSatisfy { $0.count == 0 }, "every finished query was removed")
            #expect(registries.count <= 20, "one registry per pooled connection, not per query")
        }
    }

    @Test func uniqueViolationNamesTheIndex() async throws {
        try await TestPostgres.withStore { store in
            try await Fixtures.createTables(store)
            let ddl = TableDDL(dialect: store.dialect)
            let emailIndex = try #require(ddl.indexes(Fixtures.everything).first { $0.uniqueFields == ["f_email"] })
            func thing(_ n: Int, email: String) -> [SQLValue] {
                var row: [SQLValue] = [
                    .uuid("0190a3b4-5c6d-7e8f-9012-00000000000\(n)"), .timestamp(.init(millisecondsSinceEpoch: 0)),
                    .timestamp(.init(millisecondsSinceEpoch: 0)), .int(1),
                ]
                row += Fixtures.everything.fields.map { $0.type == .email ? .text(email) : .null }
                return row
            }
            _ = try await store.write([SQLStatement(Fixtures.insert(thing(1, email: "a@x.io"), dialect: store.dialect))]
            )
            do {
                _ = try await store.write([
                    SQLStatement(Fixtures.insert(thing(2, email: "b@x.io"), dialect: store.dialect), tag: 0),
                    SQLStatement(Fixtures.insert(thing(3, email: "A@X.io"), dialect: store.dialect), tag: 1),
                ])
                Issue.record("expected a unique violation")
            } catch StoreError.uniqueViolation(let table, let columns, let tag, let underlying) {
                #expect(table == "things")
                #expect(columns == [emailIndex.name])
                #expect(tag == 1)
                #expect(underlying.contains("23505"))
            }
            // The failed transaction left nothing behind.
            #expect(
                try await store.fetch(SQLQuery(sql: "SELECT count(*) FROM \"things\""), types: [.int]) == [[.int(1)]]
            )

            // A duplicate primary key names "id".
            do {
                _ = try await store.write([
                    SQLStatement(Fixtures.insert(thing(1, email: "c@x.io"), dialect: store.dialect), tag: 4)
                ])
                Issue.record("expected a unique violation")
            } catch StoreError.uniqueViolation(let table, let columns, let tag, _) {
                #expect(table == "things")
                #expect(columns == ["id"])
                #expect(tag == 4)
            }
        }
    }

    @Test func foreignKeyViolationIsReportedAtCommit() async throws {
        try await TestPostgres.withStore { store in
            try await Fixtures.createTables(store)
            var row: [SQLValue] = [
                .uuid("0190a3b4-5c6d-7e8f-9012-000000000001"), .timestamp(.init(millisecondsSinceEpoch: 0)),
                .timestamp(.init(millisecondsSinceEpoch: 0)), .int(1),
            ]
            row += Fixtures.everything.fields.map {
                $0.type == .relation ? .uuid("0190a3b4-5c6d-7e8f-9012-0000000000ff") : .null
            }
            do {
                _ = try await store.write([SQLStatement(Fixtures.insert(row, dialect: store.dialect), tag: 3)])
                Issue.record("expected a foreign key violation")
            } catch StoreError.foreignKeyViolation(let tag, _) {
                #expect(tag == 3)
            }
        }
    }

    @Test func expectationFailureRollsBackTheWholeTransaction() async throws {
        try await TestPostgres.withStore { store in
            try await Fixtures.createTables(store)
            let a1 = "0190a3b4-5c6d-7e8f-9012-000000000001"
            let a2 = "0190a3b4-5c6d-7e8f-9012-000000000002"
            let insert1 = Fixtures.insert(
                Fixtures.authorRow(a1),
                into: "authors",
                columns: Fixtures.authorColumns,
                dialect: store.dialect
            )
            let insert2 = Fixtures.insert(
                Fixtures.authorRow(a2),
                into: "authors",
                columns: Fixtures.authorColumns,
                dialect: store.dialect
            )
            let staleUpdate = SQLQuery(
                sql: "UPDATE \"authors\" SET \"name\" = 'B' WHERE \"id\" = $1 AND \"version\" = $2",
                binds: [.uuid(a1), .int(99)]
            )
            do {
                _ = try await store.write([
                    SQLStatement(insert1, expect: .one, tag: 0),
                    SQLStatement(insert2, expect: .one, tag: 1),
                    SQLStatement(staleUpdate, expect: .one, tag: 2),
                ])
                Issue.record("expected an expectation failure")
            } catch StoreError.expectationFailed(let statement, let tag) {
                #expect(statement == 2)
                #expect(tag == 2)
            }
            #expect(
                try await store.fetch(SQLQuery(sql: "SELECT count(*) FROM \"authors\""), types: [.int]) == [[.int(0)]]
            )

            // With RETURNING, the returned row count is what must be one.
            _ = try await store.write([SQLStatement(insert1, expect: .one)])
            let update = SQLQuery(
                sql: "UPDATE \"authors\" SET \"version\" = \"version\" + 1 WHERE \"id\" = $1 RETURNING \"version\"",
                binds: [.uuid(a1)]
            )
            #expect(try await store.write([SQLStatement(update, returning: [.int], expect: .one)]) == [[[.int(2)]]])
            let missing = SQLQuery(
                sql: "DELETE FROM \"authors\" WHERE \"id\" = $1 RETURNING \"id\"",
                binds: [.uuid(a2)]
            )
            do {
                _ = try await store.write([
                    SQLStatement(update, returning: [.int]),
                    SQLStatement(missing, returning: [.uuid], expect: .one, tag: 9),
                ])
                Issue.record("expected an expectation failure")
            } catch StoreError.expectationFailed(let statement, let tag) {
                #expect(statement == 1)
                #expect(tag == 9)
            }
            #expect(
                try await store.fetch(SQLQuery(sql: "SELECT \"version\" FROM \"authors\""), types: [.int]) == [
                    [.int(2)]
                ]
            )
        }
    }

    @Test func schemasIsolateStores() async throws {
        try await TestPostgres.withStore { one in
            try await TestPostgres.withStore { two in
                try await one.migrate([SQLQuery(sql: "CREATE TABLE \"only_here\" (\"x\" BIGINT)")])
                _ = try await one.write([
                    SQLStatement(SQLQuery(sql: "INSERT INTO \"only_here\" VALUES (1)"), expect: .one)
                ])
                #expect(
                    try await one.fetch(SQLQuery(sql: "SELECT \"x\" FROM \"only_here\""), types: [.int]) == [[.int(1)]]
                )
                do {
                    _ = try await two.fetch(SQLQuery(sql: "SELECT \"x\" FROM \"only_here\""), types: [.int])
                    Issue.record("the other schema's table is visible")
                } catch StoreError.other(let underlying) {
                    #expect(underlying.contains("42P01"))  // undefined_table
                }
                // Each has its own internal tables, too.
                _ = try await one.write([
                    SQLStatement(
                        SQLQuery(
                            sql:
                                "INSERT INTO \"_basalt_schema\" (\"id\", \"version\", \"document\") VALUES (1, 1, '{}')"
                        )
                    )
                ])
                #expect(
                    try await two.fetch(SQLQuery(sql: "SELECT count(*) FROM \"_basalt_schema\""), types: [.int]) == [
                        [.int(0)]
                    ]
                )
            }
        }
    }

    /// LISTEN/NOTIFY: an event committed through one store raises the other's `commits` (same
    /// schema), not a third's (another schema); numbering the outbox raises no one's.
    @Test func commitsAreRelayedToOtherProcessesOfTheSameSchema() async throws {
        try await TestPostgres.withStore { writer in
            try await TestPostgres.withStore { elsewhere in
                let reader = try TestPostgres.makeStore(schema: try #require(writer.schemaName))
                try await reader.withRunning {
                    let relays = Task {
                        await withTaskGroup(of: Void.self) { g in
                            for s in [writer, reader, elsewhere] { g.addTask { await s.relayCommits() } }
                        }
                    }
                    defer { relays.cancel() }
                    // LISTEN is in place once each store's listener has raised `commits` on
                    // starting (a fixed sleep was too short on a loaded machine).
                    for _ in 0..<400 where [writer, reader, elsewhere].contains(where: { $0.commits.value == 0 }) {
                        try await Task.sleep(for: .milliseconds(50))
                    }
                    try #require(![writer, reader, elsewhere].contains { $0.commits.value == 0 }, "a listener never started")
                    let (before, other) = (reader.commits.value, elsewhere.commits.value)
                    try await writer.write([
                        SQLStatement(
                            SQLQuery(
                                sql: """
                                    INSERT INTO "_basalt_events" ("id", "type", "collection", "record_id", "time", "data")
                                    VALUES ('e1', 'basalt.record.created', 'authors', 'r1', 0, '{}')
                                    """
                            )
                        )
                    ])
                    var woke = false
                    for _ in 0..<100 where !woke {
                        woke = reader.commits.value > before
                        try await Task.sleep(for: .milliseconds(50))
                    }
                    #expect(woke, "the other process was not notified")
                    #expect(elsewhere.commits.value == other)
                    let mine = writer.commits.value
                    try await writer.writeUnannounced(writer.dialect.numberEvents.map { SQLStatement(SQLQuery(sql: $0)) })
                    #expect(writer.commits.value == mine)
                    let numbered = try await reader.fetch(SQLQuery(sql: #"SELECT "sequence" FROM "_basalt_events""#), types: [.int])
                    #expect(numbered == [[.int(1)]])
                }
            }
        }
    }
}

/// The wait for a connection is bounded; the call that gave up never runs its body.
@Suite(.enabled(if: TestPostgres.enabled, "needs BASALT_TEST_POSTGRES_URL"))
struct PostgresLeaseTests {
    @Test func aSaturatedPoolAnswersUnavailableAtTheDeadline() async throws {
        guard let url = TestPostgres.url else { throw MissingServer() }
        let store = try PostgresStore(url: url, maxConnections: 1, acquireTimeout: .seconds(1), logger: TestPostgres.logger)
        try await store.withRunning {
            // Calls that must succeed are retried: on a loaded machine (the whole suite at once on
            // two cores) even a free connection can take longer than this test's 1 s bound.
            _ = try await Self.retried { try await store.fetch(SQLQuery(sql: "SELECT 1"), types: [.int]) }
            let holding = Atomic(false)
            let ran = Atomic(false)
            async let holder: Void = Self.retried {
                try await store.leased { conn in
                    holding.store(true, ordering: .releasing)
                    _ = try await store.run(PostgresQuery(unsafeSQL: "SELECT pg_sleep(8)"), on: conn)
                }
            }
            while !holding.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(10)) }
            let clock = ContinuousClock()
            let start = clock.now
            var outcome: (any Error)?
            do {
                _ = try await store.leased { _ in ran.store(true, ordering: .relaxed) }
            } catch { outcome = error }
            let waited = start.duration(to: clock.now)
            guard case .unavailable? = outcome as? StoreError else {
                Issue.record("expected unavailable, got \(String(describing: outcome))")
                return
            }
            // The deadline (at most a sweep, 100 ms here, late on an idle machine), not the holder's end.
            #expect(waited >= .seconds(1))
            #expect(waited < .seconds(7))
            try await holder
            // The connection freed by the holder is not handed to the call that gave up.
            try await Task.sleep(for: .milliseconds(200))
            #expect(ran.load(ordering: .relaxed) == false)
            #expect(store.deadlines.count == 0)
            // And the pool serves again.
            let rows = try await Self.retried { try await store.fetch(SQLQuery(sql: "SELECT 2"), types: [.int]) }
            #expect(rows == [[.int(2)]])
            #expect(store.deadlines.count == 0)
        }
    }

    /// `body`, tried again while it fails as `unavailable` (at most 30 times).
    static func retried<R: Sendable>(_ body: @Sendable () async throws -> R) async throws -> R {
        for attempt in 1... {
            do {
                return try await body()
            } catch StoreError.unavailable where attempt < 30 {}
        }
        fatalError("unreachable")
    }
}

/// The deadline registry alone: no server.
struct LeaseDeadlinesTests {
    @Test func aDeadlineFiresOnceAndARemovedOneNever() async throws {
        let deadlines = LeaseDeadlines(tick: .milliseconds(10))
        let fired = Mutex<[String]>([])
        let start = ContinuousClock.now
        let firedAt = Mutex<ContinuousClock.Instant?>(nil)
        _ = deadlines.add(deadline: start + .milliseconds(50)) {
            fired.withLock { $0.append("kept") }
            firedAt.withLock { $0 = .now }
        }
        let removed = deadlines.add(deadline: start + .milliseconds(50)) { fired.withLock { $0.append("removed") } }
        deadlines.remove(removed)
        #expect(deadlines.count == 1)
        // Waits by polling: a loaded machine may run the sweeper late, never early.
        try await Self.waitUntil { fired.withLock { $0.count } >= 1 && deadlines.state.withLock { !$0.sweeping } }
        try await Task.sleep(for: .milliseconds(100))
        #expect(fired.withLock { $0 } == ["kept"])
        let at = try #require(firedAt.withLock { $0 })
        #expect(at >= start + .milliseconds(50))
        #expect(deadlines.count == 0)
        // With nothing left the sweeper has stopped; a new deadline starts it again.
        #expect(deadlines.state.withLock { $0.sweeping } == false)
        _ = deadlines.add(deadline: .now + .milliseconds(20)) { fired.withLock { $0.append("again") } }
        try await Self.waitUntil { fired.withLock { $0.count } >= 2 && deadlines.state.withLock { !$0.sweeping } }
        #expect(fired.withLock { $0 } == ["kept", "again"])
    }

    static func waitUntil(_ condition: () -> Bool) async throws {
        for _ in 0..<1000 {
            if condition() { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("condition not met within 10 s")
    }
}

/// Configuration and connection failures need no server.
struct PostgresURLTests {
    @Test func unreachableServerIsUnavailable() async throws {
        var config = try PostgresStore.configuration(url: "postgres://nobody@127.0.0.1:1/none")
        config.options.connectTimeout = .milliseconds(200)
        let store = try PostgresStore(configuration: config, logger: TestPostgres.logger)
        await store.withRunning {
            // The pool retries connecting; the caller gives up first and sees `unavailable`.
            let result = await withTaskGroup(of: (any Error)?.self) { group in
                group.addTask {
                    do {
                        _ = try await store.fetch(SQLQuery(sql: "SELECT 1"), types: [.int])
                        return nil
                    } catch { return error }
                }
                group.addTask {
                    try? await Task.sleep(for: .seconds(1))
                    return nil
                }
                // The sleeper finishes first; cancel the fetch and take its error.
                var errors: [any Error] = []
                for await e in group {
                    if let e { errors.append(e) }
                    group.cancelAll()
                }
                return errors.first
            }
            guard case .unavailable? = result as? StoreError else {
                Issue.record("expected unavailable, got \(String(describing: result))")
                return
            }
        }
        #expect(await store.ping() == false)
    }

    @Test func parsesURLs() throws {
        let c = try PostgresStore.configuration(
            url: "postgresql://us%40er:p%3Ass@127.0.0.1:54330/basalt_test?sslmode=disable"
        )
        #expect(c.host == "127.0.0.1")
        #expect(c.port == 54330)
        #expect(c.username == "us@er")
        #expect(c.password == "p:ss")
        #expect(c.database == "basalt_test")

        let d = try PostgresStore.configuration(url: "postgres://u@db.internal/app")
        #expect(d.host == "db.internal")
        #expect(d.port == 5432)
        #expect(d.password == nil)

        let s = try PostgresStore.configuration(url: "postgres://u@/app?host=/run/postgresql")
        #expect(s.unixSocketPath == "/run/postgresql/.s.PGSQL.5432")

        #expect(throws: StoreError.self) { try PostgresStore.configuration(url: "mysql://u@h/db") }
        #expect(throws: StoreError.self) { try PostgresStore.configuration(url: "postgres://u@h/db?sslmode=bogus") }
    }

    @Test func schemaNameSetsSearchPath() throws {
        let store = try PostgresStore(
            url: "postgres://u@127.0.0.1/db",
            schemaName: "we\"ird",
            logger: TestPostgres.logger
        )
        #expect(store.schemaName == "we\"ird")
        #expect(throws: StoreError.self) {
            try PostgresStore(url: "postgres://u@127.0.0.1/db", schemaName: "", logger: TestPostgres.logger)
        }
    }
}
