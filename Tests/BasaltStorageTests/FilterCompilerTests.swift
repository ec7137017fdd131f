import BasaltCore
import BasaltStorage
import Foundation
import Testing

private let posts = CollectionSchema(
    name: "posts",
    fields: [
        FieldSchema(name: "title", type: .text, required: true),
        FieldSchema(name: "status", type: .select, values: ["draft", "published"]),
        FieldSchema(name: "views", type: .integer),
        FieldSchema(name: "author", type: .relation, target: "people"),
    ]
)
private let people = CollectionSchema(name: "people", fields: [FieldSchema(name: "name", type: .text)])
private let schema = Schema(collections: [posts, people])

private func compile(_ filter: String, _ dialect: any SQLDialect, auth: [String: FilterLiteral] = [:]) throws -> SQLQuery {
    let expr = try FilterChecker.check(filter, collection: posts, schema: schema, allowAuth: true)
    var b = SQLBuilder(dialect)
    FilterCompiler(schema: schema, dialect: dialect, authValues: auth).compile(expr, into: &b)
    return b.query
}

@Suite("Filter → SQL")
struct FilterCompilerTests {
    /// Rule → SQL text, for each dialect: the documented shapes of the two-valued translation.
    @Test(arguments: [
        ("title = 'a'", #"(t."title" = ?1)"#, #"(t."title" = $1)"#),
        ("views > 5", #"(t."views" > ?1)"#, #"(t."views" > $1)"#),
        ("!(views < 5)", #"(NOT (t."views" < ?1 AND t."views" IS NOT NULL))"#, #"(NOT (t."views" < $1 AND t."views" IS NOT NULL))"#),
        ("status != 'x'", #"(t."status" <> ?1 OR t."status" IS NULL)"#, #"(t."status" <> $1 OR t."status" IS NULL)"#),
        ("views = null", #"(t."views" IS NULL)"#, #"(t."views" IS NULL)"#),
        ("status = views", "", ""),
        ("title ~ 'x'", #"((instr(basalt_lower(t."title"), basalt_lower(?1)) > 0))"#, #"((strpos(basalt_lower(t."title"), basalt_lower($1)) > 0))"#),
        (
            "author.name = 'a'", #"((SELECT h1."name" FROM "people" h1 WHERE h1."id" = t."author") = ?1)"#,
            #"((SELECT h1."name" FROM "people" h1 WHERE h1."id" = t."author") = $1)"#
        ),
        ("views in (1, 2) && title = 'a'", #"((t."views" IN (?1, ?2)) AND (t."title" = ?3))"#, #"((t."views" IN ($1, $2)) AND (t."title" = $3))"#),
    ])
    func sqlText(_ filter: String, _ sqlite: String, _ postgres: String) throws {
        if sqlite.isEmpty {
            #expect(throws: FilterError.self) { try compile(filter, SQLiteDialect()) }
            return
        }
        #expect(try compile(filter, SQLiteDialect()).sql == sqlite)
        #expect(try compile(filter, PostgresDialect()).sql == postgres)
    }

    /// A caller's filter reads a hop's target only through the caller's view grants (API.md §3):
    /// the target's rule is ANDed into the subquery; no grant at all makes the hop NULL.
    @Test func hopsThroughViewGrants() throws {
        let expr = try FilterChecker.check("author.name ~ 'ad'", collection: posts, schema: schema)
        let rule = try FilterChecker.check("name = 'public'", collection: people, schema: schema)
        var c = FilterCompiler(schema: schema, dialect: SQLiteDialect())
        c.hopAccess = { _ in .visible([rule]) }
        var b = SQLBuilder(SQLiteDialect())
        c.compile(expr, into: &b)
        #expect(
            b.sql
                == #"((instr(basalt_lower((SELECT h1."name" FROM "people" h1 WHERE h1."id" = t."author" AND (h1."name" = ?1))), basalt_lower(?2)) > 0))"#
        )
        #expect(b.query.binds == [.text("public"), .text("ad")])
        c.hopAccess = { _ in .hidden }
        var h = SQLBuilder(SQLiteDialect())
        c.compile(expr, into: &h)
        #expect(h.sql == #"((instr(basalt_lower(NULL), basalt_lower(?1)) > 0))"#)
    }

    /// Create rules read the record from values; `@new.<relation>.<field>` reads the target as stored.
    @Test func writeRulesBindTheIncomingRecord() throws {
        let expr = try FilterChecker.check("@new.author.name = 'Ada' && views < 10", collection: posts, schema: schema, allowNew: true)
        var c = FilterCompiler(schema: schema, dialect: PostgresDialect())
        c.record = .values(["views": .int(3)])
        c.newValues = ["author": .uuid("0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1a2b")]
        var b = SQLBuilder(PostgresDialect())
        c.compile(expr, into: &b)
        #expect(b.sql == #"(((SELECT h1."name" FROM "people" h1 WHERE h1."id" = $1) = $2) AND ($3 < $4))"#)
        #expect(b.query.binds == [.uuid("0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1a2b"), .text("Ada"), .int(3), .int(10)])
    }

    @Test func authReferencesAreBound() throws {
        let q = try compile("author = @auth.id", PostgresDialect(), auth: ["id": .uuid("0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1a2b")])
        #expect(q.sql == #"(t."author" = $1)"#)
        #expect(q.binds == [.uuid("0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1a2b")])
    }

    /// Property: a rule compiled once as a template and placed after other binds reads exactly as
    /// the rule compiled in place, for callers whose `@auth` values are null in the same places;
    /// and it does not claim to fit callers whose values are null elsewhere.
    @Test func templatesReadAsTheRuleCompiledInPlace() throws {
        var rng = SplitMix(seed: 0x7E3A_1A7E)
        let authFields: [String: ValueKind] = ["id": .id, "name": .text, "views": .number]
        let comparisons = [
            "author = @auth.id", "author != @auth.id", "title = @auth.name", "title ~ @auth.name", "title !~ @auth.name",
            "views >= @auth.views", "views != @auth.views", "status = 'published'", "author.name = @auth.name", "views = null",
            "@auth.id != null", "@auth.views > 3",
        ]
        let values: [String: [FilterLiteral]] = [
            "id": [.null, .uuid("0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1a2b")], "name": [.null, .string("Ada")], "views": [.null, .int(7)],
        ]
        for _ in 0..<1500 {
            var parts: [String] = []
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let cmp = comparisons.randomElement(using: &rng)!
                parts.append(Bool.random(using: &rng) ? "!(\(cmp))" : cmp)
            }
            let rule = parts.joined(separator: Bool.random(using: &rng) ? " && " : " || ")
            let expr = try FilterChecker.check(rule, collection: posts, schema: schema, allowAuth: true, authFields: authFields)
            let compiledWith = values.mapValues { $0.randomElement(using: &rng)! }
            let caller = values.mapValues { $0.randomElement(using: &rng)! }
            let prefix = (0..<Int.random(in: 0...3, using: &rng)).map { SQLValue.int(Int64($0)) }
            for dialect in [SQLiteDialect() as any SQLDialect, PostgresDialect()] {
                let template = SQLTemplate(expr, compiler: FilterCompiler(schema: schema, dialect: dialect, authValues: compiledWith))
                let sameNulls = compiledWith.keys.allSatisfy { name in
                    !rule.contains("@auth.\(name)") || (compiledWith[name] == .null) == (caller[name] == .null)
                }
                #expect(template.fits { caller[$0] ?? .null } == sameNulls, "\(rule) compiled with \(compiledWith), caller \(caller)")
                guard sameNulls else { continue }
                var inPlace = SQLBuilder(dialect)
                var templated = SQLBuilder(dialect)
                for v in prefix {
                    inPlace.bind(v)
                    templated.bind(v)
                }
                inPlace.append(" AND ")
                templated.append(" AND ")
                FilterCompiler(schema: schema, dialect: dialect, authValues: caller).compile(expr, into: &inPlace)
                templated.append(template, binds: template.binds { caller[$0] ?? .null })
                #expect(templated.query == inPlace.query, "\(rule) with \(caller)")
            }
        }
    }

    /// Property: whatever a string literal holds, it reaches SQL only as a bound value — the SQL
    /// text never contains it, and the binds hold every literal, in order.
    @Test func literalsNeverReachSQLText() throws {
        var rng = SplitMix(seed: 0xBA5A17)
        let pieces = ["'", "''", "\"", ";", "--", "/*", "DROP TABLE posts", " OR 1=1", ")", "(", "%", "_", "?1", "$1", "é", "🙂", "\\", "\n", "x"]
        for _ in 0..<2000 {
            var literals: [String] = []
            var parts: [String] = []
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                // A marker makes each literal unmistakable in SQL text.
                var content = "zq\(Int.random(in: 1000...9999, using: &rng))"
                for _ in 0..<Int.random(in: 0...5, using: &rng) { content += pieces.randomElement(using: &rng)! }
                literals.append(content)
                let quoted = "'" + content.replacingOccurrences(of: "'", with: "''") + "'"
                let field = ["title", "status", "author.name"].randomElement(using: &rng)!
                let op = ["=", "!=", "<", ">=", "~", "!~"].randomElement(using: &rng)!
                let cmp = "\(field) \(op) \(quoted)"
                parts.append(Bool.random(using: &rng) ? "!(\(cmp))" : cmp)
            }
            let filter = parts.joined(separator: Bool.random(using: &rng) ? " && " : " || ")
            for dialect in [SQLiteDialect() as any SQLDialect, PostgresDialect()] {
                let q = try compile(filter, dialect)
                for l in literals {
                    #expect(!q.sql.contains(String(l.prefix(6))), "literal leaked into SQL: \(q.sql)")
                }
                let bound = q.binds.compactMap(\.text)
                #expect(bound == literals, "binds \(bound) != \(literals)")
            }
        }
    }
}

/// A small deterministic generator, so a failure reproduces.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Record table statements")
struct RecordTableTests {
    /// A read or probe of one record under a compiled rule is written in one piece, and reads
    /// exactly as the same rule compiled in place.
    @Test func rulesCompiledOnceReadAsCompiledInPlace() throws {
        let rule = try FilterChecker.check(
            "author = @auth.id || (views > 3 && title != @auth.name)",
            collection: posts,
            schema: schema,
            allowAuth: true,
            authFields: ["id": .id, "name": .text]
        )
        for dialect in [SQLiteDialect() as any SQLDialect, PostgresDialect()] {
            let table = RecordTable(collection: posts, dialect: dialect)
            for auth: [String: FilterLiteral] in [
                ["id": .uuid("0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1a2b"), "name": .string("Ada")], ["id": .null, "name": .string("Ada")],
            ] {
                let compiler = FilterCompiler(schema: schema, dialect: dialect, authValues: auth)
                let template = SQLTemplate(rule, compiler: compiler)
                let once = SQLCondition(template, binds: template.binds { auth[$0] ?? .null })
                let inPlace = SQLCondition(rule, compiler)
                let id = "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1a2c"
                #expect(table.selectByIDs([id], where: once) == table.selectByIDs([id], where: inPlace))
                #expect(table.probe(id, where: once) == table.probe(id, where: inPlace))
                #expect(table.selectByIDs([id, id], where: once) == table.selectByIDs([id, id], where: inPlace))
            }
        }
    }

    /// A create's INSERT (every column, in order) uses the text built once; any other column list
    /// is built as asked. Both bind every value in order.
    @Test func insertTextIsTheSameBuiltOnceOrPerCall() {
        let tags = CollectionSchema(name: "tags", fields: [FieldSchema(name: "label", type: .text), FieldSchema(name: "uses", type: .integer)])
        for (dialect, p) in [(SQLiteDialect() as any SQLDialect, "?"), (PostgresDialect(), "$")] {
            let table = RecordTable(collection: tags, dialect: dialect)
            let all: [(String, SQLValue)] = [
                ("id", .uuid("0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1a2b")), ("created_at", .int(1)), ("updated_at", .int(2)), ("version", .int(1)),
                ("label", .text("a")), ("uses", .null),
            ]
            let columns = #""id", "created_at", "updated_at", "version", "label", "uses""#
            let q = table.insert(all)
            #expect(q.sql == #"INSERT INTO "tags" ("# + columns + ") VALUES (\(p)1, \(p)2, \(p)3, \(p)4, \(p)5, \(p)6) RETURNING " + columns)
            #expect(q.binds == all.map(\.1))
            let some = table.insert([all[0], all[4]])
            #expect(some.sql == #"INSERT INTO "tags" ("id", "label") VALUES ("# + "\(p)1, \(p)2) RETURNING " + columns)
            #expect(some.binds == [all[0].1, all[4].1])
        }
    }
}
