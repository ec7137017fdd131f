public import BasaltCore

/// Where the schema document and the migration history live: Basalt's own tables, written in the
/// same transaction as the DDL they describe.
public struct SchemaRepository: Sendable {
    public let store: any Store
    public init(store: any Store) { self.store = store }

    public struct Stored: Sendable {
        public var schema: Schema
        public var version: Int64
    }

    public func load() async throws -> Stored {
        guard let row = try await store.fetchOne(
            SQLQuery(sql: "SELECT \"version\", \"document\" FROM \"_basalt_schema\" WHERE \"id\" = 1"), types: [.int, .text])
        else { return Stored(schema: .empty, version: 0) }
        let doc = try JSONValue.parse(row[1].text ?? "{}")
        return Stored(schema: try Schema.decode(doc), version: row[0].int ?? 0)
    }

    /// Applies `plan` (DDL, schema document, history entry) in one transaction.
    public func apply(_ plan: MigrationPlan, fromVersion: Int64, source: String, now: Timestamp = .now()) async throws -> Int64 {
        let version = fromVersion + 1
        var b = SQLBuilder(store.dialect)
        b.append("DELETE FROM \"_basalt_schema\"")
        var statements = plan.statements
        statements.append(b.query)
        var ins = SQLBuilder(store.dialect)
        ins.append("INSERT INTO \"_basalt_schema\" (\"id\", \"version\", \"document\") VALUES (1, ")
        ins.bind(.int(version))
        ins.append(", ")
        ins.bind(.text(plan.wanted.encode().serialized()))
        ins.append(")")
        statements.append(ins.query)
        var hist = SQLBuilder(store.dialect)
        hist.append("INSERT INTO \"_basalt_migrations\" (\"version\", \"applied_at\", \"steps\", \"source\") VALUES (")
        hist.bind(.int(version))
        hist.append(", ")
        hist.bind(.int(now.millisecondsSinceEpoch))
        hist.append(", ")
        hist.bind(.text(plan.json.serialized()))
        hist.append(", ")
        hist.bind(.text(source))
        hist.append(")")
        statements.append(hist.query)
        try await store.migrate(statements)
        return version
    }

    public struct HistoryEntry: Sendable {
        public var version: Int64
        public var appliedAt: Timestamp
        public var plan: JSONValue
        public var source: String
        public var json: JSONValue {
            var o = JSONObject([("version", .int(version)), ("applied_at", .string(appliedAt.rfc3339)), ("source", .string(source))])
            if case .object(let p) = plan { o.members += p.members }
            return .object(o)
        }
    }

    public func history() async throws -> [HistoryEntry] {
        let rows = try await store.fetch(
            SQLQuery(sql: "SELECT \"version\", \"applied_at\", \"steps\", \"source\" FROM \"_basalt_migrations\" ORDER BY \"version\" DESC"),
            types: [.int, .int, .text, .text])
        return rows.map {
            HistoryEntry(version: $0[0].int ?? 0, appliedAt: Timestamp(millisecondsSinceEpoch: $0[1].int ?? 0),
                         plan: (try? JSONValue.parse($0[2].text ?? "{}")) ?? .null, source: $0[3].text ?? "")
        }
    }
}
