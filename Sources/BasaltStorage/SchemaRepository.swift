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

    struct SchemaRow: StoredRow {
        static let columns: [SQLColumnType] = [.int, .text]
        var version: Int64
        /// The schema document, JSON text.
        var document: String?
        init(_ r: inout RowReader) {
            version = r.int() ?? 0
            document = r.text()
        }
    }

    public func load() async throws -> Stored {
        let sql: SQL = "SELECT \"version\", \"document\" FROM \"_basalt_schema\" WHERE \"id\" = 1"
        guard let row = try await store.fetchOne(sql, as: SchemaRow.self) else { return Stored(schema: .empty, version: 0) }
        let doc = try JSONValue.parse(row.document ?? "{}")
        return Stored(schema: try Schema.decode(doc), version: row.version)
    }

    /// Applies `plan` (DDL, schema document, history entry) in one transaction.
    public func apply(_ plan: MigrationPlan, fromVersion: Int64, source: String, now: Timestamp = .now()) async throws -> Int64 {
        let version = fromVersion + 1
        let bookkeeping: [SQL] = [
            "DELETE FROM \"_basalt_schema\"",
            """
            INSERT INTO "_basalt_schema" ("id", "version", "document") VALUES (1, \(version), \(plan.wanted.encode().serialized()))
            """,
            """
            INSERT INTO "_basalt_migrations" ("version", "applied_at", "steps", "source")
            VALUES (\(version), \(now.millisecondsSinceEpoch), \(plan.json.serialized()), \(source))
            """,
        ]
        try await store.migrate(plan.statements + bookkeeping.map { $0.query(store.dialect) })
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

    struct MigrationRow: StoredRow {
        static let columns: [SQLColumnType] = [.int, .int, .text, .text]
        var version: Int64
        var appliedAt: Int64
        /// The plan's steps, JSON text.
        var steps: String?
        var source: String
        init(_ r: inout RowReader) {
            version = r.int() ?? 0
            appliedAt = r.int() ?? 0
            steps = r.text()
            source = r.text() ?? ""
        }
    }

    public func history() async throws -> [HistoryEntry] {
        let rows = try await store.fetch(
            """
            SELECT "version", "applied_at", "steps", "source" FROM "_basalt_migrations" ORDER BY "version" DESC
            """,
            as: MigrationRow.self
        )
        return rows.map {
            HistoryEntry(
                version: $0.version,
                appliedAt: Timestamp(millisecondsSinceEpoch: $0.appliedAt),
                plan: (try? JSONValue.parse($0.steps ?? "{}")) ?? .null,
                source: $0.source
            )
        }
    }
}
