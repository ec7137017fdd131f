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
}

extension SQLDialect {
    public func quote(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
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
