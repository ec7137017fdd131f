import BasaltAuth
import BasaltCore
import BasaltServices
import BasaltStorage
// The hot pieces of a request (issue 11): a caller's filter from text to SQL, a page of records
// rendered to the bytes of a response, and an access token's verification (first sight: the
// Ed25519 signature; then the verdict cache). Each iteration does one of them once.
import Benchmark

let blogSchema = """
    collections:
      authors:
        fields:
          name:  {type: text, required: true, max: 100}
      posts:
        fields:
          title:  {type: text, required: true, max: 200}
          body:   {type: text}
          status: {type: select, values: [draft, published], default: draft}
          views:  {type: integer, min: 0, default: 0}
          author: {type: relation, collection: authors}
    """

/// A post as the list answer carries it: system fields and every field filled.
func post(_ i: Int) -> JSONValue {
    .object(
        JSONObject([
            ("id", .string(RecordID.make())), ("created_at", .string("2026-12-04T10:00:00.000Z")),
            ("updated_at", .string("2026-12-04T10:00:00.000Z")), ("version", .int(3)), ("title", .string("Post number \(i) about Swift")),
            ("body", .string(String(repeating: "Lorem ipsum dolor sit amet. ", count: 10))), ("status", .string("published")),
            ("views", .int(Int64(i * 7))), ("author", .string(RecordID.make())),
        ])
    )
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(5))

    guard let schema = try? Schema.decode(try SchemaYAML.parse(blogSchema)), let posts = schema.collection("posts") else {
        fatalError("the benchmark schema does not decode")
    }
    let filter = "status = 'published' && views > 10 && (title ~ 'swift' || author.name = 'Ada')"
    Benchmark("filter: text to SQL (lex, parse, type-check, compile)") { benchmark in
        for _ in benchmark.scaledIterations {
            let expr = try FilterChecker.check(filter, collection: posts, schema: schema)
            var builder = SQLBuilder(SQLiteDialect())
            FilterCompiler(schema: schema, dialect: SQLiteDialect()).compile(expr, into: &builder)
            blackHole(builder.sql)
        }
    }

    let page = JSONValue.object(
        JSONObject([("items", .array((0..<20).map(post))), ("next_cursor", .string(Digest.randomToken(bytes: 48)))])
    )
    Benchmark("render: a list page of 20 posts to bytes") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(page.serializedBytes()) }
    }
    let one = post(1)
    Benchmark("render: one post to bytes") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(one.serializedBytes()) }
    }

    Benchmark("token: verify, first sight (signature)") { benchmark in
        let tokens = await AccessTokens(settings: .init(issuer: "http://bench"), keys: [SigningKey.generate(at: .now())])
        let now = Timestamp.now()
        // Fresh tokens, signed before the measured loop, so each verification checks a signature.
        var fresh: [String] = []
        for i in 0..<benchmark.scaledIterations.count {
            fresh.append(try await tokens.sign(tokens.claims(subject: RecordID.make(), session: "s\(i)", roles: ["editor"], now: now)))
        }
        benchmark.startMeasurement()
        for token in fresh { blackHole(await tokens.verify(token, now: now)) }
        benchmark.stopMeasurement()
    }
    Benchmark("token: verify, seen before (verdict cache)") { benchmark in
        let tokens = await AccessTokens(settings: .init(issuer: "http://bench"), keys: [SigningKey.generate(at: .now())])
        let now = Timestamp.now()
        let token = try await tokens.sign(tokens.claims(subject: RecordID.make(), session: "s", roles: ["editor"], now: now))
        _ = await tokens.verify(token, now: now)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(await tokens.verify(token, now: now)) }
        benchmark.stopMeasurement()
    }
}
