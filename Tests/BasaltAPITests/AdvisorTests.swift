import Basalt
import BasaltCore
import BasaltHTTP
import BasaltSQLite
import BasaltServices
import BasaltStorage
import BasaltTesting
import Foundation
import HTTPTypes
import Testing

/// Issue "Operations": the advisors (`GET /v1/admin/advisors`, `basalt doctor`) fire on a
/// deliberately bad schema and settings, stay quiet on a good one, and the index they suggest
/// makes the scan disappear from the plan.
@Suite("Advisors")
struct AdvisorTests {
    /// Private notes of users, with the given grants.
    static func notes(list: String, view: String, create: String) -> String {
        """
        collections:
          notes:
            fields:
              body:  {type: text}
              owner: {type: relation, collection: users}
            access:
              list:   [\(list)]
              view:   [\(view)]
              create: [\(create)]
        """
    }

    static let badSchema = notes(
        list: "{who: authenticated}",
        view: #"{who: authenticated, where: "owner = @auth.id"}"#,
        create: "{who: public}"
    )

    static let goodSchema = notes(
        list: #"{who: authenticated, where: "@auth.verified = true && owner = @auth.id"}"#,
        view: #"{who: authenticated, where: "@auth.verified = true && owner = @auth.id"}"#,
        create: #"{who: authenticated, where: "@auth.verified = true && @new.owner = @auth.id"}"#
    )

    /// A collection of `posts` without the composite index its list needs.
    static let postsSchema = """
        collections:
          posts:
            fields:
              title:  {type: text}
              status: {type: select, values: [draft, published]}
              views:  {type: integer}
            access:
              list: [{who: public}]
        """

    func ids(_ findings: [Finding]) -> Set<String> { Set(findings.map(\.id)) }

    @Test("a bad schema and bad settings: each finding with its severity, seen, why, trade-off and fix; admins only", arguments: TestBackend.all)
    func badDeployment(_ backend: TestBackend) async throws {
        try await backend.withApp(
            schema: Self.badSchema,
            configure: {
                $0.http.corsOrigins = ["*"]
                $0.http.publicURL = "https://api.example.com"
                $0.allowPrivateWebhooks = true
            }
        ) { api in
            let hook = try await api.post("/v1/admin/webhooks", #"{"url":"http://127.0.0.1:9/hook"}"#)
            #expect(hook.status == .created)
            // A request, and none came through a TLS proxy.
            #expect(try await api.get("/v1/notes", auth: .none).status != .ok)
            let r = try await api.get("/v1/admin/advisors")
            #expect(r.status == .ok)
            #expect(r.header("Cache-Control") == "no-store")
            let items = try #require(r.json["items"]?.arrayValue)
            let byID = Dictionary(grouping: items) { $0["id"]?.stringValue ?? "" }
            let expected: [(String, String)] = [
                ("security.public_write", "severe"), ("security.unscoped_user_data", "warning"),
                ("security.open_registration_unverified", "warning"), ("security.cors_any_origin", "warning"),
                ("security.mail_to_log", "severe"), ("security.no_tls_seen", "warning"),
                ("security.admin_key_without_expiry", "warning"), ("security.webhook_plain_http", "warning"),
                ("reliability.no_scheduled_backups", "info"),
            ]
            for (id, severity) in expected {
                let f = try #require(byID[id]?.first, "\(id) in \(byID.keys.sorted())")
                #expect(f["severity"]?.stringValue == severity, "\(id)")
                for member in ["title", "seen", "why", "tradeoff", "fix"] {
                    #expect((f[member]?.stringValue ?? "").count > 10, "\(id).\(member)")
                }
            }
            #expect(byID["security.public_write"]?.first?["fix"]?.stringValue?.contains("create: [{who: authenticated}]") == true)
            #expect(byID["security.unscoped_user_data"]?.first?["subject"] == "notes.list", "the view grant has a where")
            // The master key: in the database on PostgreSQL without BASALT_SECRET_KEY, a key file on SQLite.
            #expect((byID["security.master_key_in_database"] != nil) == (backend == .postgres))
            // Most severe first.
            let ranks = items.map { ["severe": 2, "warning": 1, "info": 0][$0["severity"]?.stringValue ?? ""] ?? -1 }
            #expect(ranks == ranks.sorted(by: >))
            // Admins only.
            let user = try await api.signUp("reader@example.com")
            #expect(try await api.get("/v1/admin/advisors", auth: user.auth).status == .forbidden)
            #expect(try await api.get("/v1/admin/advisors", auth: .none).status == .unauthorized)
        }
    }

    @Test("a good schema and settings: no findings", arguments: TestBackend.all)
    func goodDeployment(_ backend: TestBackend) async throws {
        let backups = FileManager.default.temporaryDirectory.appendingPathComponent("basalt-advisor-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: backups) }
        try await backend.withRuntime(
            schema: Self.goodSchema,
            configure: {
                $0.http.corsOrigins = ["https://app.example.com"]
                $0.http.publicURL = "https://api.example.com"
                $0.auth.smtpURL = "smtp://127.0.0.1:2525"
                $0.auth.secretKey = String(repeating: "ab", count: 32)
                $0.backupDirectory = backups
                $0.sqliteSynchronous = .full
            }
        ) { rt, _ in
            // Admin keys that expire, and no other.
            for key in try await rt.apiKeys.list() { try await rt.apiKeys.revoke(id: key["id"]?.stringValue ?? "") }
            _ = try await rt.apiKeys.create(
                name: "ops",
                admin: true,
                roles: [],
                expiresAt: Timestamp(millisecondsSinceEpoch: Timestamp.now().millisecondsSinceEpoch + 86_400_000)
            )
            let findings = try await rt.advise()
            #expect(findings.isEmpty, "\(findings.map { "\($0.id): \($0.seen)" })")

            // An index Basalt keeps goes missing (dropped by hand): named, with the statement that restores it.
            let notes = try #require(rt.schemas.current.schema.collection("notes"))
            let relationIndex = try #require(TableDDL(dialect: rt.store.dialect).indexes(notes).first { $0.sql.contains("owner") })
            try await rt.store.migrate([SQLQuery(sql: TableDDL(dialect: rt.store.dialect).dropIndex(relationIndex.name))])
            let missing = try await rt.advise()
            #expect(missing.map(\.id) == ["performance.missing_index"])
            #expect(missing.first?.fix == relationIndex.sql)
            try await rt.store.migrate([SQLQuery(sql: try #require(missing.first).fix)])
            #expect(try await rt.advise().isEmpty)
        }
    }

    @Test("PostgreSQL: a pool near max_connections is severe, a small one is fine")
    func postgresPool() async throws {
        guard TestBackend.all.contains(.postgres) else { return }
        try await TestBackend.postgres.withRuntime { rt, _ in
            var facts = DeploymentFacts()
            facts.backupsScheduled = true
            facts.registrationOpen = false
            facts.poolSize = 10_000
            let large = try await Advisors(store: rt.store, schema: .empty, observations: [], facts: facts).review()
            let finding = try #require(large.first { $0.id == "performance.postgres_pool_size" })
            #expect(finding.severity == .severe)
            #expect(finding.seen.contains("max_connections = "))
            facts.poolSize = 2
            let small = try await Advisors(store: rt.store, schema: .empty, observations: [], facts: facts).review()
            #expect(!small.contains { $0.id == "performance.postgres_pool_size" })
        }
    }

    @Test("query observations: literals never make a new shape, and shapes are capped")
    func observationsAreBounded() async throws {
        try await TestBackend.sqlite.withRuntime(schema: Self.postsSchema) { rt, _ in
            for n in 0..<50 {
                let q = ListQuery(filter: "status = 'published' && views > \(n) && title ~ 'x\(n)'", sort: "-views")
                _ = try await rt.records.list("posts", query: q, principal: .system)
            }
            var shapes = rt.records.observations.summaries()
            #expect(shapes.count == 1)
            #expect(shapes.first?.shape.filter == "status = ? && views > ? && title ~ ?")
            #expect(shapes.first?.count == 50)
            // Distinct shapes (another sort each) stop being followed at the cap.
            let sorts = ["title", "-title", "views", "-views", "status", "-status", "created_at", "-created_at", "updated_at", "-updated_at"]
            for a in sorts {
                for b in sorts {
                    for c in ["", "status = 'draft'", "views < 3", "title ~ 'a'"] {
                        _ = try await rt.records.list("posts", query: ListQuery(filter: c, sort: "\(a),\(b)"), principal: .system)
                    }
                }
            }
            shapes = rt.records.observations.summaries()
            #expect(shapes.count == QueryObservations.maxShapes)
        }
    }

    @Test("SQLite facts: a WAL far above its target warns, a cache far below the database informs, synchronous normal informs")
    func sqliteFacts() async throws {
        try await TestBackend.sqlite.withRuntime { rt, _ in
            var facts = DeploymentFacts()
            facts.backupsScheduled = true
            facts.registrationOpen = false
            facts.sqliteSynchronous = "NORMAL"
            facts.walTargetBytes = 32 << 20
            facts.walBytes = 200 << 20
            facts.sqliteCacheBytes = 32 << 20
            facts.sqliteDatabaseBytes = 1 << 30
            let findings = try await Advisors(store: rt.store, schema: .empty, observations: [], facts: facts).review()
            let byID = Dictionary(findings.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            #expect(byID["reliability.sqlite_wal_above_target"]?.severity == .warning)
            #expect(byID["reliability.sqlite_wal_above_target"]?.seen.contains("200 MiB") == true)
            #expect(byID["performance.sqlite_cache_small"]?.fix == "BASALT_SQLITE_CACHE_MB=512")
            #expect(byID["reliability.sqlite_synchronous_normal"]?.fix == "BASALT_SQLITE_SYNCHRONOUS=full")
            facts.walBytes = 40 << 20
            facts.sqliteDatabaseBytes = 64 << 20
            facts.sqliteSynchronous = "FULL"
            let quiet = try await Advisors(store: rt.store, schema: .empty, observations: [], facts: facts).review()
            #expect(quiet.filter { $0.id.contains("sqlite") }.isEmpty, "\(quiet.map(\.id))")
        }
    }

    @Test(
        "a filter and sort that scan: the finding names the index; with it, the scan leaves the plan and the finding goes",
        arguments: TestBackend.all
    )
    func unindexedQuery(_ backend: TestBackend) async throws {
        try await backend.withRuntime(schema: Self.postsSchema) { rt, _ in
            // 3,000 posts in one transaction; one in ten published, views 0…2999.
            var b = SQLBuilder(rt.store.dialect)
            b.append(#"INSERT INTO "posts" ("id", "created_at", "updated_at", "version", "title", "status", "views") VALUES "#)
            for n in 0..<3_000 {
                b.append(n == 0 ? "(" : ", (")
                b.bindList([
                    .uuid(RecordID.make()), .timestamp(.now()), .timestamp(.now()), .int(1), .text("p\(n)"),
                    .text(n % 10 == 0 ? "published" : "draft"), .int(Int64(n)),
                ])
                b.append(")")
            }
            try await rt.store.migrate([SQLQuery(sql: b.sql, binds: b.binds)])
            try await rt.store.refreshStatistics(tables: ["posts"])
            let query = ListQuery(filter: "status = 'published' && views > 2500", sort: "-views", total: true)
            for _ in 0..<5 { _ = try await rt.records.list("posts", query: query, principal: .system) }
            var thresholds = Advisors.Thresholds()
            thresholds.largeTotalRows = 2_000
            let before = try await rt.advise(thresholds: thresholds)
            let finding = try #require(before.first { $0.id == "performance.unindexed_query" }, "\(before.map(\.id))")
            #expect(finding.subject == "posts")
            #expect(finding.fix.contains("- [status, views]"), "\(finding.fix)")
            #expect(finding.seen.contains("status = ? && views > ?") && finding.seen.contains("5 times"), "\(finding.seen)")
            #expect(before.contains { $0.id == "performance.total_on_large_collection" && $0.subject == "posts" })

            // Before: the plan reads every row (SQLite names the table by its alias).
            let sampleBefore = try #require(rt.records.observations.summaries().first { $0.shape.collection == "posts" }).sample
            let (explainBefore, typesBefore, detailBefore) = rt.store.dialect.explain(sampleBefore)
            let linesBefore = try await rt.store.fetch(explainBefore, types: typesBefore).compactMap { $0[detailBefore].text }
            #expect(rt.store.dialect.planReadsAllRows(linesBefore, table: "posts", alias: RecordTable.alias), "\(linesBefore)")
            // Apply the advice.
            var schema = rt.schemas.current.schema
            let i = try #require(schema.collections.firstIndex { $0.name == "posts" })
            schema.collections[i].indexes.append(IndexSchema(fields: ["status", "views"], unique: false))
            _ = try await rt.schemas.apply(schema, allowDestructive: false, source: "test")
            for _ in 0..<2 { _ = try await rt.records.list("posts", query: query, principal: .system) }
            let sample = try #require(rt.records.observations.summaries().first { $0.shape.collection == "posts" }).sample
            let dialect = rt.store.dialect
            let (explain, types, detail) = dialect.explain(sample)
            let lines = try await rt.store.fetch(explain, types: types).compactMap { $0[detail].text }
            #expect(!dialect.planReadsAllRows(lines, table: "posts", alias: RecordTable.alias), "\(lines)")
            #expect(!dialect.planSorts(lines), "\(lines)")
            #expect(!dialect.planFiltersAfterIndex(lines, fields: ["status", "views"]), "\(lines)")
            let after = try await rt.advise(thresholds: thresholds)
            #expect(!after.contains { $0.id == "performance.unindexed_query" }, "\(after.map(\.seen))")
        }
    }
}
