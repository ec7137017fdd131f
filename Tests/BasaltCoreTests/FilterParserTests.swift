import Testing

@testable import BasaltCore

// Filter text → typed AST or error column, as tables (STYLE.md §6).

enum FilterFixtures {
    static let users = CollectionSchema(
        name: "users",
        fields: [
            FieldSchema(name: "name", type: .text, required: true),
            FieldSchema(name: "email", type: .email),
            FieldSchema(name: "age", type: .integer),
            FieldSchema(name: "team", type: .relation, target: "teams"),
        ]
    )

    static let posts = CollectionSchema(
        name: "posts",
        fields: [
            FieldSchema(name: "title", type: .text, required: true),
            FieldSchema(name: "body", type: .text),
            FieldSchema(name: "views", type: .integer),
            FieldSchema(name: "score", type: .number),
            FieldSchema(name: "published", type: .boolean, required: true),
            FieldSchema(name: "featured", type: .boolean),
            FieldSchema(name: "published_at", type: .datetime),
            FieldSchema(name: "meta", type: .json),
            FieldSchema(name: "status", type: .select, values: ["draft", "open"]),
            FieldSchema(name: "link", type: .url),
            FieldSchema(name: "author", type: .relation, required: true, target: "users"),
            FieldSchema(name: "editor", type: .relation, target: "users"),
            FieldSchema(name: "broken", type: .relation, target: "ghosts"),
        ]
    )

    static let schema = Schema(collections: [posts, users])
}

// MARK: - Expected-AST shorthands

private func field(_ name: String, _ kind: ValueKind, nullable: Bool = true) -> FilterOperand {
    .field(FieldPath(field: name, kind: kind, nullable: nullable))
}

private func hop(_ name: String, _ target: String, _ field: String, _ kind: ValueKind, nullable: Bool) -> FilterOperand {
    .field(FieldPath(field: name, hop: (target, field), kind: kind, nullable: nullable))
}

private let title = field("title", .text, nullable: false)
private let body = field("body", .text)
private let views = field("views", .number)
private let score = field("score", .number)
private let published = field("published", .boolean, nullable: false)
private let featured = field("featured", .boolean)
private let publishedAt = field("published_at", .datetime)
private let meta = field("meta", .json)
private let status = field("status", .text)
private let link = field("link", .text)
private let author = field("author", .id, nullable: false)
private let editor = field("editor", .id)
private let id = field("id", .id, nullable: false)
private let createdAt = field("created_at", .datetime, nullable: false)
private let updatedAt = field("updated_at", .datetime, nullable: false)
private let version = field("version", .number, nullable: false)

private func newRef(_ name: String, _ kind: ValueKind, nullable: Bool = true) -> FilterOperand {
    .new(FieldPath(field: name, kind: kind, nullable: nullable))
}

private func str(_ s: String) -> FilterOperand { .literal(.string(s)) }
private func int(_ i: Int64) -> FilterOperand { .literal(.int(i)) }
private func dbl(_ d: Double) -> FilterOperand { .literal(.double(d)) }
private func uuid(_ s: String) -> FilterOperand { .literal(.uuid(s)) }
private func ts(_ text: String) -> FilterOperand { .literal(.timestamp(Timestamp(rfc3339: text)!)) }

private let v1 = FilterExpr.compare(views, .eq, int(1))
private let v2 = FilterExpr.compare(views, .eq, int(2))
private let v3 = FilterExpr.compare(views, .eq, int(3))
private let uuidA = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
private let uuidB = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c"

// MARK: - Valid filters

struct ValidFilter: Sendable, CustomTestStringConvertible {
    var filter: String
    var expected: FilterExpr
    var allowAuth = false
    var allowNew = false
    var authFields: [String: ValueKind] = ["id": .id]
    var testDescription: String { filter }

    init(
        _ filter: String,
        _ expected: FilterExpr,
        allowAuth: Bool = false,
        allowNew: Bool = false,
        authFields: [String: ValueKind] = ["id": .id]
    ) {
        self.filter = filter
        self.expected = expected
        self.allowAuth = allowAuth
        self.allowNew = allowNew
        self.authFields = authFields
    }
}

private let validFilters: [ValidFilter] = [
    // Each operator and kind.
    ValidFilter("title = 'Hello'", .compare(title, .eq, str("Hello"))),
    ValidFilter("views > 10", .compare(views, .gt, int(10))),
    ValidFilter("views >= -5", .compare(views, .ge, int(-5))),
    ValidFilter("views != 0", .compare(views, .ne, int(0))),
    ValidFilter("score < 1.5", .compare(score, .lt, dbl(1.5))),
    ValidFilter("score <= -2.5e3", .compare(score, .le, dbl(-2500))),
    ValidFilter("score > 1E+2", .compare(score, .gt, dbl(100))),
    ValidFilter("score > 2e-1", .compare(score, .gt, dbl(0.2))),
    ValidFilter("views = 007", .compare(views, .eq, int(7))),
    ValidFilter("views = 9223372036854775807", .compare(views, .eq, int(.max))),
    ValidFilter("views = -9223372036854775808", .compare(views, .eq, int(.min))),
    ValidFilter("views = 9223372036854775808", .compare(views, .eq, dbl(9_223_372_036_854_775_808))),
    ValidFilter("title ~ 'swift'", .compare(title, .contains, str("swift"))),
    ValidFilter("title !~ '100%_off'", .compare(title, .notContains, str("100%_off"))),
    ValidFilter("title ~ body", .compare(title, .contains, body)),
    ValidFilter("link ~ 'https'", .compare(link, .contains, str("https"))),
    ValidFilter("status = 'open'", .compare(status, .eq, str("open"))),
    ValidFilter("title < 'm'", .compare(title, .lt, str("m"))),
    ValidFilter("published = true", .compare(published, .eq, .literal(.bool(true)))),
    ValidFilter("featured != false", .compare(featured, .ne, .literal(.bool(false)))),
    ValidFilter("published = featured", .compare(published, .eq, featured)),
    ValidFilter("created_at > '2024-01-01T00:00:00Z'", .compare(createdAt, .gt, ts("2024-01-01T00:00:00Z"))),
    ValidFilter(
        "published_at <= '2024-06-01T12:30:00.250+02:00'",
        .compare(publishedAt, .le, ts("2024-06-01T10:30:00.250Z"))
    ),
    ValidFilter("'2024-01-01T00:00:00Z' < created_at", .compare(ts("2024-01-01T00:00:00Z"), .lt, createdAt)),
    ValidFilter("created_at < updated_at", .compare(createdAt, .lt, updatedAt)),
    ValidFilter("version >= 2", .compare(version, .ge, int(2))),
    ValidFilter("id = '0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B'", .compare(id, .eq, uuid(uuidA))),
    ValidFilter("author = '\(uuidA)'", .compare(author, .eq, uuid(uuidA))),
    ValidFilter("id > '\(uuidA)'", .compare(id, .gt, uuid(uuidA))),
    ValidFilter("author = editor", .compare(author, .eq, editor)),

    // Relation hops: always nullable (an unset relation, or a target the caller may not view, reads as null).
    ValidFilter(
        "author.name = 'Ada'",
        .compare(hop("author", "users", "name", .text, nullable: true), .eq, str("Ada"))
    ),
    ValidFilter(
        "editor.name = 'Ada'",
        .compare(hop("editor", "users", "name", .text, nullable: true), .eq, str("Ada"))
    ),
    ValidFilter(
        "author.email ~ '@x'",
        .compare(hop("author", "users", "email", .text, nullable: true), .contains, str("@x"))
    ),
    ValidFilter("author.age >= 18", .compare(hop("author", "users", "age", .number, nullable: true), .ge, int(18))),
    ValidFilter(
        "author.id = '\(uuidA)'",
        .compare(hop("author", "users", "id", .id, nullable: true), .eq, uuid(uuidA))
    ),
    ValidFilter(
        "editor.created_at > '2024-01-01T00:00:00Z'",
        .compare(hop("editor", "users", "created_at", .datetime, nullable: true), .gt, ts("2024-01-01T00:00:00Z"))
    ),
    ValidFilter("author.team is null", .isNull(hop("author", "users", "team", .id, nullable: true), negated: false)),
    ValidFilter(
        "'Ada' = author.name",
        .compare(str("Ada"), .eq, hop("author", "users", "name", .text, nullable: true))
    ),

    // in, is null, null-safe equality.
    ValidFilter("status in ('draft', 'open')", .inList(status, [.string("draft"), .string("open")])),
    ValidFilter("views in (1,2 , 3)", .inList(views, [.int(1), .int(2), .int(3)])),
    ValidFilter("score in (1, 2.5)", .inList(score, [.int(1), .double(2.5)])),
    ValidFilter("id in ('\(uuidA)', '\(uuidB.uppercased())')", .inList(id, [.uuid(uuidA), .uuid(uuidB)])),
    ValidFilter(
        "created_at in ('2024-01-01T00:00:00Z')",
        .inList(createdAt, [.timestamp(Timestamp(rfc3339: "2024-01-01T00:00:00Z")!)])
    ),
    ValidFilter("published in (true)", .inList(published, [.bool(true)])),
    ValidFilter("body is null", .isNull(body, negated: false)),
    ValidFilter("body is not null", .isNull(body, negated: true)),
    ValidFilter("body = null", .isNull(body, negated: false)),
    ValidFilter("body != null", .isNull(body, negated: true)),
    ValidFilter("null = body", .isNull(body, negated: false)),
    ValidFilter("meta is null", .isNull(meta, negated: false)),
    ValidFilter("meta is not null", .isNull(meta, negated: true)),
    ValidFilter("meta = null", .isNull(meta, negated: false)),
    ValidFilter("meta != null", .isNull(meta, negated: true)),

    // Literal-vs-literal folds, with the backends' semantics.
    ValidFilter("1 = 1", .constant(true)),
    ValidFilter("1 = 2", .constant(false)),
    ValidFilter("1 = 1.0", .constant(true)),
    ValidFilter("2 > 1.5", .constant(true)),
    ValidFilter("'a' < 'b'", .constant(true)),
    ValidFilter("'b' <= 'a'", .constant(false)),
    ValidFilter("'Z' < 'a'", .constant(true)),  // code point order, not case-insensitive
    ValidFilter("'e\u{301}' = '\u{E9}'", .constant(false)),  // code points, not canonical equivalence
    ValidFilter("'Crème BRÛLÉE' ~ 'brûlée'", .constant(true)),
    ValidFilter("'\u{130}stanbul' ~ 'istanbul'", .constant(true)),  // simple lowercase of İ is i
    ValidFilter("'abc' !~ 'B'", .constant(false)),
    ValidFilter("'abc' ~ ''", .constant(true)),
    ValidFilter("'a%c' ~ '%'", .constant(true)),
    ValidFilter("'abc' ~ '_'", .constant(false)),
    ValidFilter("true != false", .constant(true)),
    ValidFilter("null = null", .constant(true)),
    ValidFilter("null != null", .constant(false)),
    ValidFilter("5 = null", .constant(false)),
    ValidFilter("5 != null", .constant(true)),
    ValidFilter("null is null", .constant(true)),
    ValidFilter("5 is null", .constant(false)),
    ValidFilter("'x' is not null", .constant(true)),
    ValidFilter("2 in (1, 2)", .constant(true)),
    ValidFilter("'c' in ('a', 'b')", .constant(false)),
    ValidFilter("null in (1)", .constant(false)),
    ValidFilter("views = 1 && 1 = 2", .and([v1, .constant(false)])),

    // Logic: precedence, grouping, flattening.
    ValidFilter("views = 1 && views = 2", .and([v1, v2])),
    ValidFilter("views = 1 || views = 2", .or([v1, v2])),
    ValidFilter("views = 1 && views = 2 && views = 3", .and([v1, v2, v3])),
    ValidFilter("(views = 1 && views = 2) && views = 3", .and([v1, v2, v3])),
    ValidFilter("views = 1 && (views = 2 && views = 3)", .and([v1, v2, v3])),
    ValidFilter("views = 1 || (views = 2 || views = 3)", .or([v1, v2, v3])),
    ValidFilter("views = 1 || views = 2 && views = 3", .or([v1, .and([v2, v3])])),
    ValidFilter("views = 1 && views = 2 || views = 3", .or([.and([v1, v2]), v3])),
    ValidFilter("(views = 1 || views = 2) && views = 3", .and([.or([v1, v2]), v3])),
    ValidFilter("((views = 1))", v1),
    ValidFilter("!views = 1", .not(v1)),
    ValidFilter("!!views = 1", .not(.not(v1))),
    ValidFilter("!(views = 1 || views = 2)", .not(.or([v1, v2]))),
    ValidFilter("!views = 1 && views = 2", .and([.not(v1), v2])),
    ValidFilter("!(views = 1) || !(views = 2)", .or([.not(v1), .not(v2)])),

    // Layout and quoting.
    ValidFilter("views>1&&views<=2", .and([.compare(views, .gt, int(1)), .compare(views, .le, int(2))])),
    ValidFilter("  views\t=\n1\r\n", v1),
    ValidFilter("views=-1", .compare(views, .eq, int(-1))),
    ValidFilter("title = 'it''s'", .compare(title, .eq, str("it's"))),
    ValidFilter("title = ''''", .compare(title, .eq, str("'"))),
    ValidFilter("title = ''", .compare(title, .eq, str(""))),
    ValidFilter("title = '; DROP TABLE posts; --'", .compare(title, .eq, str("; DROP TABLE posts; --"))),
    ValidFilter("title = '\" OR 1=1 /* $1 ? :x \\'", .compare(title, .eq, str("\" OR 1=1 /* $1 ? :x \\"))),
    ValidFilter("title = 'héllo 🙂 日本 👍🏽'", .compare(title, .eq, str("héllo 🙂 日本 👍🏽"))),
    ValidFilter("title = 'a && b || !c'", .compare(title, .eq, str("a && b || !c"))),
    ValidFilter("title = 'line\nbreak'", .compare(title, .eq, str("line\nbreak"))),

    // Access-rule references.
    ValidFilter("author = @auth.id", .compare(author, .eq, .auth("id", .id)), allowAuth: true),
    ValidFilter("@auth.id = author", .compare(.auth("id", .id), .eq, author), allowAuth: true),
    ValidFilter("@auth.id = '\(uuidA)'", .compare(.auth("id", .id), .eq, uuid(uuidA)), allowAuth: true),
    ValidFilter(
        "@auth.role = 'admin' || author = @auth.id",
        .or([.compare(.auth("role", .text), .eq, str("admin")), .compare(author, .eq, .auth("id", .id))]),
        allowAuth: true,
        authFields: ["id": .id, "role": .text]
    ),
    ValidFilter("@auth.id is not null", .isNull(.auth("id", .id), negated: true), allowAuth: true),
    ValidFilter("@new.title = title", .compare(newRef("title", .text, nullable: false), .eq, title), allowNew: true),
    ValidFilter("@new.views <= 100", .compare(newRef("views", .number), .le, int(100)), allowNew: true),
    ValidFilter("@new.meta is null", .isNull(newRef("meta", .json), negated: false), allowNew: true),
    // One hop from an incoming relation value (API.md §9): the target as stored.
    ValidFilter(
        "@new.author.name = @auth.name",
        .compare(.new(FieldPath(field: "author", hop: ("users", "name"), kind: .text, nullable: true)), .eq, .auth("name", .text)),
        allowAuth: true,
        allowNew: true,
        authFields: ["id": .id, "name": .text]
    ),
    ValidFilter(
        "@new.editor.id = @auth.id",
        .compare(.new(FieldPath(field: "editor", hop: ("users", "id"), kind: .id, nullable: true)), .eq, .auth("id", .id)),
        allowAuth: true,
        allowNew: true
    ),
    ValidFilter(
        "@new.author = @auth.id",
        .compare(newRef("author", .id, nullable: false), .eq, .auth("id", .id)),
        allowAuth: true,
        allowNew: true
    ),
]

@Test(arguments: validFilters)
func validFilterChecks(_ c: ValidFilter) throws {
    let expr = try FilterChecker.check(
        c.filter,
        collection: FilterFixtures.posts,
        schema: FilterFixtures.schema,
        allowAuth: c.allowAuth,
        allowNew: c.allowNew,
        authFields: c.authFields
    )
    #expect(expr == c.expected)
}

// MARK: - Syntax trees and columns

struct ParsedFilter: Sendable, CustomTestStringConvertible {
    var filter: String
    var expected: FilterSyntax
    var testDescription: String { filter }
    init(_ filter: String, _ expected: FilterSyntax) {
        self.filter = filter
        self.expected = expected
    }
}

private func op(_ value: FilterSyntax.Operand.Value, _ column: Int) -> FilterSyntax.Operand {
    FilterSyntax.Operand(value, column: column)
}

private func path(_ name: String, _ column: Int, hop: String? = nil) -> FilterSyntax.Operand {
    op(.path(field: name, hop: hop), column)
}

private let parsedFilters: [ParsedFilter] = [
    ParsedFilter("views > 10", FilterSyntax(.compare(path("views", 1), .gt, op(.literal(.int(10)), 9)), column: 1)),
    ParsedFilter(
        "!(a = 1 || b.c != 'x')",
        FilterSyntax(
            .not(
                FilterSyntax(
                    .or([
                        FilterSyntax(.compare(path("a", 3), .eq, op(.literal(.int(1)), 7)), column: 3),
                        FilterSyntax(
                            .compare(path("b", 12, hop: "c"), .ne, op(.literal(.string("x")), 19)),
                            column: 12
                        ),
                    ]),
                    column: 3
                )
            ),
            column: 1
        )
    ),
    ParsedFilter(
        "x in (1, null, 'a', true, -2.5)",
        FilterSyntax(
            .inList(
                path("x", 1),
                [
                    op(.literal(.int(1)), 7), op(.literal(.null), 10), op(.literal(.string("a")), 16),
                    op(.literal(.bool(true)), 21), op(.literal(.double(-2.5)), 27),
                ]
            ),
            column: 1
        )
    ),
    ParsedFilter("x is not null", FilterSyntax(.isNull(path("x", 1), negated: true), column: 1)),
    ParsedFilter(
        "@auth.id = @new.owner",
        FilterSyntax(.compare(op(.auth("id"), 1), .eq, op(.new(field: "owner", hop: nil), 12)), column: 1)
    ),
    // Columns count Unicode code points: one per emoji scalar, two for e + combining acute.
    ParsedFilter(
        "'🙂' = x",
        FilterSyntax(.compare(op(.literal(.string("🙂")), 1), .eq, path("x", 7)), column: 1)
    ),
    ParsedFilter(
        "'e\u{301}' = x",
        FilterSyntax(.compare(op(.literal(.string("e\u{301}")), 1), .eq, path("x", 8)), column: 1)
    ),
    ParsedFilter(
        "'👍🏽' != x",
        FilterSyntax(.compare(op(.literal(.string("👍🏽")), 1), .ne, path("x", 9)), column: 1)
    ),
    ParsedFilter(
        "a = 1 && (b = 2)",
        FilterSyntax(
            .and([
                FilterSyntax(.compare(path("a", 1), .eq, op(.literal(.int(1)), 5)), column: 1),
                FilterSyntax(.compare(path("b", 11), .eq, op(.literal(.int(2)), 15)), column: 11),
            ]),
            column: 1
        )
    ),
    // Parentheses are not flattened by the parser (the checker does that).
    ParsedFilter(
        "(a = 1 && b = 2) && c = 3",
        FilterSyntax(
            .and([
                FilterSyntax(
                    .and([
                        FilterSyntax(.compare(path("a", 2), .eq, op(.literal(.int(1)), 6)), column: 2),
                        FilterSyntax(.compare(path("b", 11), .eq, op(.literal(.int(2)), 15)), column: 11),
                    ]),
                    column: 2
                ),
                FilterSyntax(.compare(path("c", 21), .eq, op(.literal(.int(3)), 25)), column: 21),
            ]),
            column: 2
        )
    ),
]

@Test(arguments: parsedFilters)
func parsedSyntax(_ c: ParsedFilter) throws {
    #expect(try FilterParser.parse(c.filter) == c.expected)
}

// MARK: - Invalid filters

struct InvalidFilter: Sendable, CustomTestStringConvertible {
    var filter: String
    var column: Int?
    var fragment: String
    var allowAuth = false
    var allowNew = false
    var testDescription: String { filter.count > 60 ? String(filter.prefix(60)) + "…" : filter }

    init(_ filter: String, _ column: Int?, _ fragment: String, allowAuth: Bool = false, allowNew: Bool = false) {
        self.filter = filter
        self.column = column
        self.fragment = fragment
        self.allowAuth = allowAuth
        self.allowNew = allowNew
    }
}

private let syntaxErrors: [InvalidFilter] = [
    InvalidFilter("", 1, "the filter is empty"),
    InvalidFilter("   ", 4, "the filter is empty"),
    InvalidFilter("views", 6, "expected an operator after 'views'"),
    InvalidFilter("views 5", 7, "expected an operator after 'views', found '5'"),
    InvalidFilter("views > ", 9, "expected an operand after '>', found the end of the filter"),
    InvalidFilter("views >> 5", 8, "expected an operand after '>'"),
    InvalidFilter("views == 5", 7, "unexpected '==' (use '=' to compare)"),
    InvalidFilter("views = 5 & views = 6", 11, "unexpected character '&' (use '&&')"),
    InvalidFilter("views = 5 | views = 6", 11, "unexpected character '|' (use '||')"),
    InvalidFilter("title = 'abc", 9, "unterminated string"),
    InvalidFilter("title = 'it''s", 9, "unterminated string"),
    InvalidFilter("title = 'a' && body = '", 23, "unterminated string"),
    InvalidFilter("#views = 1", 1, "unexpected character '#'"),
    InvalidFilter("views = 1 && #", 14, "unexpected character '#'"),
    InvalidFilter("views = 1;", 10, "unexpected character ';'"),
    InvalidFilter("title = \"x\"", 9, "unexpected character '\"'"),
    InvalidFilter("views = 1 -- comment", 11, "unexpected character '-'"),
    InvalidFilter("(views = 1", 11, "expected ')' to close the '(' at column 1"),
    InvalidFilter("((views = 1) && (title = 'x')", 30, "expected ')' to close the '(' at column 1"),
    InvalidFilter("views = 1)", 10, "unmatched ')'"),
    InvalidFilter("()", 2, "expected a comparison, found ')'"),
    InvalidFilter("views = 1 title = 'x'", 11, "expected '&&', '||' or the end of the filter after '1', found 'title'"),
    InvalidFilter("title = 'x' views = 1", 13, "expected '&&', '||' or the end of the filter after 'x', found 'views'"),
    InvalidFilter("(views = 1 title = 'x')", 12, "expected '&&', '||' or ')' after '1', found 'title'"),
    InvalidFilter("views = 1 = 2", 11, "after '1', found '='"),
    InvalidFilter("&& views = 1", 1, "expected a comparison, found '&&'"),
    InvalidFilter("views = 1 &&", 13, "expected a comparison, found the end of the filter"),
    InvalidFilter("views = 1 || || views = 2", 14, "expected a comparison, found '||'"),
    InvalidFilter("!", 2, "expected a comparison, found the end of the filter"),
    InvalidFilter("views in 1", 10, "expected '(' after 'in', found '1'"),
    InvalidFilter("views in ()", 11, "expected a literal in the 'in' list, found ')'"),
    InvalidFilter("views in (1,)", 13, "expected a literal after ',', found ')'"),
    InvalidFilter("views in (1 2)", 13, "expected ',' or ')' in the 'in' list, found '2'"),
    InvalidFilter("views in (x)", 11, "expected a literal in the 'in' list, found 'x'"),
    InvalidFilter("views in (1", 12, "expected ',' or ')' in the 'in' list, found the end of the filter"),
    InvalidFilter("views is 5", 10, "expected 'null' or 'not null' after 'is', found '5'"),
    InvalidFilter("views is not 5", 14, "expected 'null' after 'is not', found '5'"),
    InvalidFilter("views is", 9, "expected 'null' or 'not null' after 'is'"),
    InvalidFilter("views IN (1)", 7, "keywords are lowercase: 'in'"),
    InvalidFilter("views IS NULL", 7, "keywords are lowercase: 'is'"),
    InvalidFilter("not views = 1", 1, "unexpected 'not' (use '!' to negate)"),
    InvalidFilter("views = -", 9, "unexpected character '-'"),
    InvalidFilter("views = - 5", 9, "unexpected character '-'"),
    InvalidFilter("views = 5abc", 9, "invalid number '5abc'"),
    InvalidFilter("views = 1.2.3", 9, "invalid number '1.2.3'"),
    InvalidFilter("views = 1.", 9, "invalid number '1.'"),
    InvalidFilter("views = 1e", 9, "invalid number '1e'"),
    InvalidFilter("views = 1e+", 9, "invalid number '1e+'"),
    InvalidFilter("views = .5", 9, "unexpected character '.'"),
    InvalidFilter("views = 1e999", 9, "number out of range '1e999'"),
    InvalidFilter("a.b.c = 1", 4, "a path has at most one '.'"),
    InvalidFilter("author. = 1", 8, "expected a field name after '.'"),
    InvalidFilter("author .name = 1", 8, "unexpected character '.'"),
    InvalidFilter("@user.id = 1", 1, "unknown reference '@user'"),
    InvalidFilter("@ = 1", 1, "unknown reference '@'"),
    InvalidFilter("@auth = 1", 6, "expected '.' and a field name after '@auth'"),
    InvalidFilter("@auth.id.x = 1", 9, "a reference names a single field"),
    InvalidFilter("@new.author.name.x = 1", 17, "a reference names a single field", allowNew: true),
    InvalidFilter("title = 'a\u{0}b'", 11, "may not contain U+0000"),
    InvalidFilter("views\u{200B} = 1", 6, "unexpected character U+200B"),
    InvalidFilter("views = 1 && \u{7}", 14, "unexpected character U+0007"),
    // Columns count Unicode code points, not bytes or grapheme clusters.
    InvalidFilter("títle = 'x'", 2, "unexpected character 'í'"),
    InvalidFilter("title = 'é' && #", 16, "unexpected character '#'"),
    InvalidFilter("title = '🙂🙂' && #", 17, "unexpected character '#'"),
    InvalidFilter("title = 'e\u{301}' && #", 17, "unexpected character '#'"),
    InvalidFilter("title = '🙂' && views", 21, "expected an operator after 'views'"),
    InvalidFilter("'👍🏽' = x y", 10, "found 'y'"),
    InvalidFilter("views = 1 && 🙂", 14, "unexpected character '🙂'"),
    InvalidFilter("title = '日本語' || (views = 1", 28, "expected ')' to close the '(' at column 18"),
]

private let typeErrors: [InvalidFilter] = [
    InvalidFilter("@new.title.x = 'a'", 6, "'@new.title' is not a relation", allowNew: true),
    InvalidFilter("@new.author.nope = 'a'", 13, "unknown field 'nope' in 'users'", allowNew: true),
    InvalidFilter("nope = 1", 1, "unknown field 'nope' in 'posts'"),
    InvalidFilter("views = 1 && nope = 1", 14, "unknown field 'nope'"),
    InvalidFilter("views = nope", 9, "unknown field 'nope'"),
    InvalidFilter("TRUE = views", 1, "keywords are lowercase: 'true'"),
    InvalidFilter("Title = 'x'", 1, "unknown field 'Title'"),
    InvalidFilter("author.nope = 'x'", 8, "unknown field 'nope' in 'users'"),
    InvalidFilter("views = 1 || editor.nope = 'x'", 21, "unknown field 'nope' in 'users'"),
    InvalidFilter("title.name = 'x'", 1, "'title' is not a relation"),
    InvalidFilter("id.name = 'x'", 1, "'id' is not a relation"),
    InvalidFilter("nope.name = 'x'", 1, "unknown field 'nope' in 'posts'"),
    InvalidFilter("broken.name = 'x'", 1, "relation 'broken' points to unknown collection 'ghosts'"),
    InvalidFilter("views = 'ten'", 1, "cannot compare views (number) with 'ten' (text)"),
    InvalidFilter("'ten' = views", 1, "cannot compare 'ten' (text) with views (number)"),
    InvalidFilter("views = 1 && title = 5", 14, "cannot compare title (text) with 5 (number)"),
    InvalidFilter("title = body && views = published", 17, "cannot compare views (number) with published (boolean)"),
    InvalidFilter("published = 1", 1, "cannot compare published (boolean) with 1 (number)"),
    InvalidFilter("1 = 'one'", 1, "cannot compare 1 (number) with 'one' (text)"),
    InvalidFilter("published < true", 1, "'<' does not apply to booleans"),
    InvalidFilter("true >= false", 1, "'>=' does not apply to booleans"),
    InvalidFilter("created_at > 'yesterday'", 1, "not an RFC 3339 datetime"),
    InvalidFilter("published_at = '2024-02-30T00:00:00Z'", 1, "not an RFC 3339 datetime"),
    InvalidFilter("created_at > 5", 1, "cannot compare created_at (datetime) with 5 (number)"),
    InvalidFilter("created_at > title", 1, "cannot compare created_at (datetime) with title (text)"),
    InvalidFilter("id = 'abc'", 1, "cannot compare id (id) with 'abc': not a UUID"),
    InvalidFilter("author = 5", 1, "cannot compare author (id) with 5 (number)"),
    InvalidFilter("author = title", 1, "cannot compare author (id) with title (text)"),
    InvalidFilter("meta = 'x'", 1, "meta is json and can only be tested with 'is null' or 'is not null'"),
    InvalidFilter("'x' = meta", 1, "meta is json"),
    InvalidFilter("meta = meta", 1, "meta is json"),
    InvalidFilter("meta in ('a')", 1, "meta is json"),
    InvalidFilter("meta ~ 'x'", 1, "meta is json"),
    InvalidFilter("views ~ 'x'", 1, "'~' needs text on both sides, but views (number) is not text"),
    InvalidFilter("created_at ~ '2024'", 1, "'~' needs text on both sides, but created_at (datetime)"),
    InvalidFilter("title ~ 5", 1, "'~' needs text on both sides, but 5 (number)"),
    InvalidFilter("author !~ 'x'", 1, "'!~' needs text on both sides, but author (id)"),
    InvalidFilter("views > null", 1, "'>' cannot compare with null"),
    InvalidFilter("null ~ title", 1, "'~' cannot compare with null"),
    InvalidFilter("views in (1, null)", 1, "null is not allowed in an 'in' list"),
    InvalidFilter("title = 'x' && views in (null)", 16, "null is not allowed in an 'in' list"),
    InvalidFilter("views in (1, 'two')", 1, "cannot compare views (number) with 'two' (text)"),
    InvalidFilter("id in ('\(uuidA)', 'bad')", 1, "not a UUID"),
    InvalidFilter("views = 1 && (views = 2 || (title = 2))", 29, "cannot compare title (text)"),
    InvalidFilter("title = 'é' && views = 'x'", 16, "cannot compare views (number)"),
    InvalidFilter("title = '🙂' || nope = 1", 16, "unknown field 'nope'"),
    InvalidFilter("title = '👍🏽' && author.nope = 1", 24, "unknown field 'nope' in 'users'"),
    InvalidFilter("@auth.id = author", 1, "'@auth' can only be used in access rules"),
    InvalidFilter("author = @auth.id", 10, "'@auth' can only be used in access rules"),
    InvalidFilter("@new.title = 'x'", 1, "'@new' can only be used in create and update rules", allowAuth: true),
    InvalidFilter("@auth.role = 'x'", 1, "unknown field '@auth.role'", allowAuth: true),
    InvalidFilter("@auth.id = 'abc'", 1, "not a UUID", allowAuth: true),
    InvalidFilter("@auth.id = title", 1, "cannot compare @auth.id (id) with title (text)", allowAuth: true),
    InvalidFilter("@new.nope = 1", 1, "unknown field '@new.nope'", allowNew: true),
    InvalidFilter("@new.id = id", 1, "unknown field '@new.id'", allowNew: true),
    InvalidFilter("@new.views = 'x'", 1, "cannot compare @new.views (number) with 'x' (text)", allowNew: true),
]

private func nested(_ depth: Int) -> String {
    String(repeating: "(", count: depth) + "views = 1" + String(repeating: ")", count: depth)
}

private func comparisons(_ n: Int, _ one: String = "views = 1") -> String {
    Array(repeating: one, count: n).joined(separator: " && ")
}

private let limitErrors: [InvalidFilter] = [
    InvalidFilter("title = '" + String(repeating: "a", count: 4087) + "'", nil, "longer than 4096 bytes"),
    // Bytes, not code points: 2,054 scalars but 4,098 UTF-8 bytes.
    InvalidFilter("title = '" + String(repeating: "é", count: 2044) + "'", nil, "longer than 4096 bytes"),
    InvalidFilter(nested(33), nil, "nested deeper than 32 levels"),
    InvalidFilter(String(repeating: "!", count: 33) + "views = 1", nil, "nested deeper than 32 levels"),
    InvalidFilter(
        String(repeating: "!(", count: 16) + "!views = 1" + String(repeating: ")", count: 16),
        nil,
        "nested deeper"
    ),
    InvalidFilter(comparisons(101), nil, "more than 100 comparisons"),
    InvalidFilter(comparisons(101, "body is null"), nil, "more than 100 comparisons"),
    InvalidFilter(comparisons(101, "views in (1, 2)"), nil, "more than 100 comparisons"),
    InvalidFilter("(" + comparisons(60) + ") || (" + comparisons(41) + ")", nil, "more than 100 comparisons"),
]

@Test(arguments: syntaxErrors + typeErrors + limitErrors)
func invalidFilterFails(_ c: InvalidFilter) {
    do throws(FilterError) {
        let expr = try FilterChecker.check(
            c.filter,
            collection: FilterFixtures.posts,
            schema: FilterFixtures.schema,
            allowAuth: c.allowAuth,
            allowNew: c.allowNew
        )
        Issue.record("expected a FilterError, got \(expr)")
    } catch {
        #expect(error.column == c.column, "\(error)")
        #expect(error.message.contains(c.fragment), "\(error)")
    }
}

/// Syntax errors must not depend on the schema: the parser alone reports them.
@Test(arguments: syntaxErrors + limitErrors)
func syntaxErrorsComeFromTheParser(_ c: InvalidFilter) {
    #expect(throws: FilterError.self) { _ = try FilterParser.parse(c.filter) }
}

/// Type errors are not syntax errors: every one of them parses.
@Test(arguments: typeErrors)
func typeErrorsParse(_ c: InvalidFilter) throws {
    _ = try FilterParser.parse(c.filter)
}

@Test func limitsAreInclusive() throws {
    let schema = FilterFixtures.schema
    let posts = FilterFixtures.posts
    let longest = "title = '" + String(repeating: "a", count: 4086) + "'"
    #expect(longest.utf8.count == 4096)
    _ = try FilterChecker.check(longest, collection: posts, schema: schema)
    _ = try FilterChecker.check(nested(32), collection: posts, schema: schema)
    _ = try FilterChecker.check(String(repeating: "!", count: 32) + "views = 1", collection: posts, schema: schema)
    _ = try FilterChecker.check(
        String(repeating: "!(", count: 16) + "views = 1" + String(repeating: ")", count: 16),
        collection: posts,
        schema: schema
    )
    #expect(
        try FilterChecker.check(comparisons(100), collection: posts, schema: schema)
            == .and(Array(repeating: v1, count: 100))
    )
    // Depth is nesting, not a count: many sibling groups are fine.
    _ = try FilterChecker.check(comparisons(50, "(!(views = 1))"), collection: posts, schema: schema)
}

@Test func errorDescriptionNamesTheColumn() {
    #expect(FilterError("unterminated string", column: 17).description == "unterminated string at column 17")
    #expect(FilterError("the filter is too long", column: nil).description == "the filter is too long")
    do throws(FilterError) {
        _ = try FilterParser.parse("views = 'x")
        Issue.record("expected an error")
    } catch {
        #expect(error.description == "unterminated string at column 9")
    }
}
