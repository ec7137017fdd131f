public import BasaltCore

/// A checked filter with the compiler that gives it meaning (whose `@auth` values, which record,
/// how its hops read): a condition on the row `t` of a `RecordTable` query.
public struct SQLCondition: Sendable {
    enum Form: Sendable {
        case expr(FilterExpr, FilterCompiler)
        case template(SQLTemplate, binds: [SQLValue])
    }
    let form: Form
    public init(_ expr: FilterExpr, _ compiler: FilterCompiler) { form = .expr(expr, compiler) }
    /// A compiled rule with a caller's values (`template.binds(…)` for a caller it fits).
    public init(_ template: SQLTemplate, binds: [SQLValue]) { form = .template(template, binds: binds) }
    /// `head` (ending in one placeholder, the id's) then this condition, in one piece when it is
    /// a compiled rule; nil otherwise.
    func following(_ head: String, id: String) -> SQLQuery? {
        guard case .template(let t, let binds) = form else { return nil }
        var values: [SQLValue] = [.uuid(id)]
        values += binds
        return SQLQuery(sql: head + t.textAfterOneBind, binds: values)
    }

    func compile(into b: inout SQLBuilder) {
        switch form {
        case .expr(let expr, let compiler): compiler.compile(expr, into: &b)
        case .template(let t, let binds): b.append(t, binds: binds)
        }
    }
}

/// SQL for one collection's table: column lists, CRUD statements, list queries with keyset
/// pagination. Built once per schema version and reused by every request.
public struct RecordTable: Sendable {
    /// The alias every query of a collection's table gives it (plans name the table by it).
    public static let alias = "t"

    /// A collection's columns and how each is read: system columns, then fields in schema order.
    public static func columns(of c: CollectionSchema) -> [(name: String, type: SQLColumnType)] {
        [("id", .uuid), ("created_at", .timestamp), ("updated_at", .timestamp), ("version", .int)]
            + c.fields.map { ($0.name, SQLColumnType($0.type)) }
    }
    public let collection: CollectionSchema
    public let dialect: any SQLDialect
    /// System columns then declared fields, in schema order.
    public let columns: [String]
    public let types: [SQLColumnType]
    public let quotedTable: String
    let selectList: String
    /// The columns as a `RETURNING` list.
    let returningList: String
    /// `SELECT … WHERE id = ?` is the hottest statement; its text is built once.
    let selectByIDSQL: String
    /// A create inserts every column in order: that `INSERT … RETURNING` is built once too.
    let insertAllSQL: String
    /// The heads of a read and a probe of one record under a condition (a compiled rule's text
    /// follows them as it is).
    let selectOneAndSQL: String
    let probeOneAndSQL: String

    public init(collection: CollectionSchema, dialect: any SQLDialect) {
        self.collection = collection
        self.dialect = dialect
        let all = Self.columns(of: collection)
        columns = all.map(\.name)
        types = all.map(\.type)
        quotedTable = dialect.quote(collection.name)
        selectList = columns.map { "t." + dialect.quote($0) }.joined(separator: ", ")
        returningList = columns.map { dialect.quote($0) }.joined(separator: ", ")
        selectByIDSQL = "SELECT \(selectList) FROM \(quotedTable) t WHERE t.\(dialect.quote("id")) = \(dialect.placeholder(1))"
        var insert = SQLBuilder(dialect)
        Self.insert(into: &insert, table: quotedTable, values: all.map { ($0.name, SQLValue.null) }, returning: returningList)
        insertAllSQL = insert.sql
        let id = "t.\(dialect.quote("id"))"
        selectOneAndSQL = "SELECT \(selectList) FROM \(quotedTable) t WHERE \(id) IN (\(dialect.placeholder(1))) AND "
        probeOneAndSQL = "SELECT 1 FROM \(quotedTable) t WHERE \(id) = \(dialect.placeholder(1)) AND "
    }

    public func columnIndex(_ name: String) -> Int? { columns.firstIndex(of: name) }

    public func selectByID(_ id: String) -> SQLQuery {
        SQLQuery(sql: selectByIDSQL, binds: [.uuid(id)])
    }

    /// Rows with these ids (expand: one query per relation level, never one per record).
    public func selectByIDs(_ ids: [String], where condition: SQLCondition? = nil) -> SQLQuery {
        if ids.count == 1, let q = condition?.following(selectOneAndSQL, id: ids[0]) { return q }
        var b = SQLBuilder(dialect)
        b.append("SELECT \(selectList) FROM \(quotedTable) t WHERE t.\(dialect.quote("id")) IN (")
        for (i, id) in ids.enumerated() {
            if i > 0 { b.append(", ") }
            b.bind(.uuid(id))
        }
        b.append(")")
        if let condition {
            b.append(" AND ")
            condition.compile(into: &b)
        }
        return b.query
    }

    /// `SELECT 1` when record `id` exists and satisfies `condition` (a guard in a write's
    /// transaction, or a visibility probe).
    public func probe(_ id: String, where condition: SQLCondition?) -> SQLQuery {
        if let q = condition?.following(probeOneAndSQL, id: id) { return q }
        var b = SQLBuilder(dialect)
        b.append("SELECT 1 FROM \(quotedTable) t WHERE t.\(dialect.quote("id")) = ")
        b.bind(.uuid(id))
        if let condition {
            b.append(" AND ")
            condition.compile(into: &b)
        }
        return b.query
    }

    /// `SELECT 1` when `condition` holds of a record that is not stored (a create rule, whose
    /// compiler reads the record's fields from values).
    public func check(_ condition: SQLCondition) -> SQLQuery {
        var b = SQLBuilder(dialect)
        b.append("SELECT 1 WHERE ")
        condition.compile(into: &b)
        return b.query
    }

    /// `SELECT 1` when every condition holds (of a record given as values: a realtime event).
    public func check(all conditions: [SQLCondition]) -> SQLQuery {
        var b = SQLBuilder(dialect)
        b.append("SELECT 1 WHERE ")
        for (i, c) in conditions.enumerated() {
            if i > 0 { b.append(" AND ") }
            b.append("(")
            c.compile(into: &b)
            b.append(")")
        }
        return b.query
    }

    public func insert(_ values: [(String, SQLValue)]) -> SQLQuery {
        if values.count == columns.count, zip(values, columns).allSatisfy({ $0.0 == $1 }) {
            return SQLQuery(sql: insertAllSQL, binds: values.map(\.1))
        }
        var b = SQLBuilder(dialect)
        Self.insert(into: &b, table: quotedTable, values: values, returning: returningList)
        return b.query
    }

    static func insert(into b: inout SQLBuilder, table: String, values: [(String, SQLValue)], returning: String) {
        b.append("INSERT INTO \(table) (")
        b.append(values.map { b.dialect.quote($0.0) }.joined(separator: ", "))
        b.append(") VALUES (")
        b.bindList(values.map(\.1))
        b.append(") RETURNING \(returning)")
    }

    /// `UPDATE … WHERE id = ? AND version = ?`: optimistic concurrency; zero rows means the record
    /// changed or vanished since it was read.
    public func update(id: String, expectedVersion: Int64, values: [(String, SQLValue)], now: Timestamp) -> SQLQuery {
        var b = SQLBuilder(dialect)
        b.append("UPDATE \(quotedTable) SET ")
        for (name, v) in values {
            b.append("\(dialect.quote(name)) = ")
            b.bind(v)
            b.append(", ")
        }
        b.append("\(dialect.quote("updated_at")) = ")
        b.bind(.timestamp(now))
        b.append(", \(dialect.quote("version")) = \(dialect.quote("version")) + 1 WHERE \(dialect.quote("id")) = ")
        b.bind(.uuid(id))
        b.append(" AND \(dialect.quote("version")) = ")
        b.bind(.int(expectedVersion))
        b.append(" RETURNING \(returningList)")
        return b.query
    }

    public func delete(id: String, expectedVersion: Int64) -> SQLQuery {
        var b = SQLBuilder(dialect)
        b.append("DELETE FROM \(quotedTable) WHERE \(dialect.quote("id")) = ")
        b.bind(.uuid(id))
        b.append(" AND \(dialect.quote("version")) = ")
        b.bind(.int(expectedVersion))
        b.append(" RETURNING \(dialect.quote("id"))")
        return b.query
    }

    /// Nulls a `set_null` relation pointing at `id`, bumping each changed record's version.
    public func nullify(field: String, pointingAt id: String, now: Timestamp) -> SQLQuery {
        var b = SQLBuilder(dialect)
        let f = dialect.quote(field)
        b.append("UPDATE \(quotedTable) SET \(f) = NULL, \(dialect.quote("updated_at")) = ")
        b.bind(.timestamp(now))
        b.append(", \(dialect.quote("version")) = \(dialect.quote("version")) + 1 WHERE \(f) = ")
        b.bind(.uuid(id))
        return b.query
    }

    /// `SELECT 1` when no record of this table references `id` through `field` (a guard in the
    /// transaction of a delete, behind a `restrict` relation).
    public func unreferenced(field: String, id: String) -> SQLQuery {
        var b = SQLBuilder(dialect)
        b.append("SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM \(quotedTable) WHERE \(dialect.quote(field)) = ")
        b.bind(.uuid(id))
        b.append(")")
        return b.query
    }

    public struct SortKey: Sendable, Equatable {
        public var field: String
        public var descending: Bool
        public var nullable: Bool
        public var type: SQLColumnType
        public init(field: String, descending: Bool, nullable: Bool, type: SQLColumnType) {
            self.field = field
            self.descending = descending
            self.nullable = nullable
            self.type = type
        }
    }

    /// A page of a list: `WHERE predicates [AND after-cursor] ORDER BY keys LIMIT n`.
    /// `after` holds the previous page's last row's values of `sort` (id included, last).
    public func list(where conditions: [SQLCondition], sort: [SortKey], after: [SQLValue]?, limit: Int) -> SQLQuery {
        var b = SQLBuilder(dialect)
        b.append("SELECT \(selectList) FROM \(quotedTable) t")
        var first = true
        func and() {
            b.append(first ? " WHERE " : " AND ")
            first = false
        }
        for c in conditions {
            and()
            c.compile(into: &b)
        }
        if let after {
            and()
            keysetCondition(sort: sort, after: after, into: &b)
        }
        b.append(" ORDER BY ")
        b.append(sort.map { dialect.orderTerm("t." + dialect.quote($0.field), descending: $0.descending) }.joined(separator: ", "))
        b.append(" LIMIT \(limit)")
        return b.query
    }

    public func count(where conditions: [SQLCondition]) -> SQLQuery {
        var b = SQLBuilder(dialect)
        b.append("SELECT COUNT(*) FROM \(quotedTable) t")
        for (i, c) in conditions.enumerated() {
            b.append(i == 0 ? " WHERE " : " AND ")
            c.compile(into: &b)
        }
        return b.query
    }

    /// Rows strictly after `after` in the order of `sort`, with nulls as the smallest value.
    func keysetCondition(sort: [SortKey], after: [SQLValue], into b: inout SQLBuilder) {
        let direction = sort.first?.descending ?? false
        if sort.allSatisfy({ !$0.nullable && $0.descending == direction }) {
            // Row-value comparison: both engines can serve it straight from an index.
            b.append("(" + sort.map { "t." + dialect.quote($0.field) }.joined(separator: ", ") + ")")
            b.append(direction ? " < (" : " > (")
            for (i, v) in after.enumerated() {
                if i > 0 { b.append(", ") }
                b.bind(v)
            }
            b.append(")")
            return
        }
        // General form: k1 after v1 OR (k1 = v1 AND (k2 after v2 OR (…))).
        func term(_ i: Int) {
            let key = sort[i]
            let col = "t." + dialect.quote(key.field)
            let v = after[i]
            b.append("(")
            if key.descending {
                if v.isNull {
                    b.append("1=0")
                } else {
                    b.append("(\(col) < ")
                    b.bind(v)
                    b.append(key.nullable ? " OR \(col) IS NULL)" : ")")
                }
            } else {
                if v.isNull {
                    b.append("\(col) IS NOT NULL")
                } else {
                    b.append("\(col) > ")
                    b.bind(v)
                }
            }
            if i + 1 < sort.count {
                b.append(" OR (")
                if v.isNull {
                    b.append("\(col) IS NULL")
                } else {
                    b.append("\(col) = ")
                    b.bind(v)
                }
                b.append(" AND ")
                term(i + 1)
                b.append(")")
            }
            b.append(")")
        }
        term(0)
    }
}

extension SQLValue {
    /// A validated JSON field value as SQL.
    public init(json: JSONValue, type: FieldType) {
        switch (type, json) {
        case (_, .null): self = .null
        case (.integer, .int(let i)): self = .int(i)
        case (.integer, let v): self = v.integerValue.map { .int($0) } ?? .null
        case (.number, let v): self = v.numberValue.map { .double($0) } ?? .null
        case (.boolean, .bool(let b)): self = .bool(b)
        case (.datetime, .string(let s)): self = Timestamp(rfc3339: s).map { .timestamp($0) } ?? .null
        case (.json, let v): self = .json(v.serialized())
        case (.relation, .string(let s)): self = .uuid(s)
        case (_, .string(let s)): self = .text(s)
        default: self = .null
        }
    }

    /// A stored value as JSON.
    public var json: JSONValue {
        switch self {
        case .null: .null
        case .int(let i): .int(i)
        case .double(let d): .double(d)
        case .text(let s), .uuid(let s): .string(s)
        case .bool(let b): .bool(b)
        case .timestamp(let t): .string(t.rfc3339)
        case .json(let s): (try? JSONValue.parse(s)) ?? .null
        }
    }
}
