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
        public init(actor: String, action: String, collection: String? = nil, recordID: String? = nil, requestID: String? = nil, detail: JSONValue? = nil) {
            self.actor = actor
            self.action = action
            self.collection = collection
            self.recordID = recordID
            self.requestID = requestID
            self.detail = detail
        }
    }

    public static func entry(_ p: Principal, _ action: String, collection: String? = nil, recordID: String? = nil, detail: JSONValue? = nil) -> Entry {
        Entry(actor: p.callerKey, action: action, collection: collection, recordID: recordID, requestID: p.requestID, detail: detail)
    }

    public func statement(_ e: Entry, at now: Timestamp = .now()) -> SQLStatement {
        var b = SQLBuilder(store.dialect)
        b.append("INSERT INTO \"_basalt_audit\" (\"id\", \"at\", \"actor\", \"action\", \"collection\", \"record_id\", \"request_id\", \"detail\") VALUES (")
        let values: [SQLValue] = [.text(RecordID.make(at: now)), .int(now.millisecondsSinceEpoch), .text(e.actor), .text(e.action),
                                  e.collection.map(SQLValue.text) ?? .null, e.recordID.map(SQLValue.text) ?? .null,
                                  e.requestID.map(SQLValue.text) ?? .null, e.detail.map { .text($0.serialized()) } ?? .null]
        b.bindList(values)
        b.append(")")
        return SQLStatement(b.query)
    }

    public func record(_ e: Entry) async throws {
        _ = try await store.write([statement(e)])
    }

    /// Newest first, keyset-paginated by id (UUIDv7: time order), optionally narrowed to one
    /// actor, action or collection.
    public func list(limit: Int, before: String?, actor: String?, action: String?, collection: String?) async throws -> (items: [JSONValue], next: String?) {
        var b = SQLBuilder(store.dialect)
        b.append("SELECT \"id\", \"at\", \"actor\", \"action\", \"collection\", \"record_id\", \"request_id\", \"detail\" FROM \"_basalt_audit\" WHERE 1 = 1")
        for (col, v) in [("id", before), ("actor", actor), ("action", action), ("collection", collection)] {
            guard let v else { continue }
            b.append(col == "id" ? " AND \"id\" < " : " AND \"\(col)\" = ")
            b.bind(.text(v))
        }
        b.append(" ORDER BY \"id\" DESC LIMIT ")
        b.bind(.int(Int64(limit + 1)))
        var rows = try await store.fetch(b.query, types: [.text, .int, .text, .text, .text, .text, .text, .text])
        var next: String?
        if rows.count > limit {
            rows.removeLast()
            next = rows.last?[0].text
        }
        let items = rows.map { r -> JSONValue in
            .object(JSONObject([
                ("id", .string(r[0].text ?? "")), ("at", .string(Timestamp(millisecondsSinceEpoch: r[1].int ?? 0).rfc3339)),
                ("actor", .string(r[2].text ?? "")), ("action", .string(r[3].text ?? "")),
                ("collection", r[4].text.map(JSONValue.string) ?? .null), ("record_id", r[5].text.map(JSONValue.string) ?? .null),
                ("request_id", r[6].text.map(JSONValue.string) ?? .null),
                ("detail", r[7].text.flatMap { try? JSONValue.parse($0) } ?? .null),
            ]))
        }
        return (items, next)
    }
}
