public import BasaltCore

/// Compiles a checked filter to a SQL predicate with bound parameters.
///
/// The filter language is two-valued, SQL is three-valued. Comparisons in positive position may
/// stay three-valued (AND/OR are monotone, so NULL acts as false in a WHERE), which keeps them
/// index-friendly; under an odd number of `!` a comparison with a nullable side is guarded with
/// `IS NOT NULL` so that `!(views < 5)` matches nulls. Literals are only ever bound.
public struct FilterCompiler {
    public let schema: Schema
    public let dialect: any SQLDialect
    /// Values of `@auth.*` references, bound at request time.
    public var authValues: [String: FilterLiteral]

    public init(schema: Schema, dialect: any SQLDialect, authValues: [String: FilterLiteral] = [:]) {
        self.schema = schema
        self.dialect = dialect
        self.authValues = authValues
    }

    public func compile(_ expr: FilterExpr, table: String, into b: inout SQLBuilder) {
        emit(expr, table: table, negated: false, into: &b)
    }

    func emit(_ expr: FilterExpr, table: String, negated: Bool, into b: inout SQLBuilder) {
        switch expr {
        case .and(let parts), .or(let parts):
            if parts.isEmpty {
                b.append(isAnd(expr) ? "(1=1)" : "(1=0)")
                return
            }
            b.append("(")
            for (i, p) in parts.enumerated() {
                if i > 0 { b.append(isAnd(expr) ? " AND " : " OR ") }
                emit(p, table: table, negated: negated, into: &b)
            }
            b.append(")")
        case .not(let inner):
            b.append("(NOT ")
            emit(inner, table: table, negated: !negated, into: &b)
            b.append(")")
        case .constant(let v):
            b.append(v ? "(1=1)" : "(1=0)")
        case .isNull(let operand, let neg):
            b.append("(")
            operandSQL(operand, table: table, into: &b)
            b.append(neg ? " IS NOT NULL)" : " IS NULL)")
        case .inList(let operand, let literals):
            let guardNull = negated && isNullable(operand)
            b.append("(")
            operandSQL(operand, table: table, into: &b)
            b.append(" IN (")
            for (i, l) in literals.enumerated() {
                if i > 0 { b.append(", ") }
                b.bind(Self.sqlValue(l))
            }
            b.append(")")
            if guardNull { notNullGuard([operand], table: table, into: &b) }
            b.append(")")
        case .compare(let l, let op, let r):
            compare(l, op, r, table: table, negated: negated, into: &b)
        }
    }

    func isAnd(_ e: FilterExpr) -> Bool { if case .and = e { return true } else { return false } }

    func compare(_ l: FilterOperand, _ op: FilterOp, _ r: FilterOperand, table: String, negated: Bool, into b: inout SQLBuilder) {
        let ln = isNullable(l)
        let rn = isNullable(r)
        // Placeholders are numbered in both dialects, so an operand's text may appear twice.
        let a = renderOperand(l, table: table, into: &b)
        let c = renderOperand(r, table: table, into: &b)
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

    /// Renders an operand, binding literals into `b` now (so bind order follows text order as
    /// long as the returned text is appended before the next operand is rendered — which holds
    /// for `?` placeholders only if no text is reordered; we never reorder).
    func renderOperand(_ o: FilterOperand, table: String, into b: inout SQLBuilder) -> String {
        let before = b.sql.count
        operandSQL(o, table: table, into: &b)
        let text = String(b.sql.dropFirst(before))
        b.truncate(to: before)
        return text
    }

    func operandSQL(_ o: FilterOperand, table: String, into b: inout SQLBuilder) {
        switch o {
        case .field(let path):
            if let hop = path.hop {
                // One hop through a relation: a correlated scalar subquery on the target's primary key.
                b.append("(SELECT \(dialect.quote(hop.field)) FROM \(dialect.quote(hop.collection)) WHERE \(dialect.quote("id")) = \(table).\(dialect.quote(path.field)))")
            } else {
                b.append("\(table).\(dialect.quote(path.field))")
            }
        case .literal(let l):
            b.bind(Self.sqlValue(l))
        case .auth(let name, _):
            b.bind(Self.sqlValue(authValues[name] ?? .null))
        case .new:
            // `@new` rules are evaluated on the record in memory, never in SQL.
            b.append("NULL")
        }
    }

    func isNullable(_ o: FilterOperand) -> Bool {
        switch o {
        case .field(let p): p.nullable || p.hop != nil
        case .literal(let l): l == .null
        case .auth(let n, _): (authValues[n] ?? .null) == .null
        case .new: true
        }
    }

    func notNullGuard(_ operands: [FilterOperand], table: String, into b: inout SQLBuilder) {
        for o in operands {
            b.append(" AND ")
            operandSQL(o, table: table, into: &b)
            b.append(" IS NOT NULL")
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
    /// Drops text (and the binds it introduced) back to `count` characters; used to render an
    /// operand once and splice it into a template.
    mutating func truncate(to count: Int) {
        sql = String(sql.prefix(count))
    }
}
