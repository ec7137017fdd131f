public import Foundation

/// A list filter (API.md §3), built from fields and values rather than by concatenating text:
/// every value is written as a literal of the filter language (text quoted, quotes doubled), so
/// user input can never change the expression's meaning.
///
/// ```swift
/// let f = Field("status") == "published" && (Field("views") >= 10 || Field("title").contains(search))
/// ```
public struct Filter: Sendable, CustomStringConvertible {
    enum Kind { case comparison, and, or, not }

    /// The expression, as sent in `filter=`.
    public let expression: String
    let kind: Kind
    /// Mistakes found while building (an invalid field name, a `null` beside `<`): the request
    /// is refused with `BasaltClientError.invalidFilter` before anything is sent.
    let mistakes: [String]

    init(_ expression: String, _ kind: Kind, mistakes: [String] = []) {
        self.expression = expression
        self.kind = kind
        self.mistakes = mistakes
    }

    /// An expression written by hand, sent as it is. Never build one from user input: use
    /// `Field` and the operators.
    public static func raw(_ expression: String) -> Filter { Filter(expression, .or) }

    public var description: String { expression }

    func validated() throws -> String {
        if let first = mistakes.first { throw BasaltClientError.invalidFilter(first) }
        return expression
    }

    /// Parenthesized unless it binds at least as tightly as `kind`.
    func operand(of kind: Kind) -> String {
        switch (self.kind, kind) {
        case (.comparison, _), (.not, _), (.and, .and), (.and, .or), (.or, .or): expression
        default: "(\(expression))"
        }
    }

    public static func && (lhs: Filter, rhs: Filter) -> Filter {
        Filter("\(lhs.operand(of: .and)) && \(rhs.operand(of: .and))", .and, mistakes: lhs.mistakes + rhs.mistakes)
    }

    public static func || (lhs: Filter, rhs: Filter) -> Filter {
        Filter("\(lhs.operand(of: .or)) || \(rhs.operand(of: .or))", .or, mistakes: lhs.mistakes + rhs.mistakes)
    }

    public static prefix func ! (f: Filter) -> Filter {
        Filter("!" + (f.kind == .comparison || f.kind == .not ? f.expression : "(\(f.expression))"), .not, mistakes: f.mistakes)
    }
}

/// A value in a filter. The library writes it as a literal of the filter language; no
/// conformance ever supplies filter text itself.
public enum FilterValue: Sendable, Equatable {
    case text(String)
    case integer(Int64)
    case number(Double)
    case boolean(Bool)

    /// The literal, or `nil` when the value has none (a NaN, an infinity).
    var literal: String? {
        switch self {
        case .text(let text):
            // Quotes doubled code point by code point: a `'` followed by a combining mark is
            // still a quote to the server's lexer, which reads code points.
            var quoted = String.UnicodeScalarView()
            quoted.append("'")
            for scalar in text.unicodeScalars {
                if scalar == "'" { quoted.append("'") }
                quoted.append(scalar)
            }
            quoted.append("'")
            return String(quoted)
        case .integer(let i): return String(i)
        // Swift's shortest round-tripping spelling (`0.1`, `1e+20`), which the filter grammar reads.
        case .number(let d): return d.isFinite ? "\(d)" : nil
        case .boolean(let b): return b ? "true" : "false"
        }
    }
}

/// A type whose values can stand in a filter: `Field("status") == status`. An enum with a raw
/// value that is one conforms by declaring it (`enum Status: String, FilterLiteral`).
public protocol FilterLiteral: Sendable {
    var filterValue: FilterValue { get }
}

extension FilterLiteral where Self: RawRepresentable, RawValue: FilterLiteral {
    public var filterValue: FilterValue { rawValue.filterValue }
}

extension String: FilterLiteral {
    public var filterValue: FilterValue { .text(self) }
}
extension Substring: FilterLiteral {
    public var filterValue: FilterValue { .text(String(self)) }
}
extension Int: FilterLiteral {
    public var filterValue: FilterValue { .integer(Int64(self)) }
}
extension Int64: FilterLiteral {
    public var filterValue: FilterValue { .integer(self) }
}
extension Int32: FilterLiteral {
    public var filterValue: FilterValue { .integer(Int64(self)) }
}
extension Double: FilterLiteral {
    public var filterValue: FilterValue { .number(self) }
}
extension Bool: FilterLiteral {
    public var filterValue: FilterValue { .boolean(self) }
}
extension Date: FilterLiteral {
    /// A datetime compares with an RFC 3339 string.
    public var filterValue: FilterValue { .text(RFC3339.format(self)) }
}
extension UUID: FilterLiteral {
    public var filterValue: FilterValue { .text(uuidString.lowercased()) }
}

/// A field, or one hop through a relation (`author.name`), in a filter or a sort.
public struct Field: Sendable {
    public let path: String
    public init(_ path: String) { self.path = path }

    /// `name` or `relation.name`, each `[a-z][a-z0-9_]{0,62}`.
    var mistake: String? {
        let parts = path.split(separator: ".", omittingEmptySubsequences: false)
        let valid =
            (1...2).contains(parts.count)
            && parts.allSatisfy { p in
                guard let first = p.unicodeScalars.first, ("a"..."z").contains(first), p.count <= 63 else { return false }
                return p.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
            }
        return valid ? nil : "\(path.debugDescription) is not a field name"
    }

    func compare(_ op: String, _ value: (any FilterLiteral)?) -> Filter {
        var mistakes = mistake.map { [$0] } ?? []
        let literal: String
        if let value {
            if let text = value.filterValue.literal {
                literal = text
            } else {
                literal = "null"
                mistakes.append("\(value) has no literal (compare \(path) with a finite number)")
            }
        } else {
            literal = "null"
            if op != "=" && op != "!=" { mistakes.append("null compares only with == and != (\(path) \(op) null)") }
        }
        return Filter("\(path) \(op) \(literal)", .comparison, mistakes: mistakes)
    }

    func compare(_ op: String, _ other: Field) -> Filter {
        Filter("\(path) \(op) \(other.path)", .comparison, mistakes: [mistake, other.mistake].compactMap { $0 })
    }

    /// Null-safe equality: `== nil` matches records without a value.
    public static func == (lhs: Field, rhs: (any FilterLiteral)?) -> Filter { lhs.compare("=", rhs) }
    public static func != (lhs: Field, rhs: (any FilterLiteral)?) -> Filter { lhs.compare("!=", rhs) }
    public static func < (lhs: Field, rhs: any FilterLiteral) -> Filter { lhs.compare("<", rhs) }
    public static func <= (lhs: Field, rhs: any FilterLiteral) -> Filter { lhs.compare("<=", rhs) }
    public static func > (lhs: Field, rhs: any FilterLiteral) -> Filter { lhs.compare(">", rhs) }
    public static func >= (lhs: Field, rhs: any FilterLiteral) -> Filter { lhs.compare(">=", rhs) }

    public static func == (lhs: Field, rhs: Field) -> Filter { lhs.compare("=", rhs) }
    public static func != (lhs: Field, rhs: Field) -> Filter { lhs.compare("!=", rhs) }
    public static func < (lhs: Field, rhs: Field) -> Filter { lhs.compare("<", rhs) }
    public static func <= (lhs: Field, rhs: Field) -> Filter { lhs.compare("<=", rhs) }
    public static func > (lhs: Field, rhs: Field) -> Filter { lhs.compare(">", rhs) }
    public static func >= (lhs: Field, rhs: Field) -> Filter { lhs.compare(">=", rhs) }

    /// Case-insensitive substring match (`~`); `%` and `_` are ordinary characters.
    public func contains(_ text: String) -> Filter { compare("~", text) }
    public func notContains(_ text: String) -> Filter { compare("!~", text) }

    public var isNull: Filter { Filter("\(path) is null", .comparison, mistakes: mistake.map { [$0] } ?? []) }
    public var isNotNull: Filter { Filter("\(path) is not null", .comparison, mistakes: mistake.map { [$0] } ?? []) }

    /// `field in (…)`: one of `values` (at least one; no nulls).
    public func isIn(_ values: [any FilterLiteral]) -> Filter {
        var mistakes = mistake.map { [$0] } ?? []
        if values.isEmpty { mistakes.append("\(path) in (): give at least one value") }
        let literals = values.map { $0.filterValue.literal ?? "null" }
        if literals.contains("null") { mistakes.append("\(path) in (…) with a value that has no literal") }
        return Filter("\(path) in (\(literals.joined(separator: ", ")))", .comparison, mistakes: mistakes)
    }
}

/// One sort key: `.descending("views")`.
public struct Sort: Sendable {
    public let field: Field
    public let descending: Bool
    public static func ascending(_ field: String) -> Sort { Sort(field: Field(field), descending: false) }
    public static func descending(_ field: String) -> Sort { Sort(field: Field(field), descending: true) }

    static func parameter(_ keys: [Sort]) throws -> String {
        try keys.map { key in
            if let m = key.field.mistake { throw BasaltClientError.invalidFilter(m) }
            return (key.descending ? "-" : "") + key.field.path
        }.joined(separator: ",")
    }
}
