// The filter language's recursive-descent parser (API.md §3). It produces an untyped
// `FilterSyntax`; `FilterChecker` resolves fields and types against a schema. The grammar:
//
//     expr    := or
//     or      := and ( "||" and )*
//     and     := unary ( "&&" unary )*
//     unary   := "!" unary | "(" expr ")" | cmp
//     cmp     := operand op operand
//              | operand "in" "(" literal ( "," literal )* ")"
//              | operand "is" [ "not" ] "null"
//
// Recursion happens only at `!` and `(`, and both count against `maxDepth`, so hostile input
// cannot exhaust the stack; `||` and `&&` chains are loops.

/// The untyped syntax tree of a filter: what was written, with the 1-based column (in Unicode
/// code points) where each node starts. Field names are not yet resolved and literals not yet
/// typed; `FilterChecker` turns this into a `FilterExpr`.
///
/// ```swift
/// let syntax = try FilterParser.parse("views > 10 && title ~ 'swift'")
/// // syntax.node == .and([…views > 10…, …title ~ 'swift'…]), syntax.column == 1
/// ```
public struct FilterSyntax: Sendable, Equatable {
    public indirect enum Node: Sendable, Equatable {
        /// Two or more operands of one `&&` chain. Parentheses are kept as nesting, not flattened.
        case and([FilterSyntax])
        /// Two or more operands of one `||` chain.
        case or([FilterSyntax])
        case not(FilterSyntax)
        case compare(Operand, FilterOp, Operand)
        /// `operand in (…)`; every list element is a `.literal` (possibly `null`, which the checker rejects).
        case inList(Operand, [Operand])
        case isNull(Operand, negated: Bool)
    }

    public struct Operand: Sendable, Equatable {
        public enum Value: Sendable, Equatable {
            /// `field`, or `field.hop` through a relation.
            case path(field: String, hop: String?)
            case literal(Literal)
            /// `@auth.<field>`
            case auth(String)
            /// `@new.<field>`, or `@new.<relation>.<field>` (one hop)
            case new(field: String, hop: String?)
        }

        public var value: Value
        /// 1-based, in Unicode code points.
        public var column: Int

        public init(_ value: Value, column: Int) {
            self.value = value
            self.column = column
        }
    }

    /// A literal as written: integers that fit in Int64 stay integers, other numbers are Doubles.
    public enum Literal: Sendable, Equatable {
        case null
        case bool(Bool)
        case int(Int64)
        case double(Double)
        case string(String)
    }

    public var node: Node
    /// 1-based, in Unicode code points: the node's first token (for a parenthesized group, the
    /// first token inside the parentheses).
    public var column: Int

    public init(_ node: Node, column: Int) {
        self.node = node
        self.column = column
    }
}

/// Parses filter text (API.md §3) into a `FilterSyntax`.
///
/// ```swift
/// do {
///     let syntax = try FilterParser.parse("status = 'open' || views >= 100")
/// } catch {
///     print(error)   // FilterError, e.g. "expected an operator after 'views' at column 9"
/// }
/// ```
public enum FilterParser {
    /// Longest accepted filter, in UTF-8 bytes.
    public static let maxBytes = 4096
    /// Deepest accepted nesting of parentheses and `!`, counted together.
    public static let maxDepth = 32
    /// Most comparisons (`op`, `in`, `is null`) in one filter.
    public static let maxComparisons = 100

    public static func parse(_ text: String) throws(FilterError) -> FilterSyntax {
        // Checked before lexing so an oversized input costs nothing; limit errors carry no column.
        guard text.utf8.count <= maxBytes else {
            throw FilterError("the filter is longer than \(maxBytes) bytes", column: nil)
        }
        var parser = try FilterParserState(text)
        return try parser.filter()
    }
}

/// The parser's state: the lexer, one token of lookahead and the running limit counters.
private struct FilterParserState {
    var lexer: FilterLexer
    var token: FilterToken
    /// The token before `token`, quoted in "… after 'x'" messages.
    var previous: FilterToken?
    var depth = 0
    var comparisons = 0

    init(_ text: String) throws(FilterError) {
        lexer = FilterLexer(text)
        token = try lexer.next()
    }

    mutating func advance() throws(FilterError) {
        previous = token
        token = try lexer.next()
    }

    mutating func filter() throws(FilterError) -> FilterSyntax {
        if token.kind == .end { throw FilterError("the filter is empty", column: token.column) }
        let result = try expression()
        switch token.kind {
        case .end:
            return result
        case .rightParen:
            throw FilterError("unmatched ')'", column: token.column)
        default:
            throw FilterError(
                "expected '&&', '||' or the end of the filter \(afterPrevious), found \(describe(token))",
                column: token.column
            )
        }
    }

    // MARK: - Grammar

    mutating func expression() throws(FilterError) -> FilterSyntax {
        let first = try conjunction()
        guard token.kind == .or else { return first }
        var items = [first]
        while token.kind == .or {
            try advance()
            items.append(try conjunction())
        }
        return FilterSyntax(.or(items), column: first.column)
    }

    mutating func conjunction() throws(FilterError) -> FilterSyntax {
        let first = try unary()
        guard token.kind == .and else { return first }
        var items = [first]
        while token.kind == .and {
            try advance()
            items.append(try unary())
        }
        return FilterSyntax(.and(items), column: first.column)
    }

    mutating func unary() throws(FilterError) -> FilterSyntax {
        switch token.kind {
        case .bang:
            let column = token.column
            try enter()
            try advance()
            let inner = try unary()
            depth -= 1
            return FilterSyntax(.not(inner), column: column)
        case .leftParen:
            let open = token
            try enter()
            try advance()
            let inner = try expression()
            guard token.kind == .rightParen else {
                if token.kind == .end {
                    throw FilterError("expected ')' to close the '(' at column \(open.column)", column: token.column)
                }
                throw FilterError(
                    "expected '&&', '||' or ')' \(afterPrevious), found \(describe(token))",
                    column: token.column
                )
            }
            try advance()
            depth -= 1
            return inner
        default:
            return try comparison()
        }
    }

    mutating func comparison() throws(FilterError) -> FilterSyntax {
        guard let lhs = try operand() else {
            if token.kind == .keyword(.not) {
                throw FilterError("unexpected 'not' (use '!' to negate)", column: token.column)
            }
            throw FilterError("expected a comparison, found \(describe(token))", column: token.column)
        }
        comparisons += 1
        guard comparisons <= FilterParser.maxComparisons else {
            throw FilterError("the filter has more than \(FilterParser.maxComparisons) comparisons", column: nil)
        }

        switch token.kind {
        case .op(let op):
            try advance()
            guard let rhs = try operand() else {
                throw FilterError(
                    "expected an operand after '\(op.rawValue)', found \(describe(token))",
                    column: token.column
                )
            }
            return FilterSyntax(.compare(lhs, op, rhs), column: lhs.column)

        case .keyword(.in):
            try advance()
            guard token.kind == .leftParen else {
                throw FilterError("expected '(' after 'in', found \(describe(token))", column: token.column)
            }
            try advance()
            var items: [FilterSyntax.Operand] = []
            while true {
                guard let item = try literal() else {
                    let what = items.isEmpty ? "in the 'in' list" : "after ','"
                    throw FilterError("expected a literal \(what), found \(describe(token))", column: token.column)
                }
                items.append(item)
                if token.kind == .comma {
                    try advance()
                } else if token.kind == .rightParen {
                    try advance()
                    break
                } else {
                    throw FilterError(
                        "expected ',' or ')' in the 'in' list, found \(describe(token))",
                        column: token.column
                    )
                }
            }
            return FilterSyntax(.inList(lhs, items), column: lhs.column)

        case .keyword(.is):
            try advance()
            var negated = false
            if token.kind == .keyword(.not) {
                negated = true
                try advance()
            }
            guard token.kind == .keyword(.null) else {
                let expected = negated ? "'null' after 'is not'" : "'null' or 'not null' after 'is'"
                throw FilterError("expected \(expected), found \(describe(token))", column: token.column)
            }
            try advance()
            return FilterSyntax(.isNull(lhs, negated: negated), column: lhs.column)

        default:
            var message = "expected an operator \(afterPrevious)"
            // `IN`, `Is`: keywords are lowercase, and saying so beats a bare "expected an operator".
            if case .path(let segments) = token.kind, segments.count == 1,
                let keyword = FilterKeyword(rawValue: segments[0].lowercased()), keyword == .in || keyword == .is
            {
                message += " (keywords are lowercase: '\(keyword.rawValue)')"
            } else {
                message += ", found \(describe(token))"
            }
            throw FilterError(message, column: token.column)
        }
    }

    /// An operand, or nil (without consuming anything) when the current token cannot start one.
    mutating func operand() throws(FilterError) -> FilterSyntax.Operand? {
        let column = token.column
        let value: FilterSyntax.Operand.Value
        switch token.kind {
        case .path(let segments): value = .path(field: segments[0], hop: segments.count > 1 ? segments[1] : nil)
        case .auth(let field): value = .auth(field)
        case .new(let field, let hop): value = .new(field: field, hop: hop)
        default:
            return try literal()
        }
        try advance()
        return FilterSyntax.Operand(value, column: column)
    }

    /// A literal operand, or nil (without consuming anything) when the current token is not one.
    mutating func literal() throws(FilterError) -> FilterSyntax.Operand? {
        let literal: FilterSyntax.Literal
        switch token.kind {
        case .string(let s): literal = .string(s)
        case .integer(let i): literal = .int(i)
        case .double(let d): literal = .double(d)
        case .keyword(.true): literal = .bool(true)
        case .keyword(.false): literal = .bool(false)
        case .keyword(.null): literal = .null
        default: return nil
        }
        let column = token.column
        try advance()
        return FilterSyntax.Operand(.literal(literal), column: column)
    }

    // MARK: - Helpers

    /// Counts one level of `(` or `!`; beyond `maxDepth` the filter is rejected without a column.
    mutating func enter() throws(FilterError) {
        depth += 1
        guard depth <= FilterParser.maxDepth else {
            throw FilterError("the filter is nested deeper than \(FilterParser.maxDepth) levels", column: nil)
        }
    }

    /// "after 'views'", quoting the previous token, or "at the start" before any token.
    var afterPrevious: String {
        guard let previous else { return "at the start" }
        if case .string = previous.kind { return "after \(lexer.text(of: previous))" }
        return "after '\(lexer.text(of: previous))'"
    }

    func describe(_ token: FilterToken) -> String {
        switch token.kind {
        case .end: "the end of the filter"
        case .string: lexer.text(of: token)  // already quoted
        default: "'\(lexer.text(of: token))'"
        }
    }
}
