public import BasaltCore
public import BasaltStorage
import Foundation

/// One thing a senior backend engineer reviewing the deployment would point out: what was
/// seen, why it matters, what changing it costs, and exactly what to change.
public struct Finding: Sendable, Equatable {
    public enum Severity: String, Sendable, Comparable {
        case info, warning, severe
        var rank: Int {
            switch self {
            case .info: 0
            case .warning: 1
            case .severe: 2
            }
        }
        public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
    }

    /// Stable per kind of finding (`security.public_write`); `subject` tells instances apart.
    public var id: String
    public var severity: Severity
    public var subject: String?
    public var title: String
    public var seen: String
    public var why: String
    public var tradeoff: String
    /// The YAML, setting or statement to change.
    public var fix: String

    public var category: String { String(id.prefix { $0 != "." }) }

    public var json: JSONValue {
        var o = JSONObject([("id", .string(id)), ("severity", .string(severity.rawValue)), ("category", .string(category))])
        if let subject { o["subject"] = .string(subject) }
        o.members += [
            ("title", .string(title)), ("seen", .string(seen)), ("why", .string(why)), ("tradeoff", .string(tradeoff)), ("fix", .string(fix)),
        ]
        return .object(o)
    }
}

/// What the advisors know of the deployment besides its database: settings, and what the
/// server observed of its traffic.
public struct DeploymentFacts: Sendable {
    public var publicURL: String = "http://127.0.0.1:8080"
    public var corsOrigins: [String] = []
    public var mailToLog = false
    public var masterKeyInDatabase = false
    public var registrationOpen = true
    public var backupsScheduled = false
    /// Requests served since start, and how many came through a proxy that said `https`.
    public var requestsSeen = 0
    public var httpsForwardedSeen = 0
    /// SQLite: `synchronous`, the WAL's size and its target.
    public var sqliteSynchronous: String?
    public var walBytes: Int64?
    public var walTargetBytes: Int64?
    /// SQLite: the page cache of a connection, and the database file's size.
    public var sqliteCacheBytes: Int64?
    public var sqliteDatabaseBytes: Int64?
    /// PostgreSQL: this process's pool size.
    public var poolSize: Int?

    public init() {}

    /// The public URL names a host other than this machine: the deployment is for real.
    public var production: Bool {
        guard let host = URLComponents(string: publicURL)?.host?.lowercased() else { return false }
        return !["localhost", "127.0.0.1", "::1", "[::1]"].contains(host) && !host.hasSuffix(".localhost")
    }
}

/// The review behind `basalt doctor` and `GET /v1/admin/advisors`.
public struct Advisors: Sendable {
    public struct Thresholds: Sendable {
        /// Collections smaller than this are read whole fast enough: no index advice for them.
        public var scanRows: Int64 = 1_000
        /// `total=true` counts every match: advice from this size on.
        public var largeTotalRows: Int64 = 100_000
        public var unusedKeyDays: Int64 = 90
        public init() {}
    }

    let store: any Store
    let schema: Schema
    let observations: [QueryObservations.Summary]
    let facts: DeploymentFacts
    let thresholds: Thresholds

    public init(
        store: any Store,
        schema: Schema,
        observations: [QueryObservations.Summary],
        facts: DeploymentFacts,
        thresholds: Thresholds = .init()
    ) {
        self.store = store
        self.schema = schema
        self.observations = observations
        self.facts = facts
        self.thresholds = thresholds
    }

    /// Every finding, most severe first.
    public func review(now: Timestamp = .now()) async throws -> [Finding] {
        var out = accessFindings() + settingsFindings()
        out += try await keyFindings(now: now)
        out += try await webhookFindings()
        out += try await queryFindings()
        out += try await tableFindings()
        out += try await storeFindings()
        return out.sorted { ($0.severity, $1.id, $1.subject ?? "") > ($1.severity, $0.id, $0.subject ?? "") }
    }

    // MARK: - Security

    func accessFindings() -> [Finding] {
        var out: [Finding] = []
        for c in schema.collections {
            for action in [AccessAction.create, .update, .delete] {
                for g in c.access[action] where g.who == .public {
                    out.append(
                        Finding(
                            id: "security.public_write",
                            severity: .severe,
                            subject: c.name,
                            title: "Anyone may \(action.rawValue) \(c.name) records",
                            seen: "collections.\(c.name).access.\(action.rawValue) grants to `public`\(g.rule.map { " where \($0)" } ?? "")",
                            why: "Anonymous callers need no account to \(action.rawValue): spam, vandalism and storage abuse cost them nothing.",
                            tradeoff: "Callers must sign up first (or use an API key).",
                            fix: """
                                collections:
                                  \(c.name):
                                    access:
                                      \(action.rawValue): [{who: authenticated\(g.rule.map { ", where: \"\($0)\"" } ?? "")}]
                                """
                        )
                    )
                }
            }
            let holdsUserData = c.name == BuiltinCollections.usersName || c.fields.contains { $0.target == BuiltinCollections.usersName }
            guard holdsUserData else { continue }
            let owner =
                c.name == BuiltinCollections.usersName ? "id" : (c.fields.first { $0.target == BuiltinCollections.usersName }?.name ?? "owner")
            for action in [AccessAction.list, .view, .update, .delete] {
                for g in c.access[action] where g.rule == nil && (g.who == .public || g.who == .authenticated) {
                    out.append(
                        Finding(
                            id: "security.unscoped_user_data",
                            severity: .warning,
                            subject: "\(c.name).\(action.rawValue)",
                            title: "Every \(g.who == .public ? "caller" : "signed-in user") may \(action.rawValue) all of \(c.name)",
                            seen:
                                "\(c.name) relates to users, and its \(action.rawValue) grant to `\(g.who == .public ? "public" : "authenticated")` has no `where`",
                            why:
                                "Records that belong to a user are usually theirs alone; a grant without `where` exposes every user's records to all.",
                            tradeoff: "Records of others are no longer reachable through this grant; add a role grant for staff who need them.",
                            fix: """
                                collections:
                                  \(c.name):
                                    access:
                                      \(action.rawValue): [{who: authenticated, where: "\(owner) = @auth.id"}]
                                """
                        )
                    )
                }
            }
        }
        if facts.registrationOpen {
            let unverified = schema.collections.filter { c in
                AccessAction.allCases.contains { a in c.access[a].contains { $0.who == .authenticated && !($0.rule ?? "").contains("@auth.verified") }
                }
            }
            if !unverified.isEmpty {
                out.append(
                    Finding(
                        id: "security.open_registration_unverified",
                        severity: .warning,
                        subject: nil,
                        title: "Anyone can register and use the API before verifying an email address",
                        seen:
                            "registration is open and grants to `authenticated` on \(unverified.map(\.name).joined(separator: ", ")) do not require @auth.verified",
                        why: "Accounts on addresses nobody controls can write data and send mail through password resets; abuse is cheap.",
                        tradeoff: "New users must click the verification mail before they can use these grants.",
                        fix: """
                            Require verification in each grant to authenticated, e.g. where: "@auth.verified = true && …",
                            or close registration: BASALT_REGISTRATION=closed
                            """
                    )
                )
            }
        }
        return out
    }

    func settingsFindings() -> [Finding] {
        var out: [Finding] = []
        if facts.corsOrigins.contains("*") {
            out.append(
                Finding(
                    id: "security.cors_any_origin",
                    severity: .warning,
                    subject: nil,
                    title: "Any web site may call the API from its visitors' browsers",
                    seen: "BASALT_CORS_ORIGINS is *",
                    why:
                        "A page on any origin can read responses with the visitor's bearer token if it obtains one, and probe the API from their network.",
                    tradeoff: "Each front-end origin must be listed.",
                    fix: "BASALT_CORS_ORIGINS=https://app.example.com,https://admin.example.com"
                )
            )
        }
        if facts.mailToLog && facts.production {
            out.append(
                Finding(
                    id: "security.mail_to_log",
                    severity: .severe,
                    subject: nil,
                    title: "Mail goes to the log, with its single-use tokens",
                    seen: "BASALT_SMTP_URL is not set and the public URL is \(facts.publicURL)",
                    why:
                        "Verification and password-reset links are written to the log: whoever reads the logs can take over accounts, and users never get their mail.",
                    tradeoff: "An SMTP relay to run or pay for.",
                    fix: "BASALT_SMTP_URL=smtp://user:password@smtp.example.com:587 and BASALT_MAIL_FROM=no-reply@example.com"
                )
            )
        }
        if facts.publicURL.lowercased().hasPrefix("https://"), facts.requestsSeen > 0, facts.httpsForwardedSeen == 0 {
            out.append(
                Finding(
                    id: "security.no_tls_seen",
                    severity: .warning,
                    subject: nil,
                    title: "The public URL is https, but no request came through TLS",
                    seen: "\(facts.requestsSeen) requests since start, none with X-Forwarded-Proto: https",
                    why: "Basalt serves plain HTTP: without a TLS-terminating proxy in front, passwords and tokens cross the network in clear.",
                    tradeoff: "A reverse proxy (Caddy, nginx, a load balancer) to run.",
                    fix: "Put a TLS-terminating proxy in front that sets X-Forwarded-Proto: https, and list it in BASALT_TRUSTED_PROXIES"
                )
            )
        }
        if facts.masterKeyInDatabase {
            out.append(
                Finding(
                    id: "security.master_key_in_database",
                    severity: .severe,
                    subject: nil,
                    title: "The master key is stored in the database it protects",
                    seen: "BASALT_SECRET_KEY is not set; the generated key lives in _basalt_settings",
                    why:
                        "Signing keys, TOTP seeds and webhook secrets are sealed with it: anyone with a copy of the database (a backup, a replica) can open them.",
                    tradeoff: "The key must be kept (secret store, environment) and given to every replica and restore.",
                    fix:
                        "BASALT_SECRET_KEY=<64 hex digits>  (keep the current key: `SELECT value FROM _basalt_settings WHERE key = 'secret_key'`, then delete that row)"
                )
            )
        }
        if !facts.backupsScheduled {
            out.append(
                Finding(
                    id: "reliability.no_scheduled_backups",
                    severity: .info,
                    subject: nil,
                    title: "No scheduled backups",
                    seen: "BASALT_BACKUP_DIR is not set",
                    why: "Without a recent backup, a deleted collection or a lost disk is lost data.",
                    tradeoff: "Disk space for BASALT_BACKUP_KEEP copies; each backup reads the whole database.",
                    fix: "BASALT_BACKUP_DIR=/var/backups/basalt BASALT_BACKUP_EVERY=6h BASALT_BACKUP_KEEP=28  (copy them off the machine)"
                )
            )
        }
        return out
    }

    func keyFindings(now: Timestamp) async throws -> [Finding] {
        let rows = try await store.fetch(
            SQLQuery(
                sql:
                    #"SELECT "id", "name", "expires_at", "last_used_at", "created_at" FROM "_basalt_api_keys" WHERE "admin" = 1 AND "revoked_at" IS NULL"#
            ),
            types: [.text, .text, .int, .int, .int]
        )
        var out: [Finding] = []
        let day: Int64 = 86_400_000
        for r in rows {
            let id = r[0].text ?? ""
            let name = r[1].text ?? ""
            if r[2].isNull {
                out.append(
                    Finding(
                        id: "security.admin_key_without_expiry",
                        severity: .warning,
                        subject: id,
                        title: "Admin API key \"\(name)\" never expires",
                        seen: "admin key \(id) has no expires_at",
                        why: "An admin key can do everything; one that leaks stays valid until someone notices.",
                        tradeoff: "Keys must be rotated before they expire.",
                        fix:
                            "POST /v1/admin/api-keys {\"name\": \"\(name)\", \"admin\": true, \"expires_at\": \"<in 90 days>\"}, switch to it, then DELETE /v1/admin/api-keys/\(id)"
                    )
                )
            }
            let lastUse = r[3].int ?? r[4].int ?? now.millisecondsSinceEpoch
            let idle = (now.millisecondsSinceEpoch - lastUse) / day
            if idle >= thresholds.unusedKeyDays {
                out.append(
                    Finding(
                        id: "security.admin_key_unused",
                        severity: .warning,
                        subject: id,
                        title: "Admin API key \"\(name)\" unused for \(idle) days",
                        seen: r[3].isNull
                            ? "admin key \(id) was never used (created \(idle) days ago)" : "admin key \(id) last used \(idle) days ago",
                        why: "A key nobody uses is a credential that can leak with no benefit.",
                        tradeoff: "Whatever still holds the key stops working.",
                        fix: "DELETE /v1/admin/api-keys/\(id)"
                    )
                )
            }
        }
        return out
    }

    func webhookFindings() async throws -> [Finding] {
        let rows = try await store.fetch(
            SQLQuery(sql: #"SELECT "id", "url" FROM "_basalt_webhooks" WHERE "enabled" = 1"#),
            types: [.text, .text]
        )
        return rows.compactMap { r in
            guard let url = r[1].text, url.lowercased().hasPrefix("http://") else { return nil }
            let id = r[0].text ?? ""
            return Finding(
                id: "security.webhook_plain_http",
                severity: .warning,
                subject: id,
                title: "A webhook delivers over plain HTTP",
                seen: "webhook \(id) posts to \(url)",
                why: "Record contents cross the network unencrypted; the signature proves origin but hides nothing.",
                tradeoff: "The receiver needs a certificate.",
                fix: "PATCH /v1/admin/webhooks/\(id) {\"url\": \"https://\(url.dropFirst("http://".count))\"}"
            )
        }
    }

    // MARK: - Performance

    /// Rows are counted up to here (a bounded cost on a large table).
    static let countCap: Int64 = 1_000_001

    func rowCount(_ table: String) async throws -> Int64 {
        let q = SQLQuery(sql: "SELECT count(*) FROM (SELECT 1 FROM \(store.dialect.quote(table)) LIMIT \(Self.countCap)) AS s")
        return try await store.fetchOne(q, types: [.int])?.first?.int ?? 0
    }

    func queryFindings() async throws -> [Finding] {
        var out: [Finding] = []
        var rows: [String: Int64] = [:]
        for o in observations {
            guard let c = schema.collection(o.shape.collection) else { continue }
            if rows[c.name] == nil { rows[c.name] = try await rowCount(c.name) }
            let n = rows[c.name] ?? 0
            let described = o.shape.filter.isEmpty ? "no filter" : "filter `\(o.shape.filter)`"
            let timing = "\(o.count) times, p50 \(Self.ms(o.p50)), p95 \(Self.ms(o.p95)), p99 \(Self.ms(o.p99))"
            if o.totals > 0, n >= thresholds.largeTotalRows {
                out.append(
                    Finding(
                        id: "performance.total_on_large_collection",
                        severity: .warning,
                        subject: c.name,
                        title: "total=true counts every match of \(c.name) (\(n) rows)",
                        seen: "\(o.totals) lists of \(c.name) with \(described) asked for total=true",
                        why: "A count reads every matching row on each request; it grows with the collection while the page stays the same size.",
                        tradeoff: "Clients show \"more\" (next_cursor) instead of an exact count, or cache the count.",
                        fix: "Drop total=true from the client's list calls, or ask for it once and cache it"
                    )
                )
            }
            guard n >= thresholds.scanRows else { continue }
            let sortFields = o.sortFields.map { $0.hasPrefix("-") ? String($0.dropFirst()) : $0 }.filter { $0 != "id" }
            var suggestion: [String] = []
            for f in o.equalities + o.ranges.prefix(1) + sortFields where !suggestion.contains(f) && f != "id" { suggestion.append(f) }
            guard !suggestion.isEmpty else { continue }
            // Already there: the declared indexes and those Basalt keeps (created_at, relations, unique).
            let existing = c.indexes.map(\.fields) + [["created_at"]] + c.fields.filter { $0.type == .relation || $0.unique }.map { [$0.name] }
            if existing.contains(where: { $0.starts(with: suggestion) }) { continue }
            let (explain, types, detail) = store.dialect.explain(o.sample)
            // A sample the schema has since moved past (a field dropped) cannot be explained: skip it.
            guard let plan = try? await store.fetch(explain, types: types) else { continue }
            let lines = plan.compactMap { $0[detail].text }
            let scans = store.dialect.planReadsAllRows(lines, table: c.name, alias: RecordTable.alias)
            let sorts = store.dialect.planSorts(lines)
            let leftover = store.dialect.planFiltersAfterIndex(lines, fields: o.equalities + o.ranges)
            guard scans || sorts || leftover else { continue }
            let what = [scans ? "reads every row" : nil, leftover ? "filters rows after reading them" : nil, sorts ? "sorts the matches" : nil]
                .compactMap { $0 }.joined(separator: " and ")
            out.append(
                Finding(
                    id: "performance.unindexed_query",
                    severity: o.p95 >= 50 ? .warning : .info,
                    subject: c.name,
                    title: "Lists of \(c.name) with \(described) need an index on (\(suggestion.joined(separator: ", ")))",
                    seen: "\(described), sorted by \(o.shape.sort): \(timing); the plan \(what) (\(n) rows in \(c.name))",
                    why:
                        "Without an index that serves the filter and the order, each page costs time proportional to the collection, not to the page.",
                    tradeoff: "Each index costs a little on every write to \(c.name) and some disk.",
                    fix: """
                        collections:
                          \(c.name):
                            indexes:
                              - [\(suggestion.joined(separator: ", "))]
                        """
                )
            )
        }
        return out
    }

    static func ms(_ v: Double) -> String { v < 10 ? String(format: "%.2f ms", v) : String(format: "%.0f ms", v) }

    /// The indexes Basalt keeps (keyset order, relations, unique fields, declared ones) as the
    /// database has them, and planner statistics.
    func tableFindings() async throws -> [Finding] {
        var out: [Finding] = []
        let ddl = TableDDL(dialect: store.dialect)
        for c in schema.collections {
            let present = Set(try await store.fetch(store.dialect.indexNamesQuery(c.name), types: [.text]).compactMap { $0[0].text })
            let expected = ddl.indexes(c)
            for name in present.sorted() where name.hasPrefix("bx_") && !expected.contains(where: { $0.name == name }) {
                out.append(
                    Finding(
                        id: "performance.stale_index",
                        severity: .warning,
                        subject: c.name,
                        title: "An index on \(c.name) that Basalt no longer keeps",
                        seen: "index \(name) is in the database but not among the indexes the schema gives \(c.name)",
                        why: "Every write to \(c.name) still maintains it (left by an older version, or by a change made outside Basalt).",
                        tradeoff: "None, unless something outside Basalt reads through it.",
                        fix: ddl.dropIndex(name) + ";"
                    )
                )
            }
            for ix in expected where !present.contains(ix.name) {
                let relation = c.fields.first { f in
                    f.type == .relation && ix.sql.contains("(\(store.dialect.indexTerm(store.dialect.quote(f.name)))")
                }
                out.append(
                    Finding(
                        id: "performance.missing_index",
                        severity: .warning,
                        subject: c.name,
                        title: "An index Basalt keeps for \(c.name) is missing",
                        seen: "index \(ix.name) is not in the database: \(ix.sql)",
                        why: relation.map {
                            "Deleting a \($0.target ?? "target") record checks \(c.name).\($0.name) row by row (on_delete), and expand and filters on it scan."
                        } ?? "Lists in keyset order, unique checks or the declared filters read every row without it.",
                        tradeoff: "The index costs a little on each write to \(c.name); building it locks writes to the table while it runs.",
                        fix: ix.sql
                    )
                )
            }
            let n = try await rowCount(c.name)
            // Past the count's cap the size is unknown: no comparison with the statistics.
            guard n >= thresholds.scanRows, n < Self.countCap else { continue }
            let stats = try? await store.fetchOne(store.dialect.statisticsQuery(c.name), types: [.int, .int])
            let analyzedRows = stats?[0].int
            let changed = stats?[1].int
            let stale: String?
            if let changed {
                // PostgreSQL: autovacuum analyzes after 10% changed; twice that is overdue.
                let live = max(analyzedRows ?? n, 1)
                stale = changed * 5 > live ? "\(changed) rows changed since the last ANALYZE of \(live)" : nil
            } else if let analyzedRows {
                stale = analyzedRows * 2 < n || analyzedRows > n * 2 ? "statistics describe \(analyzedRows) rows, the table holds \(n)" : nil
            } else {
                stale = "no statistics for \(c.name) (\(n) rows)"
            }
            if let stale {
                out.append(
                    Finding(
                        id: "performance.stale_statistics",
                        severity: .warning,
                        subject: c.name,
                        title: "The query planner's statistics for \(c.name) are out of date",
                        seen: stale,
                        why: "Plans are chosen from these numbers: stale ones pick scans and wrong indexes (a two-valued field looks selective).",
                        tradeoff: "ANALYZE reads a sample of the table once.",
                        fix: "ANALYZE \(store.dialect.quote(c.name));"
                    )
                )
            }
        }
        return out
    }

    // MARK: - The store's own settings

    func storeFindings() async throws -> [Finding] {
        var out: [Finding] = []
        if let sync = facts.sqliteSynchronous, sync.uppercased() == "NORMAL" {
            out.append(
                Finding(
                    id: "reliability.sqlite_synchronous_normal",
                    severity: .info,
                    subject: nil,
                    title: "SQLite syncs the log at checkpoints, not at every commit",
                    seen: "BASALT_SQLITE_SYNCHRONOUS=normal (the default)",
                    why: "Committed writes survive a crash of Basalt, but the last ones may be lost if the machine loses power.",
                    tradeoff: "full makes every commit wait for the disk: fewer writes per second, most on slow disks.",
                    fix: "BASALT_SQLITE_SYNCHRONOUS=full"
                )
            )
        }
        if let wal = facts.walBytes, let target = facts.walTargetBytes, wal > target * 4 {
            out.append(
                Finding(
                    id: "reliability.sqlite_wal_above_target",
                    severity: .warning,
                    subject: nil,
                    title: "The SQLite write-ahead log is far above its target",
                    seen: "data.db-wal is \(wal >> 20) MiB, the target is \(target >> 20) MiB",
                    why: "Checkpoints are not catching up (long readers, a slow disk): reads walk a longer log and the file can fill the disk.",
                    tradeoff: "Escalated checkpoints briefly wait for readers.",
                    fix:
                        "Look for long-running reads (an open backup, a client holding a cursor), check the disk's speed; GET /metrics shows basalt_sqlite_wal_bytes and the checkpoints"
                )
            )
        }
        if let cache = facts.sqliteCacheBytes, let size = facts.sqliteDatabaseBytes, size > cache * 4 {
            out.append(
                Finding(
                    id: "performance.sqlite_cache_small",
                    severity: .info,
                    subject: nil,
                    title: "SQLite's page cache holds a small part of the database",
                    seen: "data.db is \(size >> 20) MiB, each connection caches \(cache >> 20) MiB",
                    why: "Pages outside the cache are read again from the operating system's file cache (or the disk) on every use.",
                    tradeoff: "Each of the store's connections (a writer and the readers) may use this much memory.",
                    fix: "BASALT_SQLITE_CACHE_MB=\(Swift.min(1024, Swift.max(64, (size >> 20) / 2)))"
                )
            )
        }
        if let pool = facts.poolSize, let row = try? await store.fetchOne(SQLQuery(sql: "SHOW max_connections"), types: [.text]),
            let max = row[0].text.flatMap(Int.init)
        {
            let severity: Finding.Severity? = pool >= max - 3 ? .severe : (pool * 2 > max ? .warning : nil)
            if let severity {
                out.append(
                    Finding(
                        id: "performance.postgres_pool_size",
                        severity: severity,
                        subject: nil,
                        title: "One process's pool takes \(pool) of PostgreSQL's \(max) connections",
                        seen: "BASALT_POSTGRES_POOL=\(pool), max_connections = \(max)",
                        why: "A second replica, a migration or an operator's psql cannot connect; requests wait for connections and fail with 503.",
                        tradeoff: "A smaller pool queues requests under peak load; PgBouncer in front multiplexes more clients.",
                        fix: "BASALT_POSTGRES_POOL=\(Swift.max(2, max / 4)) per replica (replicas × pool well under \(max))"
                    )
                )
            }
        }
        return out
    }
}
