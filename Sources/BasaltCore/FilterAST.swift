// The filter language's typed AST (API.md §3). Produced by `FilterParser` + `FilterChecker`,
// consumed by the storage query compiler and by access-rule evaluation. Nothing here holds SQL.

/// What a value is, for type checking and for binding. `id` covers `id` and relation fields.
public enum ValueKind: String, Sendable, Equatable {
    case text, number, boolean, datetime, id, json

    public init(_ type: FieldType) {
        switch type {
        case .text, .email, .url, .select: self = .text
        case .integer, .number: self = .number
        case .boolean: self = .boolean
        case .datetime: self = .datetime
        case .json: self = .json
        case .relation: self = .id
        }
    }

    public init(_ system: SystemField) {
        switch system {
        case .id: self = .id
        case .createdAt, .updatedAt: self = .datetime
        case .version: self = .number
        }
    }
}

/// A typed, checked filter expression.
public indirect enum FilterExpr: Sendable, Equatable {
    case and([FilterExpr])
    case or([FilterExpr])
    case not(FilterExpr)
    /// `lhs op rhs`. At least one side is a field or reference (the checker rejects literal-vs-literal
    /// only when it cannot fold it; `true`/`false` constants are represented as `.constant`).
    case compare(FilterOperand, FilterOp, FilterOperand)
    /// `operand in (literals…)`; literals are never null.
    case inList(FilterOperand, [FilterLiteral])
    /// `operand is null` / `operand is not null`.
    case isNull(FilterOperand, negated: Bool)
    /// A comparison the checker folded (literal vs literal).
    case constant(Bool)
}

extension FilterExpr {
    /// The same expression with every literal replaced by `transform(literal)`.
    public func mappingLiterals(_ transform: (FilterLiteral) -> FilterLiteral) -> FilterExpr {
        func operand(_ o: FilterOperand) -> FilterOperand {
            if case .literal(let l) = o { return .literal(transform(l)) }
            return o
        }
        switch self {
        case .and(let parts): return .and(parts.map { $0.mappingLiterals(transform) })
        case .or(let parts): return .or(parts.map { $0.mappingLiterals(transform) })
        case .not(let inner): return .not(inner.mappingLiterals(transform))
        case .compare(let l, let op, let r): return .compare(operand(l), op, operand(r))
        case .inList(let o, let literals): return .inList(operand(o), literals.map(transform))
        case .isNull(let o, let negated): return .isNull(operand(o), negated: negated)
        case .constant: return self
        }
    }
}

public enum FilterOp: String, Sendable, Equatable, CaseIterable {
    case eq = "="
    case ne = "!="
    case lt = "<"
    case le = "<="
    case gt = ">"
    case ge = ">="
    case contains = "~"
    case notContains = "!~"
}

public enum FilterOperand: Sendable, Equatable {
    /// A field of the collection, or one hop through a relation (`author.name`).
    case field(FieldPath)
    case literal(FilterLiteral)
    /// `@auth.<field>` in access rules: a property of the caller, bound at request time.
    case auth(String, ValueKind)
    /// `@new.<field>` in create/update rules: the incoming value; `@new.<relation>.<field>`
    /// reads the field of the record the incoming relation value names, as stored.
    case new(FieldPath)

    public var kind: ValueKind? {
        switch self {
        case .field(let p), .new(let p): p.kind
        case .literal(let l): l.kind
        case .auth(_, let k): k
        }
    }
}

public struct FieldPath: Sendable, Equatable {
    /// The field name on the queried collection (a relation field when `hop` is set).
    public var field: String
    /// The target collection and field when the path goes through a relation.
    public var hop: (collection: String, field: String)?
    /// Kind of the final field.
    public var kind: ValueKind
    /// Whether the final value may be null (so negation must treat unknown as false).
    public var nullable: Bool

    public init(field: String, hop: (collection: String, field: String)? = nil, kind: ValueKind, nullable: Bool) {
        self.field = field
        self.hop = hop
        self.kind = kind
        self.nullable = nullable
    }

    public static func == (a: FieldPath, b: FieldPath) -> Bool {
        a.field == b.field && a.hop?.collection == b.hop?.collection && a.hop?.field == b.hop?.field
            && a.kind == b.kind && a.nullable == b.nullable
    }
}

/// A literal after type checking. Strings compared with datetimes become timestamps and strings
/// compared with ids are normalized UUIDs, so the compiler binds each in its column's type.
public enum FilterLiteral: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case timestamp(Timestamp)
    case uuid(String)

    public var kind: ValueKind? {
        switch self {
        case .null: nil
        case .bool: .boolean
        case .int, .double: .number
        case .string: .text
        case .timestamp: .datetime
        case .uuid: .id
        }
    }
}

/// A filter syntax or type error. `column` is 1-based, in Unicode code points; limit errors have none.
public struct FilterError: BasaltErrorConvertible, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var column: Int?
    public init(_ message: String, column: Int?) {
        self.message = message
        self.column = column
    }
    public var description: String { column.map { "\(message) at column \($0)" } ?? message }

    public var basaltError: BasaltError {
        var e = BasaltError(.badRequest, "Invalid filter: \(description)")
        if let column { e.extensions.append(("column", .int(Int64(column)))) }
        return e
    }
}
