public import BasaltCore

/// A value on its way to or from SQL. Backends bind each case in their native type
/// (SQLite: timestamps as fixed-width RFC 3339 text, booleans as 0/1; PostgreSQL: timestamptz,
/// boolean, uuid, jsonb).
public enum SQLValue: Sendable, Equatable, Hashable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case bool(Bool)
    case timestamp(Timestamp)
    case uuid(String)
    /// JSON document text.
    case json(String)

    public var isNull: Bool { if case .null = self { return true } else { return false } }
    public var text: String? {
        switch self {
        case .text(let s), .uuid(let s), .json(let s): s
        default: nil
        }
    }
    public var int: Int64? {
        switch self {
        case .int(let i): i
        case .bool(let b): b ? 1 : 0
        default: nil
        }
    }
}

/// How a result column is decoded. The raw values name the types in backup files.
public enum SQLColumnType: String, Sendable, Equatable {
    case int, double, text, bool, timestamp, uuid, json

    public init(_ type: FieldType) {
        switch type {
        case .text, .email, .url, .select: self = .text
        case .integer: self = .int
        case .number: self = .double
        case .boolean: self = .bool
        case .datetime: self = .timestamp
        case .json: self = .json
        case .relation: self = .uuid
        }
    }
}

/// SQL text with its bound values. Values never appear in `sql`.
public struct SQLQuery: Sendable, Equatable, CustomStringConvertible {
    public var sql: String
    public var binds: [SQLValue]
    public init(sql: String, binds: [SQLValue] = []) {
        self.sql = sql
        self.binds = binds
    }
    public var description: String { sql }
}

/// Builds SQL text and its binds together, writing placeholders in the dialect's form.
public struct SQLBuilder {
    public let dialect: any SQLDialect
    public internal(set) var sql: String = ""
    public internal(set) var binds: [SQLValue] = []

    /// Compiling an `SQLTemplate`: placeholders are written as markers it can find again, and
    /// each bind remembers the `@auth.*` name it came from.
    var marksPlaceholders = false
    var bindAuthNames: [String?] = []

    public init(_ dialect: any SQLDialect) { self.dialect = dialect }

    public mutating func append(_ text: String) { sql += text }
    /// Appends a placeholder bound to `value`.
    public mutating func bind(_ value: SQLValue) { bind(value, auth: nil) }

    mutating func bind(_ value: SQLValue, auth name: String?) {
        binds.append(value)
        guard marksPlaceholders else {
            sql += dialect.placeholder(binds.count)
            return
        }
        bindAuthNames.append(name)
        sql.unicodeScalars.append(Unicode.Scalar(Self.placeholderStart))
        sql += String(binds.count)
        sql.unicodeScalars.append(Unicode.Scalar(Self.placeholderEnd))
    }
    public mutating func identifier(_ name: String) { sql += dialect.quote(name) }
    /// Appends `values` as comma-separated placeholders (an INSERT's `VALUES (…)` list).
    public mutating func bindList(_ values: [SQLValue]) {
        for (i, v) in values.enumerated() {
            if i > 0 { append(", ") }
            bind(v)
        }
    }
    public var query: SQLQuery { SQLQuery(sql: sql, binds: binds) }
}

/// A piece of a query written inline: SQL text (a `String`) or a value to bind (an `SQLValue`).
/// Only these two conform, so a value of any other type cannot slip into a query as text.
public protocol SQLFragment: Sendable {}
extension String: SQLFragment {}
extension SQLValue: SQLFragment {}

extension SQLQuery {
    /// `SQLQuery.build(dialect, "SELECT … WHERE \"id\" = ", SQLValue.text(id))`: text as written,
    /// values as bound parameters.
    public static func build(_ dialect: any SQLDialect, _ parts: [any SQLFragment]) -> SQLQuery {
        var b = SQLBuilder(dialect)
        for p in parts {
            if let v = p as? SQLValue { b.bind(v) } else if let s = p as? String { b.append(s) }
        }
        return b.query
    }
}

extension SQLValue {
    /// The value as JSON that reads back to the same value given its column type: timestamps as
    /// Unix milliseconds, ids and JSON documents as strings. Page cursors and backups carry values so.
    public var portableJSON: JSONValue {
        switch self {
        case .null: .null
        case .int(let i): .int(i)
        case .double(let d): .double(d)
        case .text(let s), .uuid(let s), .json(let s): .string(s)
        case .bool(let b): .bool(b)
        case .timestamp(let t): .int(t.millisecondsSinceEpoch)
        }
    }

    /// Reads `portableJSON` back; nil when `json` is not a value of `type` (ids must be well-formed).
    public init?(portableJSON json: JSONValue, as type: SQLColumnType) {
        if json.isNull {
            self = .null
            return
        }
        let value: SQLValue?
        switch type {
        case .int: value = json.integerValue.map { .int($0) }
        case .double: value = json.numberValue.map { .double($0) }
        case .text: value = json.stringValue.map { .text($0) }
        case .bool: value = json.boolValue.map { .bool($0) }
        case .timestamp: value = json.integerValue.map { .timestamp(Timestamp(millisecondsSinceEpoch: $0)) }
        case .uuid: value = json.stringValue.flatMap(RecordID.normalize).map { .uuid($0) }
        case .json: value = json.stringValue.map { .json($0) }
        }
        guard let value else { return nil }
        self = value
    }
}
