public import BasaltCore

/// How a relation hop (`author.email`) reads its target record.
public enum HopAccess: Sendable {
    /// The target as stored: access rules are the schema's, not the caller's (API.md §9).
    case stored
    /// Only targets these predicates admit (the caller's `view` grants); others read as absent.
    case visible([FilterExpr])
    /// No target is visible: every field reached through the hop is null.
    case hidden
}

/// Compiles a checked filter to a SQL predicate with bound parameters — the one implementation
/// of the filter language's semantics, used for lists, views, totals, expansions and, inside a
/// write's own transaction, for the rules of create, update and delete (API.md §3, §9).
///
/// The filter language is two-valued, SQL is three-valued. Comparisons in positive position may
/// stay three-valued (AND/OR are monotone, so NULL acts as false in a WHERE), which keeps them
/// index-friendly; under an odd number of `!` a comparison with a nullable side is guarded with
/// `IS NOT NULL` so that `!(views < 5)` matches nulls. Literals are only ever bound.
public struct FilterCompiler: Sendable {
    public let schema: Schema
    public let dialect: any SQLDialect
    /// Values of `@auth.*` references, bound at request time.
    public var authValues: [String: FilterLiteral]
    /// Where the record's own fields come from.
    public var record: RecordSource = .table("t")
    /// Values of `@new.*` (create and update rules): the record after the write.
    public var newValues: [String: SQLValue] = [:]
    /// How hops in the compiled expression read their targets; `nil` is `.stored`. A caller's
    /// filter sets it from the caller's `view` grants, so that a filter never tells a right guess
    /// about a hidden value from a wrong one.
    public var hopAccess: (@Sendable (_ collection: String) -> HopAccess)?

    /// A record's fields: a row of a table (by alias), or values not stored yet (a create rule).
    public enum RecordSource: Sendable {
        case table(String)
        case values([String: SQLValue])
    }

    public init(schema: Schema, dialect: any SQLDialect, authValues: [String: FilterLiteral] = [:]) {
        self.schema = schema
        self.dialect = dialect
        self.authValues = authValues
    }

    /// Appends `expr` as a predicate on the record.
    public func compile(_ expr: FilterExpr, into b: inout SQLBuilder) {
        emit(expr, negated: false, depth: 0, into: &b)
    }

    /// A copy that reads fields from the table alias `alias`.
    public func reading(_ alias: String) -> FilterCompiler {
        var c = self
        c.record = .table(alias)
        return c
    }

    func emit(_ expr: FilterExpr, negated: Bool, depth: Int, into b: inout SQLBuilder) {
        switch expr {
        case .and(let parts), .or(let parts):
            let isAnd: Bool = if case .and = expr { true } else { false }
            if parts.isEmpty {
                b.append(isAnd ? "(1=1)" : "(1=0)")
                return
            }
            b.append("(")
            for (i, p) in parts.enumerated() {
                if i > 0 { b.append(isAnd ? " AND " : " OR ") }
                emit(p, negated: negated, depth: depth, into: &b)
            }
            b.append(")")
        case .not(let inner):
            b.append("(NOT ")
            emit(inner, negated: !negated, depth: depth, into: &b)
            b.append(")")
        case .constant(let v):
            b.append(v ? "(1=1)" : "(1=0)")
        case .isNull(let operand, let neg):
            let a = render(operand, depth: depth, into: &b)
            b.append("(\(a)\(neg ? " IS NOT NULL" : " IS NULL"))")
        case .inList(let operand, let literals):
            let a = render(operand, depth: depth, into: &b)
            var items: [String] = []
            for l in literals { items.append(placeholder(FilterCompiler.sqlValue(l), into: &b)) }
            let test = "\(a) IN (\(items.joined(separator: ", ")))"
            b.append(negated && isNullable(operand) ? "(\(test) AND \(a) IS NOT NULL)" : "(\(test))")
        case .compare(let l, let op, let r):
            compare(l, op, r, negated: negated, depth: depth, into: &b)
        }
    }

    func compare(_ l: FilterOperand, _ op: FilterOp, _ r: FilterOperand, negated: Bool, depth: Int, into b: inout SQLBuilder) {
        let ln = isNullable(l)
        let rn = isNullable(r)
        // Placeholders are numbered in both dialects, so an operand's text may appear twice.
        let a = render(l, depth: depth, into: &b)
        let c = render(r, depth: depth, into: &b)
        switch op {
        case .eq where ln && rn:
            b.append(dialect.nullSafeEqual(a, c))
        case .ne where ln && rn:
            b.append(dialect.nullSafeNotEqual(a, c))
        case .ne:
            // `x != lit` matches nulls; `(x <> ? OR x IS NULL)` is two-valued and still indexable.
            if ln {
                b.append("(\(a) <> \(c) OR \(a) IS NULL)")
            } else if rn {
                b.append("(\(a) <> \(c) OR \(c) IS NULL)")
            } else {
                b.append("(\(a) <> \(c))")
            }
        case .notContains:
            var terms: [String] = []
            if ln { terms.append("\(a) IS NOT NULL") }
            if rn { terms.append("\(c) IS NOT NULL") }
            terms.append("NOT " + dialect.containsCaseInsensitive(a, c))
            b.append("(" + terms.joined(separator: " AND ") + ")")
        default:
            var terms: [String]
            switch op {
            case .eq: terms = ["\(a) = \(c)"]
            case .lt: terms = ["\(a) < \(c)"]
            case .le: terms = ["\(a) <= \(c)"]
            case .gt: terms = ["\(a) > \(c)"]
            case .ge: terms = ["\(a) >= \(c)"]
            case .contains: terms = [dialect.containsCaseInsensitive(a, c)]
            case .ne, .notContains: preconditionFailure("handled above")
            }
            if negated {
                if ln { terms.append("\(a) IS NOT NULL") }
                if rn { terms.append("\(c) IS NOT NULL") }
            }
            b.append("(" + terms.joined(separator: " AND ") + ")")
        }
    }

    /// An operand's SQL text. Values are bound into `b` now (numbered placeholders, so the text
    /// may be placed anywhere and repeated); only the text is returned.
    func render(_ o: FilterOperand, depth: Int, into b: inout SQLBuilder) -> String {
        switch o {
        case .field(let path):
            let own = recordField(path.field, into: &b)
            guard let hop = path.hop else { return own }
            return hopSQL(hop.collection, hop.field, key: own, access: hopAccess?(hop.collection) ?? .stored, depth: depth, into: &b)
        case .literal(let l):
            return placeholder(FilterCompiler.sqlValue(l), into: &b)
        case .auth(let name, _):
            return placeholder(FilterCompiler.sqlValue(authValues[name] ?? .null), auth: name, into: &b)
        case .new(let path):
            let own = placeholder(newValues[path.field] ?? .null, into: &b)
            guard let hop = path.hop else { return own }
            // `@new.board.owner`: the record the incoming value names, as stored.
            return hopSQL(hop.collection, hop.field, key: own, access: .stored, depth: depth, into: &b)
        }
    }

    func recordField(_ name: String, into b: inout SQLBuilder) -> String {
        switch record {
        case .table(let alias): return "\(alias).\(dialect.quote(name))"
        case .values(let values): return placeholder(values[name] ?? .null, into: &b)
        }
    }

    /// One hop: a correlated scalar subquery on the target's primary key, narrowed to the targets
    /// `access` admits.
    func hopSQL(_ collection: String, _ field: String, key: String, access: HopAccess, depth: Int, into b: inout SQLBuilder) -> String {
        let alias = "h\(depth + 1)"
        var sub = "(SELECT \(alias).\(dialect.quote(field)) FROM \(dialect.quote(collection)) \(alias) WHERE \(alias).\(dialect.quote("id")) = \(key)"
        switch access {
        case .stored:
            break
        case .hidden:
            return "NULL"
        case .visible(let predicates):
            // The target's own rules read their hops as stored: no recursion into the caller's view.
            var inner = self
            inner.record = .table(alias)
            inner.hopAccess = nil
            let start = b.sql.count
            inner.emit(predicates.count == 1 ? predicates[0] : .or(predicates), negated: false, depth: depth + 1, into: &b)
            sub += " AND " + String(b.sql.dropFirst(start))
            b.truncate(to: start)
        }
        return sub + ")"
    }

    /// A bound value's placeholder; a SQL `NULL` for a null (PostgreSQL cannot type an untyped
    /// null parameter compared with another).
    func placeholder(_ v: SQLValue, auth name: String? = nil, into b: inout SQLBuilder) -> String {
        if v.isNull { return "NULL" }
        let start = b.sql.count
        b.bind(v, auth: name)
        let text = String(b.sql.dropFirst(start))
        b.truncate(to: start)
        return text
    }

    func isNullable(_ o: FilterOperand) -> Bool {
        switch o {
        case .field(let p):
            if p.hop != nil { return true }
            if case .values(let values) = record { return (values[p.field] ?? .null).isNull }
            return p.nullable
        case .literal(let l): return l == .null
        case .auth(let n, _): return (authValues[n] ?? .null) == .null
        case .new(let p): return p.hop != nil || (newValues[p.field] ?? .null).isNull
        }
    }

    public static func sqlValue(_ l: FilterLiteral) -> SQLValue {
        switch l {
        case .null: .null
        case .bool(let v): .bool(v)
        case .int(let v): .int(v)
        case .double(let v): .double(v)
        case .string(let s): .text(s)
        case .timestamp(let t): .timestamp(t)
        case .uuid(let u): .uuid(u)
        }
    }
}

extension SQLBuilder {
    /// Drops text back to `count` characters, keeping the binds it introduced: placeholders are
    /// numbered, so an operand can be rendered once and its text placed elsewhere.
    mutating func truncate(to count: Int) {
        sql = String(sql.prefix(count))
    }
}
