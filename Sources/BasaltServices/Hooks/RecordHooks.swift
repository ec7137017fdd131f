public import BasaltCore
public import BasaltStorage
import Foundation

/// What a write does to one record.
public enum RecordAction: String, Sendable, CaseIterable {
    case create, update, delete
}

/// Swift code a program embedding Basalt runs around record writes (API.md §10 describes the
/// events; this is their in-process side).
///
/// - A **before-hook** runs while the write is planned, for every way the records API writes
///   (single, replace, patch, batch; admins and the auth flows included): it sees the validated
///   record, may change it (the result is validated again), may read other records, may add
///   statements that commit in the write's own transaction, and may refuse the write by throwing
///   a `BasaltError`, which the client receives as its problem document. Hooks of one collection
///   run in the order they were added.
/// - An **after-hook** runs once a change has committed, fed from the outbox through the job
///   queue: at least once (a crash or a thrown error runs it again, with backoff), in order per
///   record, on one process at a time. Handlers must be idempotent; `event.id` is stable.
///
/// ```swift
/// var hooks = RecordHooks()
/// hooks.before("orders", on: [.create], as: Order.self) { order, change in
///     order.total = order.quantity * (try await change.read("products", id: order.product)?["price"]?.integerValue ?? 0)
/// }
/// hooks.after("mail-receipt", collections: ["orders"]) { event in … }
/// ```
public struct RecordHooks: Sendable {
    public typealias Before = @Sendable (inout RecordChange) async throws -> Void
    public typealias After = @Sendable (HookEvent) async throws -> Void

    struct BeforeHook: Sendable {
        var actions: Set<RecordAction>
        var run: Before
    }

    struct AfterHook: Sendable {
        var name: String
        var collections: Set<String>?
        var actions: Set<RecordAction>?
        var run: After

        func matches(_ collection: String, _ action: RecordAction?) -> Bool {
            if let collections, !collections.contains(collection) { return false }
            if let actions { return action.map(actions.contains) ?? false }
            return true
        }
    }

    var before: [String: [BeforeHook]] = [:]
    var after: [String: AfterHook] = [:]

    public init() {}

    public var isEmpty: Bool { before.isEmpty && after.isEmpty }

    /// Runs `hook` before every write of `actions` on `collection`.
    public mutating func before(_ collection: String, on actions: Set<RecordAction> = Set(RecordAction.allCases), _ hook: @escaping Before) {
        before[collection, default: []].append(BeforeHook(actions: actions, run: hook))
    }

    /// Runs `hook` with the record decoded as `Record` (its `Codable` names are the field names;
    /// `id` is there too); what the hook leaves in `record` is written. A delete's record is the
    /// stored one, and changing it changes nothing.
    public mutating func before<Record: Codable & Sendable>(
        _ collection: String,
        on actions: Set<RecordAction> = [.create, .update],
        as type: Record.Type,
        _ hook: @escaping @Sendable (inout Record, inout RecordChange) async throws -> Void
    ) {
        before(collection, on: actions) { change in
            var record = try change.decode(Record.self)
            try await hook(&record, &change)
            try change.encode(record)
        }
    }

    /// Runs `hook` after every committed change (of `collections` and `actions`, when given),
    /// under a stable `name`: the name keys its jobs, so renaming a hook starts it afresh.
    /// Failures are retried after 1 s, doubling up to 10 minutes, 20 times, then the job is dead
    /// (visible and retryable in `/v1/admin/jobs`).
    public mutating func after(
        _ name: String,
        collections: Set<String>? = nil,
        on actions: Set<RecordAction>? = nil,
        _ hook: @escaping After
    ) {
        precondition(!name.isEmpty && name.count <= 100, "an after-hook needs a name of 1 to 100 characters")
        after[name] = AfterHook(
            name: name,
            collections: collections,
            actions: actions,
            run: hook
        )
    }

    func beforeHooks(_ collection: String, _ action: RecordAction) -> [BeforeHook] {
        (before[collection] ?? []).filter { $0.actions.contains(action) }
    }
}

/// One record write as a before-hook sees it.
public struct RecordChange: Sendable {
    public let collection: String
    public let action: RecordAction
    /// The record's id (for a create: the id it will get).
    public let id: String
    /// The record's fields as they will be written, validated. A hook may change them; the
    /// result is validated again. (System fields are not here: the server sets them.)
    public var fields: JSONObject
    /// The stored record before the change (update, delete), system fields included.
    public let current: JSONObject?
    /// Who writes.
    public let principal: Principal
    let store: any Store
    let tables: [String: RecordTable]
    var statements: [(query: SQLQuery, refusal: BasaltError?)] = []

    init(
        collection: String,
        action: RecordAction,
        id: String,
        fields: JSONObject,
        current: JSONObject?,
        principal: Principal,
        store: any Store,
        tables: [String: RecordTable]
    ) {
        self.collection = collection
        self.action = action
        self.id = id
        self.fields = fields
        self.current = current
        self.principal = principal
        self.store = store
        self.tables = tables
    }

    // MARK: Typed access

    /// The record (`id` and its fields) as a `Decodable` value.
    public func decode<Record: Decodable>(_ type: Record.Type = Record.self) throws -> Record {
        var o = JSONObject(minimumCapacity: fields.count + 1)
        o.append("id", .string(id))
        o.members += fields.members
        return try JSONDecoder().decode(Record.self, from: Data(JSONValue.object(o).serializedBytes()))
    }

    /// Writes an `Encodable` value's members back into `fields` (members that are not fields,
    /// `id` among them, are ignored).
    public mutating func encode(_ record: some Encodable) throws {
        let data = try JSONEncoder().encode(record)
        guard case .object(let o) = try JSONValue.parse(Array(data)) else { return }
        for (k, v) in o where fields[k] != nil || tables[collection]?.collection.field(k) != nil {
            fields[k] = v
        }
    }

    // MARK: Reads (before the transaction: guard what must still hold with a statement)

    /// A stored record, read without access rules (hooks are the program's own code).
    public func read(_ collection: String, id: String) async throws -> JSONObject? {
        guard let table = tables[collection] else { throw BasaltError(.internalError, "a hook read the unknown collection \(collection)") }
        guard let id = RecordID.normalize(id), let row = try await store.fetchOne(table.selectByID(id), types: table.types) else { return nil }
        return RecordService.render(row, table)
    }

    /// Any read-only query.
    public func fetch(_ sql: SQL, types: [SQLColumnType]) async throws -> [SQLRow] {
        try await store.fetch(sql.query(store.dialect), types: types)
    }

    // MARK: Statements in the write's transaction

    /// Runs `sql` in the write's transaction, after the write itself. With `refusal`, it must
    /// change (or return) exactly one row, else the whole write rolls back and the client
    /// receives `refusal`.
    public mutating func execute(_ sql: SQL, orRefuse refusal: BasaltError? = nil) {
        statements.append((sql.query(store.dialect), refusal))
    }

    /// Adds `delta` to the number field `field` of another record in the write's transaction
    /// (its `version` and `updated_at` advance, and it gets its own event). With `floor`, the
    /// change happens only if the result stays at or above it; otherwise — or when the record
    /// does not exist — the whole write is refused with `refusal`.
    public mutating func add(
        _ delta: Int64,
        to field: String,
        of collection: String,
        id: String,
        floor: Int64? = nil,
        orRefuse refusal: BasaltError
    ) throws {
        guard let table = tables[collection], let f = table.collection.field(field), f.type == .integer || f.type == .number else {
            throw BasaltError(.internalError, "a hook changed \(collection).\(field), which is not a number field")
        }
        guard let id = RecordID.normalize(id) else { throw refusal }
        var sql: SQL = """
            UPDATE \(identifier: collection) SET \(identifier: field) = \(identifier: field) + \(delta), "version" = "version" + 1,
            "updated_at" = \(SQLValue.timestamp(.now())) WHERE "id" = \(SQLValue.uuid(id))
            """
        if let floor { sql = "\(sql) AND \(identifier: field) + \(delta) >= \(floor)" }
        statements.append((sql.query(store.dialect), refusal))
    }
}

/// A committed change, as an after-hook receives it: the CloudEvent of API.md §10.
public struct HookEvent: Sendable {
    /// The event id (stable across retries: deduplicate on it).
    public var id: String
    public var sequence: Int64
    /// `basalt.record.created` / `.updated` / `.deleted`.
    public var type: String
    public var action: RecordAction
    public var collection: String
    public var recordID: String
    public var time: Timestamp
    /// The record after the change (before it, for a delete), in the records API's rendering.
    public var record: JSONObject
    /// Which attempt this is (1 on the first).
    public var attempt: Int64
}
