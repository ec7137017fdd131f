import BasaltCore
import BasaltStorage
import Foundation
import PostgresNIO

// Values in and out of PostgreSQL, and its errors in the storage layer's terms.
extension PostgresStore {
    // MARK: - Values

    static func postgresQuery(_ query: SQLQuery) throws -> PostgresQuery {
        var binds = PostgresBindings(capacity: query.binds.count)
        for v in query.binds {
            switch v {
            case .null: binds.appendNull()
            case .int(let i): binds.append(i)
            case .double(let d): binds.append(d)
            case .text(let s): binds.append(s)
            case .bool(let b): binds.append(b)
            case .timestamp(let t): binds.append(TimestampBind(t))
            case .uuid(let s):
                if let u = UUID(uuidString: s) {
                    binds.append(u)
                } else {
                    // Not canonical: let the server parse it and report a typed error (22P02).
                    binds.append(UUIDText(text: s))
                }
            case .json(let s): binds.append(JSONBText(text: s))
            }
        }
        return PostgresQuery(unsafeSQL: query.sql, binds: binds)
    }

    /// Milliseconds between the Unix epoch and PostgreSQL's (2000-01-01T00:00:00Z).
    static let postgresEpochMilliseconds: Int64 = 946_684_800_000

    /// `timestamptz` in binary form, computed in integers: Foundation `Date` goes through `Double`
    /// and can land a microsecond short, which would read back one millisecond early.
    struct TimestampBind: PostgresNonThrowingEncodable {
        static var psqlType: PostgresDataType { .timestamptz }
        static var psqlFormat: PostgresFormat { .binary }
        let microseconds: Int64
        init(_ t: Timestamp) {
            microseconds = (t.millisecondsSinceEpoch - PostgresStore.postgresEpochMilliseconds) * 1000
        }
        func encode<E: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<E>) {
            buffer.writeInteger(microseconds)
        }
    }

    /// JSON text bound as `jsonb` (binary format: version byte 1, then the text).
    struct JSONBText: PostgresNonThrowingEncodable {
        static var psqlType: PostgresDataType { .jsonb }
        static var psqlFormat: PostgresFormat { .binary }
        let text: String
        func encode<E: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<E>) {
            buffer.writeInteger(UInt8(1))
            buffer.writeString(text)
        }
    }

    /// A `uuid` parameter in text format, parsed by the server.
    struct UUIDText: PostgresNonThrowingEncodable {
        static var psqlType: PostgresDataType { .uuid }
        static var psqlFormat: PostgresFormat { .text }
        let text: String
        func encode<E: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<E>) {
            buffer.writeString(text)
        }
    }

    static func decode(_ row: PostgresRow, _ types: [SQLColumnType]) throws -> SQLRow {
        var out = SQLRow()
        out.reserveCapacity(types.count)
        var cells = row.makeIterator()
        for t in types {
            guard let cell = cells.next() else {
                throw StoreError.other(underlying: "query returned \(row.count) columns, expected \(types.count)")
            }
            out.append(try decode(cell, as: t))
        }
        return out
    }

    static func decode(_ cell: PostgresCell, as type: SQLColumnType) throws -> SQLValue {
        guard var b = cell.bytes else { return .null }
        func fail() -> StoreError {
            StoreError.other(
                underlying:
                    "cannot decode column \(cell.columnIndex) (\(cell.columnName)) of type \(cell.dataType) as \(type)"
            )
        }
        if cell.format == .text {
            // Not requested by PostgresNIO, which asks for binary results; kept for completeness.
            guard let s = b.readString(length: b.readableBytes) else { throw fail() }
            switch type {
            case .int: return try Int64(s).map { .int($0) } ?? { throw fail() }()
            case .double: return try Double(s).map { .double($0) } ?? { throw fail() }()
            case .bool: return .bool(s == "t" || s == "true")
            case .text: return .text(s)
            case .uuid: return .uuid(s.lowercased())
            case .json: return .json(s)
            case .timestamp: return try Timestamp(rfc3339: s).map { .timestamp($0) } ?? { throw fail() }()
            }
        }
        func integer() -> Int64? {
            switch (cell.dataType, b.readableBytes) {
            case (.int8, 8): b.readInteger(as: Int64.self)
            case (.int4, 4): b.readInteger(as: Int32.self).map(Int64.init)
            case (.int2, 2): b.readInteger(as: Int16.self).map(Int64.init)
            default: nil
            }
        }
        func floating() -> Double? {
            switch (cell.dataType, b.readableBytes) {
            case (.float8, 8): b.readInteger(as: UInt64.self).map { Double(bitPattern: $0) }
            case (.float4, 4): b.readInteger(as: UInt32.self).map { Double(Float(bitPattern: $0)) }
            default: nil
            }
        }
        func numeric() -> String? {
            // SUM over BIGINT and similar aggregates return NUMERIC.
            guard cell.dataType == .numeric, let d = try? cell.decode(Decimal.self) else { return nil }
            return d.description
        }
        switch type {
        case .int:
            if let i = integer() { return .int(i) }
            if cell.dataType == .bool { return .int(b.readInteger(as: UInt8.self) == 0 ? 0 : 1) }
            if let d = floating(), d.isFinite, let i = Int64(exactly: d.rounded(.towardZero)) { return .int(i) }
            if let s = numeric(), let i = Int64(s.split(separator: ".", maxSplits: 1).first ?? "") { return .int(i) }
            throw fail()
        case .double:
            if let d = floating() { return .double(d) }
            if let i = integer() { return .double(Double(i)) }
            if let s = numeric(), let d = Double(s) { return .double(d) }
            throw fail()
        case .bool:
            if cell.dataType == .bool, b.readableBytes == 1, let v = b.readInteger(as: UInt8.self) {
                return .bool(v != 0)
            }
            if let i = integer() { return .bool(i != 0) }
            throw fail()
        case .text:
            switch cell.dataType {
            case .text, .varchar, .bpchar, .name, .json:
                return .text(b.readString(length: b.readableBytes) ?? "")
            case .jsonb:
                guard b.readInteger(as: UInt8.self) == 1 else { throw fail() }
                return .text(b.readString(length: b.readableBytes) ?? "")
            case .uuid:
                guard let u = try? cell.decode(UUID.self) else { throw fail() }
                return .text(u.uuidString.lowercased())
            default:
                if let i = integer() { return .text(String(i)) }
                if let s = numeric() { return .text(s) }
                // Enums, citext and other types whose binary form is their text.
                guard let s = b.readString(length: b.readableBytes) else { throw fail() }
                return .text(s)
            }
        case .timestamp:
            switch cell.dataType {
            case .timestamptz, .timestamp:
                guard b.readableBytes == 8, let us = b.readInteger(as: Int64.self) else { throw fail() }
                return .timestamp(Timestamp(millisecondsSinceEpoch: floorDivide(us, 1000) + postgresEpochMilliseconds))
            case .text, .varchar:
                guard let s = b.readString(length: b.readableBytes), let t = Timestamp(rfc3339: s) else { throw fail() }
                return .timestamp(t)
            default:
                // Basalt's own tables keep Unix milliseconds in BIGINT columns.
                if let i = integer() { return .timestamp(Timestamp(millisecondsSinceEpoch: i)) }
                throw fail()
            }
        case .uuid:
            switch cell.dataType {
            case .uuid:
                guard let u = try? cell.decode(UUID.self) else { throw fail() }
                return .uuid(u.uuidString.lowercased())
            case .text, .varchar, .bpchar, .name:
                return .uuid(b.readString(length: b.readableBytes) ?? "")
            default: throw fail()
            }
        case .json:
            switch cell.dataType {
            case .jsonb:
                guard b.readInteger(as: UInt8.self) == 1 else { throw fail() }
                return .json(b.readString(length: b.readableBytes) ?? "")
            case .json, .text, .varchar:
                return .json(b.readString(length: b.readableBytes) ?? "")
            default: throw fail()
            }
        }
    }

    static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    // MARK: - Errors

    /// Driver errors → `StoreError`, the driver's text kept in `underlying` for logs only.
    static func translate(_ error: any Error, tag: Int) -> StoreError {
        if let e = error as? StoreError { return e }
        if let e = error as? PostgresTransactionError {
            if let inner = e.closureError ?? e.commitError ?? e.beginError { return translate(inner, tag: tag) }
        }
        let underlying = String(reflecting: error)
        if let e = error as? PSQLError {
            if e.code == .server {
                let state = e.serverInfo?[.sqlState] ?? ""
                switch state {
                case "23505":
                    let constraint = e.serverInfo?[.constraintName]
                    let table = e.serverInfo?[.tableName]
                    var columns: [String] = constraint.map { [$0] } ?? []
                    // The primary key's constraint is `<table>_pkey`; every Basalt table's key is `id`.
                    if let constraint, let table, constraint == table + "_pkey" { columns = ["id"] }
                    return .uniqueViolation(table: table, columns: columns, tag: tag, underlying: underlying)
                case "23503":
                    return .foreignKeyViolation(tag: tag, underlying: underlying)
                default:
                    // 08: connection exception; 53: insufficient resources; 57P0x: shutting down or
                    // not yet accepting; 40001/40P01: serialization failure and deadlock, safe to retry.
                    if state.hasPrefix("08") || state.hasPrefix("53") || state.hasPrefix("57P")
                        || state == "40001" || state == "40P01"
                    {
                        return .unavailable(underlying: underlying)
                    }
                    return .other(underlying: underlying)
                }
            }
            switch e.code {
            case .messageDecodingFailure, .unexpectedBackendMessage, .invalidCommandTag, .tooManyParameters:
                return .other(underlying: underlying)
            default:
                // Connection, TLS, authentication, pool shut down, cancelled.
                return .unavailable(underlying: underlying)
            }
        }
        if error is IOError || error is ChannelError || error is CancellationError
            || underlying.contains("ConnectionPoolError")
        {
            // ConnectionPoolError (`connectionCreationCircuitBreakerTripped`) lives in a module we do
            // not import; it means the server could not be reached for a while.
            return .unavailable(underlying: underlying)
        }
        return .other(underlying: underlying)
    }
}
