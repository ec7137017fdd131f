public import BasaltCore
public import BasaltStorage

/// One outbox row: a committed change of one record (API.md §10).
public struct StoredEvent: Sendable {
    public var sequence: Int64
    public var id: String
    public var type: String
    public var collection: String
    public var recordID: String
    public var time: Timestamp
    /// The record's columns in storage form (`EventTriggers`): decode with `record(in:)`.
    public var data: JSONObject

    /// The record as the records API renders it, read with the collection's current columns.
    public func record(in table: RecordTable) -> JSONObject {
        var o = JSONObject(minimumCapacity: table.columns.count)
        for (name, type) in zip(table.columns, Self.fieldTypes(table)) {
            o.append(name, Self.apiValue(data[name] ?? .null, type))
        }
        return o
    }

    /// The CloudEvents 1.0 JSON object (API.md §10), `sequence` as 20 zero-padded digits.
    public func cloudEvent(record: JSONObject) -> JSONObject {
        JSONObject([
            ("specversion", "1.0"),
            ("id", .string(id)),
            ("source", .string("/v1/" + collection)),
            ("type", .string(type)),
            ("time", .string(time.rfc3339)),
            ("subject", .string(recordID)),
            ("datacontenttype", "application/json"),
            ("data", .object(record)),
            ("sequence", .string(Self.sequenceText(sequence))),
        ])
    }

    public static func sequenceText(_ s: Int64) -> String {
        let digits = String(s)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }

    static func fieldTypes(_ table: RecordTable) -> [FieldType] {
        [.relation, .datetime, .datetime, .integer] + table.collection.fields.map(\.type)
    }

    /// SQLite hands booleans as 0/1 and PostgreSQL timestamps with an offset: both read as the API
    /// writes them.
    static func apiValue(_ v: JSONValue, _ type: FieldType) -> JSONValue {
        switch (type, v) {
        case (.boolean, .int(let i)): return .bool(i != 0)
        default: return SQLValue(json: v, type: type).json
        }
    }
}

/// Reads and trims the outbox. Rows are written by the database's triggers, never here.
public struct EventLog: Sendable {
    public let store: any Store

    public init(store: any Store) { self.store = store }

    struct Row: StoredRow {
        static let columns: [SQLColumnType] = [.int, .text, .text, .text, .text, .int, .text]
        var event: StoredEvent
        init(_ r: inout RowReader) {
            let sequence = r.int() ?? 0
            let id = r.text() ?? ""
            let type = r.text() ?? ""
            let collection = r.text() ?? ""
            let recordID = r.text() ?? ""
            let time = Timestamp(millisecondsSinceEpoch: r.int() ?? 0)
            let data = (try? JSONValue.parse(r.text() ?? "{}", maxDepth: 512))?.objectValue ?? JSONObject()
            event = StoredEvent(sequence: sequence, id: id, type: type, collection: collection, recordID: recordID, time: time, data: data)
        }
    }

    /// Gives committed events their numbers where that happens after commit (PostgreSQL); any
    /// process may, one at a time. Readers call it before they read.
    public func number() async throws {
        let statements = store.dialect.numberEvents
        guard !statements.isEmpty else { return }
        try await store.writeUnannounced(statements.map { SQLStatement(SQLQuery(sql: $0)) })
    }

    /// Events after `sequence`, in order, at most `limit`.
    public func read(after sequence: Int64, limit: Int) async throws -> [StoredEvent] {
        try await store.fetch(
            """
            SELECT "sequence", "id", "type", "collection", "record_id", "time", "data" FROM "_basalt_events"
            WHERE "sequence" > \(sequence) ORDER BY "sequence" LIMIT \(limit)
            """,
            as: Row.self
        ).map(\.event)
    }

    struct Bounds: StoredRow {
        static let columns: [SQLColumnType] = [.int, .int]
        var oldest: Int64?
        var newest: Int64
        init(_ r: inout RowReader) {
            oldest = r.int()
            newest = r.int() ?? 0
        }
    }

    /// The oldest retained and the newest sequence (0 before the first event).
    /// Events committed before the call are numbered first, so `newest` covers them.
    public func bounds() async throws -> (oldest: Int64?, newest: Int64) {
        try await number()
        let b = try await store.fetchOne(
            #"SELECT min("sequence"), max("sequence") FROM "_basalt_events" WHERE "sequence" IS NOT NULL"#,
            as: Bounds.self
        )
        return (b?.oldest, b?.newest ?? 0)
    }

    /// How many numbered events each outbox consumer (webhooks, after-hooks) has yet to pass.
    /// Reads only: events committed but not numbered yet (PostgreSQL) are not counted.
    public func lag() async throws -> [(consumer: String, events: Int64)] {
        try await store.fetchRows(
            """
            SELECT c."name", (SELECT coalesce(max("sequence"), 0) FROM "_basalt_events") - c."position"
            FROM "_basalt_cursors" c ORDER BY c."name"
            """,
            types: [.text, .int]
        ).map { ($0[0].text ?? "", max(0, $0[1].int ?? 0)) }
    }

    /// Deletes events older than `cutoff`, always keeping the newest (it carries the sequence a
    /// resume is checked against) and any an `OutboxCursor` (webhooks, after-hooks) has not passed. Returns how many went.
    @discardableResult
    public func prune(olderThan cutoff: Timestamp) async throws -> Int {
        try await number()
        let rows = try await store.write([
            store.statement(
                """
                DELETE FROM "_basalt_events" WHERE "time" < \(cutoff.millisecondsSinceEpoch)
                AND "sequence" < (SELECT max("sequence") FROM "_basalt_events")
                AND "sequence" <= (SELECT min("position") FROM "_basalt_cursors") RETURNING "sequence"
                """,
                returning: [.int]
            )
        ])
        return rows.first?.count ?? 0
    }
}
