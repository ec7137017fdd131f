// Type checking for the filter language (API.md §3, §9): resolves the names in a `FilterSyntax`
// against the schema and produces the typed `FilterExpr` the query compiler and access rules
// consume. Everything a compiler would otherwise have to re-validate is settled here: which
// fields exist, what kind each side is, which operators apply, and what each literal is bound as.

/// Parses and type-checks filters and access rules against a collection.
///
/// ```swift
/// let expr = try FilterChecker.check("author.name = 'Ada' && views > 10", collection: posts, schema: schema)
/// // .and([.compare(.field(author→users.name), .eq, .literal(.string("Ada"))),
/// //       .compare(.field(views), .gt, .literal(.int(10)))])
///
/// // An access rule: `@auth.*` and, for create/update, `@new.*` become available.
/// let rule = try FilterChecker.check("author = @auth.id", collection: posts, schema: schema, allowAuth: true)
/// ```
///
/// Errors are `FilterError`s with the 1-based column (in Unicode code points) of the offending
/// token; a type error points at the comparison's first operand; limit errors have no column.
public enum FilterChecker {
    /// Parses `text` and checks it; see `check(_:collection:schema:allowAuth:allowNew:authFields:)`
    /// for the rules.
    public static func check(
        _ text: String,
        collection: CollectionSchema,
        schema: Schema,
        allowAuth: Bool = false,
        allowNew: Bool = false,
        authFields: [String: ValueKind] = ["id": .id],
        systemFields: Set<SystemField> = Set(SystemField.allCases)
    ) throws(FilterError) -> FilterExpr {
        let syntax = try FilterParser.parse(text)
        return try check(
            syntax,
            collection: collection,
            schema: schema,
            allowAuth: allowAuth,
            allowNew: allowNew,
            authFields: authFields,
            systemFields: systemFields
        )
    }

    /// Checks an already parsed filter.
    ///
    /// - `collection`'s declared fields and the system fields in `systemFields` (all by default) are in scope; `relation.field` hops
    ///   once into the relation's target collection, looked up in `schema`.
    /// - `@auth.<field>` is allowed only with `allowAuth`, its kind taken from `authFields`;
    ///   `@new.<field>` only with `allowNew`, its kind from `collection`'s declared field.
    /// - Literal-vs-literal comparisons fold to `.constant`; `= null` / `!= null` become `.isNull`.
    ///   `and`/`or` are flattened (`(a && b) && c` is one `.and` of three).
    public static func check(
        _ syntax: FilterSyntax,
        collection: CollectionSchema,
        schema: Schema,
        allowAuth: Bool = false,
        allowNew: Bool = false,
        authFields: [String: ValueKind] = ["id": .id],
        systemFields: Set<SystemField> = Set(SystemField.allCases)
    ) throws(FilterError) -> FilterExpr {
        let checker = TypeChecker(
            collection: collection,
            schema: schema,
            allowAuth: allowAuth,
            allowNew: allowNew,
            authFields: authFields,
            systemFields: systemFields
        )
        return try checker.expression(syntax)
    }
}

/// An operand with its resolved kind, plus what error messages call it.
private struct Resolved {
    var operand: FilterOperand
    var column: Int
    /// `views`, `author.name`, `@auth.id`, `'abc'`, `5`
    var name: String

    var isLiteral: Bool {
        if case .literal = operand { return true }
        return false
    }

    var isNull: Bool { operand == .literal(.null) }

    /// `views (number)`; for messages about mismatched kinds.
    var described: String { operand.kind.map { "\(name) (\($0.rawValue))" } ?? name }
}

private struct TypeChecker {
    let collection: CollectionSchema
    let schema: Schema
    let allowAuth: Bool
    let allowNew: Bool
    let authFields: [String: ValueKind]
    let systemFields: Set<SystemField>

    // MARK: - Expressions

    /// Recursion here follows the syntax tree, whose depth the parser bounds (`maxDepth`).
    func expression(_ syntax: FilterSyntax) throws(FilterError) -> FilterExpr {
        switch syntax.node {
        case .and(let items):
            var out: [FilterExpr] = []
            for item in items {
                let e = try expression(item)
                if case .and(let inner) = e { out += inner } else { out.append(e) }
            }
            return .and(out)
        case .or(let items):
            var out: [FilterExpr] = []
            for item in items {
                let e = try expression(item)
                if case .or(let inner) = e { out += inner } else { out.append(e) }
            }
            return .or(out)
        case .not(let inner):
            return .not(try expression(inner))
        case .compare(let lhs, let op, let rhs):
            return try compare(lhs, op, rhs)
        case .inList(let lhs, let items):
            return try inList(lhs, items)
        case .isNull(let operand, let negated):
            let a = try resolve(operand)
            // A literal's nullness is known now: `null is null`, `5 is not null`.
            if case .literal(let literal) = a.operand { return .constant((literal == .null) != negated) }
            return .isNull(a.operand, negated: negated)
        }
    }

    func compare(
        _ lhs: FilterSyntax.Operand,
        _ op: FilterOp,
        _ rhs: FilterSyntax.Operand
    ) throws(FilterError)
        -> FilterExpr
    {
        let a = try resolve(lhs)
        let b = try resolve(rhs)
        let column = lhs.column

        // `=`/`!=` are null-safe (API.md §3): `x = null` means `x is null`. Other operators
        // with a null side would always be false, which is surely a mistake; say so.
        if a.isNull || b.isNull {
            guard op == .eq || op == .ne else {
                throw FilterError(
                    "'\(op.rawValue)' cannot compare with null (use '=', '!=', 'is null' or 'is not null')",
                    column: column
                )
            }
            let negated = op == .ne
            if a.isNull && b.isNull { return .constant(!negated) }
            let other = a.isNull ? b : a
            if other.isLiteral { return .constant(negated) }  // a non-null literal is never null
            return .isNull(other.operand, negated: negated)
        }

        for side in [a, b] where side.operand.kind == .json {
            throw FilterError(
                "\(side.name) is json and can only be tested with 'is null' or 'is not null'",
                column: column
            )
        }
        // Before coercion, so that `created_at ~ '2024'` reports the operator, not a bad datetime.
        if op == .contains || op == .notContains {
            for side in [a, b] where side.operand.kind != .text {
                throw FilterError(
                    "'\(op.rawValue)' needs text on both sides, but \(side.described) is not text",
                    column: column
                )
            }
        }

        let left = try coerce(a, toMatch: b, column: column)
        let right = try coerce(b, toMatch: a, column: column)
        guard let kind = left.kind, kind == right.kind else {
            throw FilterError("cannot compare \(a.described) with \(b.described)", column: column)
        }
        if kind == .boolean, op != .eq, op != .ne {
            throw FilterError("'\(op.rawValue)' does not apply to booleans (use '=' or '!=')", column: column)
        }

        if case .literal(let x) = left, case .literal(let y) = right {
            return .constant(Self.fold(x, op, y))
        }
        return .compare(left, op, right)
    }

    func inList(_ lhs: FilterSyntax.Operand, _ items: [FilterSyntax.Operand]) throws(FilterError) -> FilterExpr {
        let a = try resolve(lhs)
        if a.operand.kind == .json {
            throw FilterError(
                "\(a.name) is json and can only be tested with 'is null' or 'is not null'",
                column: lhs.column
            )
        }
        var literals: [FilterLiteral] = []
        for item in items {
            let b = try resolve(item)
            guard !b.isNull else {
                // Like every misuse of null, reported at the comparison's first operand (API.md §3).
                throw FilterError("null is not allowed in an 'in' list (use 'is null')", column: lhs.column)
            }
            // A null left side can equal nothing in the list; its items are still checked above.
            if a.isNull { continue }
            guard case .literal(let literal) = try coerce(b, toMatch: a, column: lhs.column),
                literal.kind == a.operand.kind
            else {
                throw FilterError("cannot compare \(a.described) with \(b.described)", column: lhs.column)
            }
            literals.append(literal)
        }
        if a.isNull { return .constant(false) }
        if case .literal(let x) = a.operand {
            return .constant(literals.contains { Self.fold(x, .eq, $0) })
        }
        return .inList(a.operand, literals)
    }

    // MARK: - Operands

    func resolve(_ operand: FilterSyntax.Operand) throws(FilterError) -> Resolved {
        let column = operand.column
        switch operand.value {
        case .literal(let literal):
            let typed: FilterLiteral =
                switch literal {
                case .null: .null
                case .bool(let b): .bool(b)
                case .int(let i): .int(i)
                case .double(let d): .double(d)
                case .string(let s): .string(s)
                }
            return Resolved(operand: .literal(typed), column: column, name: Self.describe(literal))

        case .path(let name, nil):
            let (kind, nullable) = try field(name, in: collection, column: column)
            return Resolved(
                operand: .field(FieldPath(field: name, kind: kind, nullable: nullable)),
                column: column,
                name: name
            )

        case .path(let name, let hop?):
            let path = try hopPath(name, hop, column: column)
            return Resolved(operand: .field(path), column: column, name: "\(name).\(hop)")

        case .auth(let name):
            guard allowAuth else {
                throw FilterError("'@auth' can only be used in access rules", column: column)
            }
            guard let kind = authFields[name] else {
                throw FilterError("unknown field '@auth.\(name)'", column: column)
            }
            return Resolved(operand: .auth(name, kind), column: column, name: "@auth.\(name)")

        case .new(let name, let hop):
            guard allowNew else {
                throw FilterError("'@new' can only be used in create and update rules", column: column)
            }
            // Declared fields only: system fields are set by the server, not by the incoming record.
            guard let declared = collection.field(name) else {
                throw FilterError("unknown field '@new.\(name)' in '\(collection.name)'", column: column)
            }
            guard let hop else {
                let path = FieldPath(field: name, kind: ValueKind(declared.type), nullable: !declared.required)
                return Resolved(operand: .new(path), column: column, name: "@new.\(name)")
            }
            // `@new.` is five code points before the field name.
            let path = try hopPath(name, hop, column: column + 5, reference: "@new.")
            return Resolved(operand: .new(path), column: column, name: "@new.\(name).\(hop)")
        }
    }

    /// `relation.field`: one hop into the relation's target collection. `column` is where
    /// `relation` starts; errors about the hop point at the hop's own name.
    func hopPath(_ name: String, _ hop: String, column: Int, reference: String = "") throws(FilterError) -> FieldPath {
        _ = try field(name, in: collection, column: column)  // an unknown name is reported as such
        guard let relation = collection.field(name), relation.type == .relation else {
            throw FilterError("'\(reference)\(name)' is not a relation, so it cannot be followed by '.'", column: column)
        }
        guard let targetName = relation.target, let target = schema.collection(targetName) else {
            throw FilterError(
                "relation '\(name)' points to unknown collection '\(relation.target ?? "")'",
                column: column
            )
        }
        // The path is ASCII without spaces, so the hop starts right after `name.`.
        let hopColumn = column + name.unicodeScalars.count + 1
        let (kind, _) = try field(hop, in: target, column: hopColumn)
        // Always nullable, whatever the schema says: the relation may be unset, and a target the
        // caller may not view reads as absent (API.md §3).
        return FieldPath(field: name, hop: (targetName, hop), kind: kind, nullable: true)
    }

    /// The kind and nullability of a system or declared field of `collection`.
    func field(_ name: String, in collection: CollectionSchema, column: Int) throws(FilterError) -> (ValueKind, Bool) {
        if let system = SystemField(rawValue: name), systemFields.contains(system) { return (ValueKind(system), false) }
        if let declared = collection.field(name) { return (ValueKind(declared.type), !declared.required) }
        var message = "unknown field '\(name)' in '\(collection.name)'"
        if let keyword = FilterKeyword(rawValue: name.lowercased()) {
            message += " (keywords are lowercase: '\(keyword.rawValue)')"
        }
        throw FilterError(message, column: column)
    }

    /// A string literal compared with a datetime or an id is parsed now, so the compiler binds it
    /// in the column's own type and a malformed one is a 400 here rather than a database error.
    func coerce(_ x: Resolved, toMatch other: Resolved, column: Int) throws(FilterError) -> FilterOperand {
        guard case .literal(.string(let s)) = x.operand, !other.isLiteral else { return x.operand }
        switch other.operand.kind {
        case .datetime:
            guard let timestamp = Timestamp(rfc3339: s) else {
                throw FilterError(
                    "cannot compare \(other.described) with \(x.name): not an RFC 3339 datetime",
                    column: column
                )
            }
            return .literal(.timestamp(timestamp))
        case .id:
            guard let uuid = RecordID.normalize(s) else {
                throw FilterError("cannot compare \(other.described) with \(x.name): not a UUID", column: column)
            }
            return .literal(.uuid(uuid))
        default:
            return x.operand
        }
    }

    // MARK: - Folding

    /// Evaluates a comparison of two same-kind, non-null literals with the semantics the SQL
    /// backends use: numbers numerically, text by code point, `~` as a case-insensitive substring
    /// match under Unicode simple lowercase.
    static func fold(_ x: FilterLiteral, _ op: FilterOp, _ y: FilterLiteral) -> Bool {
        switch (x, y) {
        case (.bool(let a), .bool(let b)):
            return op == .ne ? a != b : a == b
        case (.string(let a), .string(let b)):
            switch op {
            case .contains: return contains(a, b)
            case .notContains: return !contains(a, b)
            default: return apply(op, to: codePointOrder(a, b))
            }
        default:
            guard let order = numericOrder(x, y) else { return false }
            return apply(op, to: order)
        }
    }

    static func apply(_ op: FilterOp, to order: Int) -> Bool {
        switch op {
        case .eq: order == 0
        case .ne: order != 0
        case .lt: order < 0
        case .le: order <= 0
        case .gt: order > 0
        case .ge: order >= 0
        case .contains, .notContains: false
        }
    }

    /// Swift's `String` comparison uses canonical equivalence; the databases compare code points.
    static func codePointOrder(_ a: String, _ b: String) -> Int {
        var i = a.unicodeScalars.makeIterator()
        var j = b.unicodeScalars.makeIterator()
        while true {
            switch (i.next(), j.next()) {
            case (nil, nil): return 0
            case (nil, _): return -1
            case (_, nil): return 1
            case (let p?, let q?) where p != q: return p.value < q.value ? -1 : 1
            default: continue
            }
        }
    }

    static func numericOrder(_ x: FilterLiteral, _ y: FilterLiteral) -> Int? {
        switch (x, y) {
        case (.int(let a), .int(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.int(let a), .double(let b)): return order(Double(a), b)
        case (.double(let a), .int(let b)): return order(a, Double(b))
        case (.double(let a), .double(let b)): return order(a, b)
        default: return nil
        }
    }

    static func order(_ a: Double, _ b: Double) -> Int { a < b ? -1 : (a == b ? 0 : 1) }

    static func contains(_ haystack: String, _ needle: String) -> Bool {
        CaseFolding.contains(haystack, needle)
    }

    static func describe(_ literal: FilterSyntax.Literal) -> String {
        switch literal {
        case .null: return "null"
        case .bool(let b): return "\(b)"
        case .int(let i): return "\(i)"
        case .double(let d): return "\(d)"
        case .string(let s):
            let scalars = Array(s.unicodeScalars)
            var shown = String(String.UnicodeScalarView(scalars.prefix(24)))
            if scalars.count > 24 { shown += "…" }
            return "'" + shown.replacingQuotes() + "'"
        }
    }
}

extension String {
    /// Doubles single quotes, so a literal quoted in a message reads as filter syntax.
    fileprivate func replacingQuotes() -> String {
        var out = String.UnicodeScalarView()
        for c in unicodeScalars {
            out.append(c)
            if c == "'" { out.append(c) }
        }
        return String(out)
    }
}
