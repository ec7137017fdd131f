public import BasaltCore
public import BasaltStorage

/// The audit log (`_basalt_audit`): admin bypasses of the grants and identity administration.
/// Writes append their entry inside the write's own transaction, so the log and the change
/// commit together; reads append theirs right after answering.
public struct AuditLog: Sendable {
    public let store: any Store

    public init(store: any Store) { self.store = store }

    public struct Entry: Sendable {
        public var actor: String
        public var action: String
        public var collection: String?
        public var recordID: String?
        public var requestID: String?
        public var detail: JSONValue?
        public init(
            actor: String,
            action: String,
            collection: String? = nil,
            recordID: String? = nil,
            requestID: String? = nil,
            detail: JSONValue? = nil
        ) {
            self.actor = actor
            self.action = action
            self.collection = collection
            self.recordID = recordID
            self.requestID = requestID
            self.detail = detail
        }
    }

    public static func entry(_ p: Principal, _ action: String, collection: String? = nil, recordID: String? = nil, detail: JSONValue? = nil) -> Entry
    {
        Entry(actor: p.callerKey, action: action, collection: collection, recordID: recordID, requestID: p.requestID, detail: detail)
    }

    public func statement(_ e: Entry, at now: Timestamp = .now()) -> SQLStatement {
        store.statement(
            """
            INSERT INTO "_basalt_audit" ("id", "at", "actor", "action", "collection", "record_id", "request_id", "detail")
            VALUES (\(RecordID.make(at: now)), \(now.millisecondsSinceEpoch), \(e.actor), \(e.action),
                    \(e.collection), \(e.recordID), \(e.requestID), \(e.detail?.serialized()))
            """
        )
    }

    public func record(_ e: Entry) async throws {
        _ = try await store.write([statement(e)])
    }

    struct AuditRow: StoredRow {
        static let columns: [SQLColumnType] = [.text, .int, .text, .text, .text, .text, .text, .text]
        var id: String?
        var at: Int64
        var actor: String
        var action: String
        var collection: String?
        var recordID: String?
        var requestID: String?
        /// JSON text.
        var detail: String?
        init(_ r: inout RowReader) {
            id = r.text()
            at = r.int() ?? 0
            actor = r.text() ?? ""
            action = r.text() ?? ""
            collection = r.text()
            recordID = r.text()
            requestID = r.text()
            detail = r.text()
        }
    }

    /// Newest first, keyset-paginated by id (UUIDv7: time order), optionally narrowed to one
    /// actor, action or collection.
    public func list(
        limit: Int,
        before: String?,
        actor: String?,
        action: String?,
        collection: String?
    ) async throws -> (items: [JSONValue], next: String?) {
        var sql: SQL = """
            SELECT "id", "at", "actor", "action", "collection", "record_id", "request_id", "detail" FROM "_basalt_audit" WHERE 1 = 1
            """
        for (col, v) in [("id", before), ("actor", actor), ("action", action), ("collection", collection)] {
            guard let v else { continue }
            sql = col == "id" ? "\(sql) AND \"id\" < \(v)" : "\(sql) AND \(identifier: col) = \(v)"
        }
        sql = "\(sql) ORDER BY \"id\" DESC LIMIT \(limit + 1)"
        var rows = try await store.fetch(sql, as: AuditRow.self)
        var next: String?
        if rows.count > limit {
            rows.removeLast()
            next = rows.last?.id
        }
        return (rows.map(\.json), next)
    }

    /// Entries from `since` on, oldest first, a page at a time (`basalt audit export`).
    public func export(since: Timestamp?, page: Int = 1000, _ emit: ([JSONValue]) throws -> Void) async throws {
        var after = ""
        while true {
            var sql: SQL = """
                SELECT "id", "at", "actor", "action", "collection", "record_id", "request_id", "detail" FROM "_basalt_audit"
                WHERE "id" > \(after)
                """
            if let since { sql = "\(sql) AND \"at\" >= \(since.millisecondsSinceEpoch)" }
            let rows = try await store.fetch("\(sql) ORDER BY \"id\" LIMIT \(page)", as: AuditRow.self)
            if rows.isEmpty { return }
            try emit(rows.map(\.json))
            after = rows.last?.id ?? after
            if rows.count < page { return }
        }
    }

    /// Deletes entries older than `cutoff` (retention), a bounded batch per transaction so a
    /// large backlog never holds the writer long. Returns how many went.
    @discardableResult
    public func prune(olderThan cutoff: Timestamp) async throws -> Int {
        var total = 0
        while true {
            let rows = try await store.write([
                store.statement(
                    """
                    DELETE FROM "_basalt_audit" WHERE "id" IN
                      (SELECT "id" FROM "_basalt_audit" WHERE "at" < \(cutoff.millisecondsSinceEpoch) LIMIT 5000)
                    RETURNING "id"
                    """,
                    returning: [.text]
                )
            ])
            let n = rows.first?.count ?? 0
            total += n
            if n < 5000 { return total }
        }
    }
}

extension AuditLog.AuditRow {
    /// The admin API's and the export's representation.
    var json: JSONValue {
        .object(
            JSONObject([
                ("id", .string(id ?? "")), ("at", .string(Timestamp(millisecondsSinceEpoch: at).rfc3339)),
                ("actor", .string(actor)), ("action", .string(action)),
                ("collection", collection.map(JSONValue.string) ?? .null), ("record_id", recordID.map(JSONValue.string) ?? .null),
                ("request_id", requestID.map(JSONValue.string) ?? .null),
                ("detail", detail.flatMap { try? JSONValue.parse($0) } ?? .null),
            ])
        )
    }
}
