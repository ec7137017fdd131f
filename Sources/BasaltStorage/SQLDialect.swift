public import BasaltCore
import Foundation

/// Everything that differs between SQLite and PostgreSQL SQL text. The compiler and the migration
/// planner ask the dialect; they never branch on the backend.
public protocol SQLDialect: Sendable {
    var name: String { get }
    func placeholder(_ index: Int) -> String
    func quote(_ identifier: String) -> String
    /// Column type of a field, including collation where text order matters.
    func columnType(_ type: FieldType) -> String
    func systemColumnsDDL() -> String
    /// `a IS NOT DISTINCT FROM b`, two-valued.
    func nullSafeEqual(_ a: String, _ b: String) -> String
    func nullSafeNotEqual(_ a: String, _ b: String) -> String
    /// Case-insensitive literal substring test (`~`); may be null when `a` is null.
    func containsCaseInsensitive(_ a: String, _ b: String) -> String
    /// An ORDER BY term with nulls sorting as the smallest value.
    func orderTerm(_ column: String, descending: Bool) -> String
    /// An index column term that lets `orderTerm` be served from the index.
    func indexTerm(_ column: String) -> String
    /// Table options after the column list.
    var tableSuffix: String { get }
    /// Whether `CREATE TABLE` needs explicit id-suffixed indexes for keyset order (SQLite
    /// WITHOUT ROWID tables carry the primary key in every index already).
    var indexesCarryPrimaryKey: Bool { get }
    var columnChangeStrategy: ColumnChangeStrategy { get }
    /// DDL that gives a collection the triggers appending its record events to the outbox
    /// (`_basalt_events`), as the last statements of a migration and at startup (idempotent).
    func eventTriggers(_ c: CollectionSchema) -> [String]
    /// What a migration runs first so its own row changes (copies, back-filled defaults) are
    /// no record events, and so columns a trigger names can be dropped.
    func suspendEventTriggers(_ collections: [String]) -> [String]
    /// Statements (one transaction) that give committed events their `sequence`, where the outbox
    /// numbers them after commit; none where rows are numbered as they are written.
    var numberEvents: [String] { get }
    /// Names of Basalt's own tables (`_basalt_…`) in the database, one text column.
    var internalTablesQuery: SQLQuery { get }
    /// A table's columns in order: name and declared type, two text columns.
    func columnsQuery(_ table: String) -> SQLQuery
    /// Names of a table's indexes, one text column.
    func indexNamesQuery(_ table: String) -> SQLQuery
    /// The plan of `query`, one line of it per row in text column `detail` of `types`.
    func explain(_ query: SQLQuery) -> (query: SQLQuery, types: [SQLColumnType], detail: Int)
    /// What a plan's lines say about reading `table`: whether it reads every row, and whether
    /// it sorts the matches (no index serves the order).
    func planReadsAllRows(_ lines: [String], table: String, alias: String) -> Bool
    func planSorts(_ lines: [String]) -> Bool
    /// Whether the plan reads rows through an index and then drops those failing a condition
    /// on one of `fields` (the index serves only part of the filter).
    func planFiltersAfterIndex(_ lines: [String], fields: [String]) -> Bool
    /// A table's planner statistics: rows when last analyzed, rows changed since (either may be
    /// null where the engine does not say); fails or returns nothing when there are none.
    func statisticsQuery(_ table: String) -> SQLQuery
}

extension SQLDialect {
    public func quote(_ identifier: String) -> String { quoteIdentifier(identifier) }
    public func systemColumnsDDL() -> String {
        "\(quote("id")) \(columnType(.relation)) PRIMARY KEY NOT NULL, "
            + "\(quote("created_at")) \(columnType(.datetime)) NOT NULL, "
            + "\(quote("updated_at")) \(columnType(.datetime)) NOT NULL, "
            + "\(quote("version")) \(columnType(.integer)) NOT NULL"
    }
}

public struct SQLiteDialect: SQLDialect {
    public init() {}
    public var internalTablesQuery: SQLQuery {
        SQLQuery(sql: #"SELECT "name" FROM "sqlite_master" WHERE "type" = 'table' AND "name" LIKE '\_basalt\_%' ESCAPE '\' ORDER BY "name""#)
    }
    public func columnsQuery(_ table: String) -> SQLQuery {
        SQLQuery(sql: #"SELECT "name", "type" FROM pragma_table_info(?1) ORDER BY "cid""#, binds: [.text(table)])
    }
    public func indexNamesQuery(_ table: String) -> SQLQuery {
        SQLQuery(sql: #"SELECT "name" FROM "sqlite_master" WHERE "type" = 'index' AND "tbl_name" = ?1"#, binds: [.text(table)])
    }
    public func explain(_ query: SQLQuery) -> (query: SQLQuery, types: [SQLColumnType], detail: Int) {
        (SQLQuery(sql: "EXPLAIN QUERY PLAN " + query.sql, binds: query.binds), [.int, .int, .int, .text], 3)
    }
    /// `SCAN posts` reads the table; `SCAN posts USING INDEX …` walks an index in order (a
    /// LIMIT stops it early) and `SEARCH …` seeks.
    public func planReadsAllRows(_ lines: [String], table: String, alias: String) -> Bool {
        // SQLite names the table by its alias when the query gives one (`SCAN t`).
        [table, alias].contains { name in
            lines.contains { $0 == "SCAN \(name)" || $0.hasPrefix("SCAN \(name) ") && !$0.contains("USING") }
        }
    }
    public func planSorts(_ lines: [String]) -> Bool { lines.contains { $0.contains("USE TEMP B-TREE FOR") && $0.contains("ORDER BY") } }
    /// `SEARCH posts USING INDEX bx_… (status=?)` seeks on `status` only: a condition on `views`
    /// is checked row by row.
    public func planFiltersAfterIndex(_ lines: [String], fields: [String]) -> Bool {
        for line in lines where line.hasPrefix("SEARCH ") || line.hasPrefix("SCAN ") {
            guard let open = line.lastIndex(of: "("), line.contains("INDEX") else { continue }
            let used = line[open...]
            if fields.contains(where: { f in !["=", ">", "<"].contains { used.contains(f + $0) } }) { return true }
        }
        return false
    }
    public func statisticsQuery(_ table: String) -> SQLQuery {
        SQLQuery(
            sql: #"SELECT CAST(substr("stat", 1, instr("stat" || ' ', ' ') - 1) AS INTEGER), NULL FROM "sqlite_stat1" WHERE "tbl" = ?1 LIMIT 1"#,
            binds: [.text(table)]
        )
    }
    public var name: String { "sqlite" }
    public func placeholder(_ index: Int) -> String { "?\(index)" }
    public func columnType(_ type: FieldType) -> String {
        switch type {
        case .integer, .boolean: "INTEGER"
        case .number: "REAL"
        default: "TEXT"
        }
    }
    public func nullSafeEqual(_ a: String, _ b: String) -> String { "(\(a) IS \(b))" }
    public func nullSafeNotEqual(_ a: String, _ b: String) -> String { "(\(a) IS NOT \(b))" }
    public func containsCaseInsensitive(_ a: String, _ b: String) -> String {
        // basalt_lower is registered on every connection: SQLite's lower() folds ASCII only.
        "(instr(basalt_lower(\(a)), basalt_lower(\(b))) > 0)"
    }
    public func orderTerm(_ column: String, descending: Bool) -> String {
        descending ? "\(column) DESC" : "\(column) ASC"  // SQLite already sorts NULL first ascending
    }
    public func indexTerm(_ column: String) -> String { column }
    public var tableSuffix: String { " STRICT, WITHOUT ROWID" }
    public var indexesCarryPrimaryKey: Bool { true }
}

public struct PostgresDialect: SQLDialect {
    public var internalTablesQuery: SQLQuery {
        SQLQuery(
            sql: #"""
                SELECT "table_name"::text FROM information_schema.tables WHERE "table_schema" = current_schema()
                AND "table_type" = 'BASE TABLE' AND "table_name" LIKE '\_basalt\_%' ESCAPE '\' ORDER BY 1
                """#
        )
    }
    public func indexNamesQuery(_ table: String) -> SQLQuery {
        SQLQuery(
            sql: #"SELECT "indexname"::text FROM pg_indexes WHERE "schemaname" = current_schema() AND "tablename" = $1"#,
            binds: [.text(table)]
        )
    }
    public func explain(_ query: SQLQuery) -> (query: SQLQuery, types: [SQLColumnType], detail: Int) {
        (SQLQuery(sql: "EXPLAIN " + query.sql, binds: query.binds), [.text], 0)
    }
    /// `Seq Scan on posts t` (the alias follows the name): `posts_tags` is another table.
    public func planReadsAllRows(_ lines: [String], table: String, alias: String) -> Bool {
        lines.contains { line in
            [table, quote(table)].contains { name in
                guard let r = line.range(of: "Seq Scan on \(name)") else { return false }
                let rest = line[r.upperBound...]
                return rest.isEmpty || rest.first == " "
            }
        }
    }
    public func planSorts(_ lines: [String]) -> Bool {
        lines.contains { $0.trimmingCharacters(in: .whitespaces).hasPrefix("Sort") || $0.contains("->  Sort") }
    }
    /// A `Filter:` line naming one of `fields` (after an index or a scan) drops rows it read.
    public func planFiltersAfterIndex(_ lines: [String], fields: [String]) -> Bool {
        lines.contains { line in
            line.trimmingCharacters(in: .whitespaces).hasPrefix("Filter:") && fields.contains { line.contains(quote($0)) || line.contains("(\($0) ") }
        }
    }
    public func statisticsQuery(_ table: String) -> SQLQuery {
        SQLQuery(
            sql: #"""
                SELECT "n_live_tup", "n_mod_since_analyze" FROM pg_stat_user_tables WHERE "schemaname" = current_schema() AND "relname" = $1
                AND COALESCE("last_analyze", "last_autoanalyze") IS NOT NULL
                """#,
            binds: [.text(table)]
        )
    }
    public func columnsQuery(_ table: String) -> SQLQuery {
        SQLQuery(
            sql: #"""
                SELECT "column_name"::text, "data_type"::text FROM information_schema.columns
                WHERE "table_schema" = current_schema() AND "table_name" = $1 ORDER BY "ordinal_position"
                """#,
            binds: [.text(table)]
        )
    }
    public init() {}
    public var name: String { "postgres" }
    public func placeholder(_ index: Int) -> String { "$\(index)" }
    public func columnType(_ type: FieldType) -> String {
        switch type {
        // COLLATE "C": text compares by code point, as on SQLite and as API.md §3 requires.
        case .text, .email, .url, .select: "TEXT COLLATE \"C\""
        case .integer: "BIGINT"
        case .number: "DOUBLE PRECISION"
        case .boolean: "BOOLEAN"
        case .datetime: "TIMESTAMPTZ"
        case .json: "JSONB"
        case .relation: "UUID"
        }
    }
    public func nullSafeEqual(_ a: String, _ b: String) -> String { "(\(a) IS NOT DISTINCT FROM \(b))" }
    public func nullSafeNotEqual(_ a: String, _ b: String) -> String { "(\(a) IS DISTINCT FROM \(b))" }
    public func containsCaseInsensitive(_ a: String, _ b: String) -> String {
        "(strpos(basalt_lower(\(a)), basalt_lower(\(b))) > 0)"
    }
    public func orderTerm(_ column: String, descending: Bool) -> String {
        descending ? "\(column) DESC NULLS LAST" : "\(column) ASC NULLS FIRST"
    }
    public func indexTerm(_ column: String) -> String { "\(column) ASC NULLS FIRST" }
    public var tableSuffix: String { "" }
    public var indexesCarryPrimaryKey: Bool { false }
}

/// How a dialect changes an existing column's type or foreign key.
public enum ColumnChangeStrategy: Sendable {
    /// SQLite: build the new table, copy, swap (its ALTER TABLE cannot change a column).
    case rebuildTable
    /// PostgreSQL: ALTER COLUMN / constraints in place.
    case alterInPlace
}

extension SQLiteDialect { public var columnChangeStrategy: ColumnChangeStrategy { .rebuildTable } }
extension PostgresDialect { public var columnChangeStrategy: ColumnChangeStrategy { .alterInPlace } }

/// `"name"`, quotes inside doubled. Every statement a request builds quotes its columns, so the
/// common case (no quote inside) does not go through Foundation.
func quoteIdentifier(_ identifier: String) -> String {
    guard identifier.utf8.contains(0x22) else { return "\"" + identifier + "\"" }
    return "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
