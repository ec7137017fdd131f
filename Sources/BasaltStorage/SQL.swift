import BasaltCore
import Foundation

/// SQL written inline, for Basalt's own tables. Every interpolated value is bound as a parameter;
/// SQL text must be asked for by name (`\(raw:)`, `\(identifier:)`, or another `SQL`):
///
/// ```swift
/// let q: SQL = "UPDATE \"_basalt_sessions\" SET \"revoked_at\" = \(now) WHERE \"id\" = \(id)"
/// try await store.write([SQLStatement(q, store.dialect)])
/// ```
///
/// `now` and `id` reach the database as parameters whatever they hold; a value can never become
/// SQL text by accident, which is the point of the type.
public struct SQL: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    enum Part: Sendable {
        case text(String)
        case value(SQLValue)
        /// A checked filter, compiled (its values bound) when the query is made.
        case condition(SQLCondition)
    }
    var parts: [Part]

    public init(stringLiteral value: String) { parts = [.text(value)] }

    public init(stringInterpolation: StringInterpolation) { parts = stringInterpolation.parts }

    public struct StringInterpolation: StringInterpolationProtocol {
        var parts: [Part] = []
        public init(literalCapacity: Int, interpolationCount: Int) { parts.reserveCapacity(interpolationCount * 2 + 1) }

        public mutating func appendLiteral(_ literal: String) { parts.append(.text(literal)) }
        /// A bound value.
        public mutating func appendInterpolation(_ value: SQLValue) { parts.append(.value(value)) }
        /// Bound as text.
        public mutating func appendInterpolation(_ value: String) { parts.append(.value(.text(value))) }
        /// Bound as text, or NULL.
        public mutating func appendInterpolation(_ value: String?) { parts.append(.value(value.map(SQLValue.text) ?? .null)) }
        /// Bound as an integer.
        public mutating func appendInterpolation(_ value: Int64) { parts.append(.value(.int(value))) }
        /// Bound as an integer, or NULL.
        public mutating func appendInterpolation(_ value: Int64?) { parts.append(.value(value.map(SQLValue.int) ?? .null)) }
        /// Bound as an integer.
        public mutating func appendInterpolation(_ value: Int) { parts.append(.value(.int(Int64(value)))) }
        /// Bound as 0 or 1 (Basalt's own tables keep flags as integers on both backends).
        public mutating func appendInterpolation(_ value: Bool) { parts.append(.value(.int(value ? 1 : 0))) }
        /// A fragment, its values still bound.
        public mutating func appendInterpolation(_ fragment: SQL) { parts += fragment.parts }
        /// A quoted identifier.
        public mutating func appendInterpolation(identifier: String) {
            parts.append(.text(quoteIdentifier(identifier)))
        }
        /// SQL text as written: only for text the program itself made (never a request's value).
        public mutating func appendInterpolation(raw: String) { parts.append(.text(raw)) }
        /// A filter (API.md §3) as a predicate on the row its compiler reads.
        public mutating func appendInterpolation(_ condition: SQLCondition) { parts.append(.condition(condition)) }
    }

    /// Placeholders in `dialect`'s form, values in order.
    public func query(_ dialect: any SQLDialect) -> SQLQuery {
        var b = SQLBuilder(dialect)
        for p in parts {
            switch p {
            case .text(let s): b.append(s)
            case .value(let v): b.bind(v)
            case .condition(let c): c.compile(into: &b)
            }
        }
        return b.query
    }

    /// Values joined with `separator`, each bound (an `IN (…)` or `VALUES (…)` list).
    public static func list(_ values: [SQLValue], separator: String = ", ") -> SQL {
        var out = SQL(stringLiteral: "")
        for (i, v) in values.enumerated() {
            if i > 0 { out.parts.append(.text(separator)) }
            out.parts.append(.value(v))
        }
        return out
    }

    public var description: String {
        parts.map { p in
            switch p {
            case .text(let s): s
            case .value: "?"
            case .condition: "(filter)"
            }
        }.joined()
    }
}

extension SQLStatement {
    public init(_ sql: SQL, _ dialect: any SQLDialect, returning: [SQLColumnType] = [], expect: Expectation = .any, tag: Int = 0) {
        self.init(sql.query(dialect), returning: returning, expect: expect, tag: tag)
    }
}

/// A row of one of Basalt's own tables, read by name rather than by position:
///
/// ```swift
/// struct SessionRow: StoredRow {
///     static let columns: [SQLColumnType] = [.text, .int]
///     var id: String; var expiresAt: Int64
///     init(_ r: inout RowReader) { id = r.text() ?? ""; expiresAt = r.int() ?? 0 }
/// }
/// let rows = try await store.fetch("SELECT \"id\", \"expires_at\" FROM …", as: SessionRow.self)
/// ```
public protocol StoredRow: Sendable {
    /// How each selected column decodes, in `SELECT` order.
    static var columns: [SQLColumnType] { get }
    init(_ reader: inout RowReader)
}

/// Reads a row's columns one after another.
public struct RowReader {
    let row: SQLRow
    var index = 0
    init(_ row: SQLRow) { self.row = row }

    mutating func next() -> SQLValue {
        defer { index += 1 }
        return index < row.count ? row[index] : .null
    }
    public mutating func text() -> String? { next().text }
    public mutating func int() -> Int64? { next().int }
    public mutating func flag() -> Bool { next().int == 1 }
    public mutating func value() -> SQLValue { next() }
}

extension Store {
    /// Rows of `sql` as `Row`s.
    public func fetch<Row: StoredRow>(_ sql: SQL, as: Row.Type) async throws -> [Row] {
        try await fetch(sql.query(dialect), types: Row.columns).map { row in
            var r = RowReader(row)
            return Row(&r)
        }
    }

    /// Rows of positional values, for reads too small to deserve a `StoredRow`.
    public func fetchRows(_ sql: SQL, types: [SQLColumnType]) async throws -> [SQLRow] {
        try await fetch(sql.query(dialect), types: types)
    }

    public func fetchOne<Row: StoredRow>(_ sql: SQL, as type: Row.Type) async throws -> Row? {
        try await fetch(sql, as: type).first
    }

    /// `sql` in this store's dialect, as one statement of a write.
    public func statement(_ sql: SQL, returning: [SQLColumnType] = [], expect: SQLStatement.Expectation = .any) -> SQLStatement {
        SQLStatement(sql, dialect, returning: returning, expect: expect)
    }
}
