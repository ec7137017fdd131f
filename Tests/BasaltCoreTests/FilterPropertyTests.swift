import PropertyBased
import Testing

@testable import BasaltCore

// Property tests for the filter parser and checker: arbitrary text never crashes them and only
// ever yields an AST or a FilterError with a sensible column; generated well-formed filters parse
// to exactly the tree they were generated from, and every string literal in them ends up as a
// string literal value, never as a name or as structure.

// MARK: - Pieces the generators draw from

/// Fragments of string literal content: quotes, SQL and filter metacharacters, unicode (combining
/// marks, emoji with modifiers, bidi and BOM controls). Never U+0000, which the lexer rejects.
private let stringPieces: [String] = [
    "'", "''", "a", "Z", " ", "%", "_", ";", "--", "/*", "*/", "\"", "\\", "`", "$1", "?", ":x",
    "DROP TABLE posts;", "' OR '1'='1", "); DELETE FROM users; --", ")", "(", "&&", "||", "!", "=", "~",
    "@auth.id", "é", "e\u{301}", "🙂", "👍🏽", "\u{202E}", "日本", "\n", "\t", "\r\n", "\u{FEFF}", "null",
    "true", "in", "x.y", "\u{130}", "ß",
]

/// Fragments of (mostly broken) filter text for the fuzzing property.
private let junkPieces: [String] = [
    "views", "title", "author.name", "editor.", "a.b.c", " ", "  ", "=", "==", "!=", "<", "<=", ">", ">=", "~", "!~",
    "!", "(", ")", "&&", "||", "&", "|", "in", "is", "not", "null", "true", "false", "IN", "'", "''", "'x'",
    "'🙂'", "5", "-", "-3", "1.5e3", "1e999", "9223372036854775808", "1.", ".", ",", "@auth.id", "@new.title",
    "@", "@x", "é", "🙂", "#", "\u{0}", "\n", "e\u{301}", "meta", "created_at", "'2024-01-01T00:00:00Z'",
]

/// Fields of `FilterFixtures.posts` by what they compare with.
private let textFields = ["title", "body", "status", "link", "author.name", "editor.email"]
private let numberFields = ["views", "score", "version", "author.age"]
private let anyFields = textFields + numberFields + ["meta", "published", "created_at", "id", "author", "editor.team"]
private let doubleTexts = ["1.5", "-0.25", "2e3", "-1.5E-2", "1e+2", "0.0", "3.25e-7"]
private let spaces = [" ", "  ", "\t", "\n", " \r\n "]

// MARK: - Generated well-formed filters

/// A generated filter, the column-free rendering of the tree it must parse to, and its string
/// literals in source order.
struct GeneratedFilter: Sendable, CustomStringConvertible {
    var text: String
    var shape: String
    var strings: [String]
    var description: String { text }
}

/// Builds random well-formed filters from the grammar, tracking nesting and comparison counts so
/// every result is within the limits.
private struct FilterBuilder {
    var strings: [String] = []
    var comparisons = 0

    /// Optional layout between tokens where the grammar allows none.
    func gap(_ rng: inout some RandomNumberGenerator) -> String {
        Bool.random(using: &rng) ? "" : spaces.randomElement(using: &rng)!
    }

    /// Required layout between word-like tokens.
    func space(_ rng: inout some RandomNumberGenerator) -> String { spaces.randomElement(using: &rng)! }

    mutating func stringLiteral(_ rng: inout some RandomNumberGenerator) -> (text: String, shape: String) {
        let count = Int.random(in: 0...5, using: &rng)
        let value = (0..<count).map { _ in stringPieces.randomElement(using: &rng)! }.joined()
        strings.append(value)
        var quoted = "'"
        for c in value.unicodeScalars {
            quoted.unicodeScalars.append(c)
            if c == "'" { quoted.unicodeScalars.append(c) }
        }
        return (quoted + "'", "str")
    }

    func numberLiteral(_ rng: inout some RandomNumberGenerator) -> (text: String, shape: String) {
        switch Int.random(in: 0..<4, using: &rng) {
        case 0:
            let text = doubleTexts.randomElement(using: &rng)!
            return (text, "double(\(Double(text)!))")
        case 1:
            let i = [Int64.min, Int64.max, 0, -1].randomElement(using: &rng)!
            return ("\(i)", "int(\(i))")
        default:
            let i = Int64.random(in: -1_000_000...1_000_000, using: &rng)
            return ("\(i)", "int(\(i))")
        }
    }

    mutating func comparison(_ rng: inout some RandomNumberGenerator) -> (text: String, shape: String) {
        comparisons += 1
        switch Int.random(in: 0..<6, using: &rng) {
        case 0, 1:
            // text field op string (or the mirror image)
            let field = textFields.randomElement(using: &rng)!
            let op = FilterOp.allCases.randomElement(using: &rng)!
            let lit = stringLiteral(&rng)
            if Bool.random(using: &rng) {
                return ("\(field)\(gap(&rng))\(op.rawValue)\(gap(&rng))\(lit.text)", "[\(field) \(op.rawValue) str]")
            }
            return ("\(lit.text)\(gap(&rng))\(op.rawValue)\(gap(&rng))\(field)", "[str \(op.rawValue) \(field)]")
        case 2:
            let field = numberFields.randomElement(using: &rng)!
            let op = [FilterOp.eq, .ne, .lt, .le, .gt, .ge].randomElement(using: &rng)!
            let lit = numberLiteral(&rng)
            return (
                "\(field)\(gap(&rng))\(op.rawValue)\(gap(&rng))\(lit.text)", "[\(field) \(op.rawValue) \(lit.shape)]"
            )
        case 3:
            let field = textFields.randomElement(using: &rng)!
            let items = (0..<Int.random(in: 1...3, using: &rng)).map { _ in stringLiteral(&rng) }
            let text = items.map(\.text).joined(separator: "\(gap(&rng)),\(gap(&rng))")
            return (
                "\(field)\(space(&rng))in\(gap(&rng))(\(gap(&rng))\(text)\(gap(&rng)))",
                "[\(field) in \(items.map(\.shape).joined(separator: ","))]"
            )
        case 4:
            let field = anyFields.randomElement(using: &rng)!
            let negated = Bool.random(using: &rng)
            let text = "\(field)\(space(&rng))is\(space(&rng))" + (negated ? "not\(space(&rng))" : "") + "null"
            return (text, "[\(field) is \(negated ? "not " : "")null]")
        default:
            let a = textFields.randomElement(using: &rng)!
            let b = textFields.randomElement(using: &rng)!
            let op = FilterOp.allCases.randomElement(using: &rng)!
            return ("\(a)\(gap(&rng))\(op.rawValue)\(gap(&rng))\(b)", "[\(a) \(op.rawValue) \(b)]")
        }
    }

    enum Kind { case comparison, not, and, or }

    /// An expression of at most `height` levels; `depth` is the `(`/`!` nesting around it.
    mutating func expression(
        height: Int,
        depth: Int,
        _ rng: inout some RandomNumberGenerator
    )
        -> (text: String, shape: String, kind: Kind)
    {
        let roll = Int.random(in: 0..<10, using: &rng)
        if height == 0 || roll < 3 || comparisons > 24 {
            let c = comparison(&rng)
            // Redundant parentheses leave the tree unchanged.
            if depth < 30, Int.random(in: 0..<5, using: &rng) == 0 {
                return ("(\(gap(&rng))\(c.text)\(gap(&rng)))", c.shape, .comparison)
            }
            return (c.text, c.shape, .comparison)
        }
        if roll < 5, depth < 30 {
            let inner = expression(height: height - 1, depth: depth + 2, &rng)
            let text = inner.kind == .and || inner.kind == .or ? "(\(inner.text))" : inner.text
            return ("!\(gap(&rng))\(text)", "not(\(inner.shape))", .not)
        }
        let isAnd = roll < 8
        var texts: [String] = []
        var shapes: [String] = []
        for _ in 0..<Int.random(in: 2...3, using: &rng) {
            let child = expression(height: height - 1, depth: depth + 1, &rng)
            // A child of the same connective, or an `||` under `&&`, needs parentheses to stay a
            // separate node; an `&&` under `||` may go either way (precedence).
            let needsParens =
                child.kind == (isAnd ? .and : .or) || (isAnd && child.kind == .or)
                || (child.kind == .and && Bool.random(using: &rng))
            texts.append(needsParens ? "(\(gap(&rng))\(child.text)\(gap(&rng)))" : child.text)
            shapes.append(child.shape)
        }
        let connective = isAnd ? "&&" : "||"
        var text = texts[0]
        for next in texts.dropFirst() { text += "\(gap(&rng))\(connective)\(gap(&rng))\(next)" }
        return (text, "\(isAnd ? "and" : "or")(\(shapes.joined(separator: ", ")))", isAnd ? .and : .or)
    }
}

private let wellFormedFilters = Generator<GeneratedFilter, Shrink.None<GeneratedFilter>>(run: { rng in
    var builder = FilterBuilder()
    let e = builder.expression(height: Int.random(in: 0...5, using: &rng), depth: 0, &rng)
    return GeneratedFilter(text: e.text, shape: e.shape, strings: builder.strings)
})

// MARK: - Observing trees

private func shape(_ s: FilterSyntax) -> String {
    switch s.node {
    case .and(let items): "and(\(items.map(shape).joined(separator: ", ")))"
    case .or(let items): "or(\(items.map(shape).joined(separator: ", ")))"
    case .not(let inner): "not(\(shape(inner)))"
    case .compare(let a, let op, let b): "[\(shape(a)) \(op.rawValue) \(shape(b))]"
    case .inList(let a, let items): "[\(shape(a)) in \(items.map(shape).joined(separator: ","))]"
    case .isNull(let a, let negated): "[\(shape(a)) is \(negated ? "not " : "")null]"
    }
}

private func shape(_ o: FilterSyntax.Operand) -> String {
    switch o.value {
    case .path(let field, let hop): hop.map { "\(field).\($0)" } ?? field
    case .auth(let f): "@auth.\(f)"
    case .new(let f, let hop): "@new.\(f)" + (hop.map { ".\($0)" } ?? "")
    case .literal(.string): "str"
    case .literal(.int(let i)): "int(\(i))"
    case .literal(.double(let d)): "double(\(d))"
    case .literal(.bool(let b)): "\(b)"
    case .literal(.null): "null"
    }
}

private func operands(_ s: FilterSyntax) -> [FilterSyntax.Operand] {
    switch s.node {
    case .and(let items), .or(let items): items.flatMap(operands)
    case .not(let inner): operands(inner)
    case .compare(let a, _, let b): [a, b]
    case .inList(let a, let items): [a] + items
    case .isNull(let a, _): [a]
    }
}

/// Every string literal value and every field name in a checked expression, in source order.
private func contents(_ e: FilterExpr) -> (strings: [String], names: [String]) {
    var strings: [String] = []
    var names: [String] = []
    func visit(_ o: FilterOperand) {
        switch o {
        case .literal(.string(let s)): strings.append(s)
        case .field(let p): names.append(p.hop.map { "\(p.field).\($0.field)" } ?? p.field)
        case .auth(let n, _): names.append(n)
        case .new(let p): names.append(p.hop.map { "\(p.field).\($0.field)" } ?? p.field)
        case .literal: break
        }
    }
    func visit(_ e: FilterExpr) {
        switch e {
        case .and(let items), .or(let items): items.forEach(visit)
        case .not(let inner): visit(inner)
        case .compare(let a, _, let b):
            visit(a)
            visit(b)
        case .inList(let a, let items):
            visit(a)
            for case .string(let s) in items { strings.append(s) }
        case .isNull(let a, _): visit(a)
        case .constant: break
        }
    }
    visit(e)
    return (strings, names)
}

/// No `.and` directly inside an `.and`, no `.or` inside an `.or`, and every connective has two or more operands.
private func isFlat(_ e: FilterExpr) -> Bool {
    switch e {
    case .and(let items):
        items.count >= 2 && items.allSatisfy { if case .and = $0 { false } else { isFlat($0) } }
    case .or(let items):
        items.count >= 2 && items.allSatisfy { if case .or = $0 { false } else { isFlat($0) } }
    case .not(let inner): isFlat(inner)
    default: true
    }
}

/// Robustness: whatever happens, it is an AST or a FilterError whose column lies within the
/// input (or just past its end), never a crash, a hang or another error.
private func expectRobust(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let end = text.unicodeScalars.count + 1
    do throws(FilterError) {
        _ = try FilterParser.parse(text)
    } catch {
        if let column = error.column { #expect((1...end).contains(column), "\(error)", sourceLocation: sourceLocation) }
        #expect(!error.message.isEmpty, sourceLocation: sourceLocation)
    }
    do throws(FilterError) {
        _ = try FilterChecker.check(
            text,
            collection: FilterFixtures.posts,
            schema: FilterFixtures.schema,
            allowAuth: true,
            allowNew: true
        )
    } catch {
        if let column = error.column { #expect((1...end).contains(column), "\(error)", sourceLocation: sourceLocation) }
    }
}

// MARK: - Properties

@Test func arbitraryTextNeverCrashes() async {
    let junk = Gen.element(of: junkPieces).map { $0 ?? "" }.array(of: 0...40).map { $0.joined() }
    await propertyCheck(count: 1000, input: junk) { text in
        expectRobust(text)
    }
}

@Test func arbitraryScalarsNeverCrash() async {
    // Any scalar at all, biased to ASCII where the grammar lives.
    let scalar = Gen<Unicode.Scalar>.frequency(
        (4, Gen<UInt8>.value(in: 0...127).map { Unicode.Scalar($0) }),
        (1, Gen<UInt32>.value(in: 0...0x10FFFF).compactMap { Unicode.Scalar($0) })
    )
    let text = scalar.array(of: 0...60).map { scalars in
        var s = String.UnicodeScalarView()
        s.append(contentsOf: scalars)
        return String(s)
    }
    await propertyCheck(count: 1000, input: text) { text in
        expectRobust(text)
    }
}

@Test func wellFormedFiltersParseToTheirTree() async {
    await propertyCheck(count: 500, input: wellFormedFilters) { generated in
        let syntax: FilterSyntax
        do throws(FilterError) {
            syntax = try FilterParser.parse(generated.text)
        } catch {
            // The generator bounds depth and comparisons, but not quite length.
            let tooLong = generated.text.utf8.count > FilterParser.maxBytes
            #expect(tooLong && error.column == nil, "\(error) in \(generated.text)")
            return
        }
        #expect(shape(syntax) == generated.shape)

        // String literals come back verbatim, in order, as string literals only.
        let literalStrings = operands(syntax).compactMap { o -> String? in
            if case .literal(.string(let s)) = o.value { return s }
            return nil
        }
        #expect(literalStrings == generated.strings)

        // Every operand's column points at where it is written.
        let scalars = Array(generated.text.unicodeScalars)
        for o in operands(syntax) {
            let at = String(String.UnicodeScalarView(scalars[(o.column - 1)...]))
            switch o.value {
            case .path(let field, _): #expect(at.hasPrefix(field))
            case .literal(.string): #expect(at.hasPrefix("'"))
            case .literal(.null): #expect(at.hasPrefix("null"))
            case .literal: #expect(at.first.map { $0.isNumber || $0 == "-" || $0 == "t" || $0 == "f" } == true)
            case .auth, .new: #expect(at.hasPrefix("@"))
            }
        }
    }
}

@Test func wellFormedFiltersCheckWithLiteralsIntact() async {
    await propertyCheck(count: 500, input: wellFormedFilters) { generated in
        let expr: FilterExpr
        do throws(FilterError) {
            expr = try FilterChecker.check(
                generated.text,
                collection: FilterFixtures.posts,
                schema: FilterFixtures.schema
            )
        } catch {
            let tooLong = generated.text.utf8.count > FilterParser.maxBytes
            #expect(tooLong && error.column == nil, "\(error) in \(generated.text)")
            return
        }
        let (strings, names) = contents(expr)
        // No string was folded away, dropped, merged or turned into anything else…
        #expect(strings == generated.strings)
        // …and nothing but declared names became a name.
        #expect(names.allSatisfy { anyFields.contains($0) }, "\(names)")
        #expect(isFlat(expr), "\(expr)")
    }
}

@Test func editedFiltersNeverCrash() async {
    // Well-formed filters with a random edit: the near-misses most likely to reach odd states.
    await propertyCheck(
        count: 1000,
        input: wellFormedFilters,
        Gen.int(in: 0...1000),
        Gen.int(in: 0...1000),
        Gen.element(of: junkPieces).map { $0 ?? "" }
    ) { generated, a, b, piece in
        var scalars = Array(generated.text.unicodeScalars)
        let i = a % (scalars.count + 1)
        switch b % 3 {
        case 0: scalars.removeSubrange(i..<min(scalars.count, i + 1 + b % 4))
        case 1: scalars.insert(contentsOf: piece.unicodeScalars, at: i)
        default: scalars.removeSubrange(i...)
        }
        var text = String.UnicodeScalarView()
        text.append(contentsOf: scalars)
        expectRobust(String(text))
    }
}

@Test func nestingLimitIsExact() async {
    // Any mix of `(` and `!`, counted together.
    let openers = Gen.bool.array(of: 1...40)
    await propertyCheck(count: 200, input: openers) { parens in
        let opening = parens.map { $0 ? "(" : "!" }.joined()
        let closing = String(repeating: ")", count: parens.filter { $0 }.count)
        let text = opening + "views = 1" + closing
        do throws(FilterError) {
            _ = try FilterParser.parse(text)
            #expect(parens.count <= FilterParser.maxDepth)
        } catch {
            #expect(parens.count > FilterParser.maxDepth)
            #expect(error.column == nil)
        }
    }
}

@Test func comparisonLimitIsExact() async {
    await propertyCheck(count: 100, input: Gen.int(in: 1...130), Gen.bool) { n, useOr in
        let text = Array(repeating: "views = 1", count: n).joined(separator: useOr ? " || " : " && ")
        do throws(FilterError) {
            _ = try FilterParser.parse(text)
            #expect(n <= FilterParser.maxComparisons)
        } catch {
            #expect(n > FilterParser.maxComparisons)
            #expect(error.column == nil)
        }
    }
}
