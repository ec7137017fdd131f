// The filter language's lexer (API.md §3). Hand-written so that every error carries the exact
// column, counted in Unicode code points as the API promises, and so that no input can make it
// loop or recurse: it is a single forward scan over the scalars.

/// The lowercase keywords of the filter language. `IN` or `True` are not keywords; they lex as
/// field names and fail later with a hint.
enum FilterKeyword: String, Sendable, Equatable {
    case `in`, `is`, not, null, `true`, `false`
}

/// One token. `start` and `end` are 0-based offsets into the input's Unicode scalars, so the
/// 1-based column of a token is `start + 1`.
struct FilterToken: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        /// `field` or `relation.field`; the lexer allows at most two segments.
        case path([String])
        case string(String)
        case integer(Int64)
        case double(Double)
        case keyword(FilterKeyword)
        case auth(String)
        /// `@new.field` or `@new.relation.field` (one hop, API.md §9).
        case new(field: String, hop: String?)
        case leftParen, rightParen, comma
        case and, or, bang
        case op(FilterOp)
        case end
    }

    var kind: Kind
    var start: Int
    var end: Int

    var column: Int { start + 1 }
}

/// Turns filter text into tokens, one `next()` at a time. The parser pulls tokens lazily, so the
/// first error in reading order is the one reported.
struct FilterLexer {
    let scalars: [Unicode.Scalar]
    private(set) var position = 0

    init(_ text: String) {
        scalars = Array(text.unicodeScalars)
    }

    mutating func next() throws(FilterError) -> FilterToken {
        while position < scalars.count, Self.isWhitespace(scalars[position]) { position += 1 }
        let start = position
        guard position < scalars.count else { return FilterToken(kind: .end, start: start, end: start) }
        let c = scalars[position]

        func single(_ kind: FilterToken.Kind, length: Int = 1) -> FilterToken {
            position += length
            return FilterToken(kind: kind, start: start, end: position)
        }

        switch c {
        case "(": return single(.leftParen)
        case ")": return single(.rightParen)
        case ",": return single(.comma)
        case "~": return single(.op(.contains))
        case "=":
            // `==` is the most common slip from other languages; say what to write instead.
            if peek(1) == "=" { throw FilterError("unexpected '==' (use '=' to compare)", column: start + 1) }
            return single(.op(.eq))
        case "!":
            if peek(1) == "=" { return single(.op(.ne), length: 2) }
            if peek(1) == "~" { return single(.op(.notContains), length: 2) }
            return single(.bang)
        case "<": return peek(1) == "=" ? single(.op(.le), length: 2) : single(.op(.lt))
        case ">": return peek(1) == "=" ? single(.op(.ge), length: 2) : single(.op(.gt))
        case "&":
            guard peek(1) == "&" else { throw FilterError("unexpected character '&' (use '&&')", column: start + 1) }
            return single(.and, length: 2)
        case "|":
            guard peek(1) == "|" else { throw FilterError("unexpected character '|' (use '||')", column: start + 1) }
            return single(.or, length: 2)
        case "'": return try string()
        case "@": return try reference()
        case "-", "0"..."9": return try number()
        default:
            if Self.isIdentifierStart(c) { return try pathOrKeyword() }
            throw FilterError("unexpected character \(Self.quote(c))", column: start + 1)
        }
    }

    /// The source text of a token, shortened for error messages.
    func text(of token: FilterToken) -> String {
        let limit = 24
        let end = min(token.end, token.start + limit)
        var s = String(String.UnicodeScalarView(scalars[token.start..<end]))
        if token.end > end { s += "…" }
        return s
    }

    // MARK: - Token kinds

    /// `'…'`, where a doubled `''` stands for one quote. Any other scalar is taken verbatim
    /// except NUL, which PostgreSQL text cannot hold: rejecting it here turns a would-be driver
    /// error into a 400 with a column.
    private mutating func string() throws(FilterError) -> FilterToken {
        let start = position
        position += 1
        var value = String.UnicodeScalarView()
        while true {
            guard position < scalars.count else { throw FilterError("unterminated string", column: start + 1) }
            let c = scalars[position]
            if c == "'" {
                if peek(1) == "'" {
                    value.append("'")
                    position += 2
                    continue
                }
                position += 1
                break
            }
            if c == "\0" { throw FilterError("a string may not contain U+0000", column: position + 1) }
            value.append(c)
            position += 1
        }
        return FilterToken(kind: .string(String(value)), start: start, end: position)
    }

    /// `@auth.field` / `@new.field`, written without spaces: one token, so a stray `@` or an
    /// unknown scope is reported where it is written.
    private mutating func reference() throws(FilterError) -> FilterToken {
        let start = position
        position += 1
        let scope = identifier()
        guard scope == "auth" || scope == "new" else {
            throw FilterError(
                "unknown reference '@\(scope)' (use '@auth.<field>' or '@new.<field>')",
                column: start + 1
            )
        }
        guard peek(0) == ".", let next = peek(1), Self.isIdentifierStart(next) else {
            throw FilterError("expected '.' and a field name after '@\(scope)'", column: position + 1)
        }
        position += 1
        let field = identifier()
        var hop: String?
        // `@new.board.owner`: one hop from an incoming relation value (API.md §9); `@auth` has none.
        if scope == "new", peek(0) == ".", let next = peek(1), Self.isIdentifierStart(next) {
            position += 1
            hop = identifier()
        }
        if peek(0) == "." {
            let shape = scope == "auth" ? "'@auth.\(field)'" : "'@new.\(field)' or '@new.\(field).<field>'"
            throw FilterError("a reference names a single field (or, for @new, one hop), as in \(shape)", column: position + 1)
        }
        let kind: FilterToken.Kind = scope == "auth" ? .auth(field) : .new(field: field, hop: hop)
        return FilterToken(kind: kind, start: start, end: position)
    }

    /// `-?digits(.digits)?([eE][+-]?digits)?`. Integers that fit in Int64 stay integers so they
    /// compare exactly; anything else becomes a finite Double.
    private mutating func number() throws(FilterError) -> FilterToken {
        let start = position
        if peek(0) == "-" {
            guard let d = peek(1), Self.isDigit(d) else {
                throw FilterError("unexpected character '-' (a negative number is written like -5)", column: start + 1)
            }
            position += 1
        }
        var isInteger = true
        skipDigits()
        if peek(0) == "." {
            guard let d = peek(1), Self.isDigit(d) else { throw invalidNumber(from: start) }
            isInteger = false
            position += 1
            skipDigits()
        }
        if peek(0) == "e" || peek(0) == "E" {
            isInteger = false
            position += 1
            if peek(0) == "+" || peek(0) == "-" { position += 1 }
            guard let d = peek(0), Self.isDigit(d) else { throw invalidNumber(from: start) }
            skipDigits()
        }
        // `5abc` or `1.2.3` is one bad word, not a number followed by a field.
        if let c = peek(0), Self.isIdentifierContinue(c) || c == "." { throw invalidNumber(from: start) }

        let text = String(String.UnicodeScalarView(scalars[start..<position]))
        if isInteger, let value = Int64(text) {
            return FilterToken(kind: .integer(value), start: start, end: position)
        }
        guard let value = Double(text), value.isFinite else {
            throw FilterError("number out of range '\(text)'", column: start + 1)
        }
        return FilterToken(kind: .double(value), start: start, end: position)
    }

    /// A keyword, `field` or `relation.field` (no spaces around the dot).
    private mutating func pathOrKeyword() throws(FilterError) -> FilterToken {
        let start = position
        let first = identifier()
        if let keyword = FilterKeyword(rawValue: first) {
            return FilterToken(kind: .keyword(keyword), start: start, end: position)
        }
        var segments = [first]
        while peek(0) == "." {
            guard segments.count < 2 else {
                throw FilterError("a path has at most one '.' (one hop through a relation)", column: position + 1)
            }
            guard let next = peek(1), Self.isIdentifierStart(next) else {
                throw FilterError("expected a field name after '.'", column: position + 2)
            }
            position += 1
            segments.append(identifier())
        }
        return FilterToken(kind: .path(segments), start: start, end: position)
    }

    /// Swallows the rest of a malformed number so the message quotes all of it.
    private mutating func invalidNumber(from start: Int) -> FilterError {
        while let c = peek(0), Self.isIdentifierContinue(c) || c == "." || c == "-" || c == "+" { position += 1 }
        let text = String(String.UnicodeScalarView(scalars[start..<position]))
        return FilterError("invalid number '\(text)'", column: start + 1)
    }

    // MARK: - Helpers

    private func peek(_ offset: Int) -> Unicode.Scalar? {
        position + offset < scalars.count ? scalars[position + offset] : nil
    }

    private mutating func identifier() -> String {
        let start = position
        while let c = peek(0), Self.isIdentifierContinue(c) { position += 1 }
        return String(String.UnicodeScalarView(scalars[start..<position]))
    }

    private mutating func skipDigits() {
        while let c = peek(0), Self.isDigit(c) { position += 1 }
    }

    static func isWhitespace(_ c: Unicode.Scalar) -> Bool {
        c == " " || c == "\t" || c == "\n" || c == "\r"
    }

    static func isDigit(_ c: Unicode.Scalar) -> Bool { ("0"..."9").contains(c) }

    /// Field names are ASCII (`SchemaNames.isValidName`); uppercase is accepted here only so that
    /// `TRUE` or `IN` can be reported with a hint rather than as a bare unexpected character.
    static func isIdentifierStart(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || c == "_"
    }

    static func isIdentifierContinue(_ c: Unicode.Scalar) -> Bool { isIdentifierStart(c) || isDigit(c) }

    /// `'#'` for a visible character, `U+0007` for one that would be invisible or confusing in a message.
    static func quote(_ c: Unicode.Scalar) -> String {
        switch c.properties.generalCategory {
        case .control, .format, .spaceSeparator, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse,
            .unassigned, .nonspacingMark, .enclosingMark:
            let hex = String(c.value, radix: 16, uppercase: true)
            return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        default:
            return "'\(c)'"
        }
    }
}
