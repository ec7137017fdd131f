import Foundation
public import BasaltCore
public import BasaltStorage
import Logging
import Synchronization

/// The outcome of a record command: what the edge turns into a response.
public struct RecordOutcome: Sendable {
    public var status: Int
    public var body: JSONValue?
    public var location: String?
    /// Strong ETag value (the record's version) without quotes.
    public var version: Int64?
    public init(status: Int, body: JSONValue?, location: String? = nil, version: Int64? = nil) {
        self.status = status
        self.body = body
        self.location = location
        self.version = version
    }
}

/// A page of a list.
public struct ListPage: Sendable {
    public var items: [JSONValue]
    public var nextCursor: String?
    public var total: Int64?
}

/// The query parameters of a list, as received.
public struct ListQuery: Sendable {
    public var filter: String?
    public var sort: String?
    public var limit: String?
    public var cursor: String?
    public var fields: String?
    public var expand: String?
    public var total: Bool
    public init(filter: String? = nil, sort: String? = nil, limit: String? = nil, cursor: String? = nil,
                fields: String? = nil, expand: String? = nil, total: Bool = false) {
        self.filter = filter
        self.sort = sort
        self.limit = limit
        self.cursor = cursor
        self.fields = fields
        self.expand = expand
        self.total = total
    }
}

/// Statements accumulated for one transaction, with what earlier operations of a batch changed,
/// so later operations read their own writes before anything is committed.
struct PendingWrite {
    var statements: [SQLStatement] = []
    var overlay: [String: SQLRow?] = [:]
    /// Rows inserted or deleted per table (planner statistics follow table size).
    var touched: [String: Int] = [:]
    var tag = 0
}

/// Records: list, read, create, replace, patch, delete, batch. Validates against the schema,
/// authorizes against the grants, and runs each write as one transaction.
public final class RecordService: Sendable {
    public let store: any Store
    let schemas: SchemaService
    let cursors: CursorCodec
    let logger: Logger
    let audit: AuditLog
    /// Signed-in users' records by id, read on every authenticated request: kept 2 s, and
    /// dropped at once when this process changes the user.
    let userCache = Mutex<[String: (JSONObject, Int64)]>([:])
    static let userCacheMillis: Int64 = 2_000

    public init(store: any Store, schemas: SchemaService, cursors: CursorCodec, logger: Logger) {
        self.store = store
        self.schemas = schemas
        self.cursors = cursors
        self.logger = logger
        self.audit = AuditLog(store: store)
    }

    // MARK: - Access

    /// 404 for an unknown collection, before a body is read.
    public func requireCollection(_ name: String) async throws -> CollectionSchema {
        do {
            return try schemas.current.requireTable(name).collection
        } catch {
            guard try await schemas.reloadIfChanged() else { throw error }
            return try schemas.current.requireTable(name).collection
        }
    }

    /// Whether responses for `action` may be cached as shared (grants are an unconditional `public`).
    public func schemaPublic(_ action: AccessAction, _ collection: String) -> Bool {
        schemas.current.isUnconditionallyPublic(action, on: collection)
    }

    func authValues(_ p: Principal) -> [String: FilterLiteral] {
        var v: [String: FilterLiteral] = ["id": p.id.flatMap(RecordID.normalize).map { .uuid($0) } ?? .null]
        if let user = p.user, let users = schemas.current.schema.collection(BuiltinCollections.usersName) {
            for f in users.fields { v[f.name] = Self.literal(user[f.name] ?? .null, f.type) }
        }
        return v
    }

    /// A stored JSON value as a filter literal of the field's type (`@auth.<field>`).
    static func literal(_ v: JSONValue, _ type: FieldType) -> FilterLiteral {
        switch v {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .string(let s):
            switch type {
            case .datetime: return Timestamp(rfc3339: s).map(FilterLiteral.timestamp) ?? .string(s)
            case .relation: return .uuid(s)
            default: return .string(s)
            }
        default: return .string(v.serialized())
        }
    }

    /// Non-admin writes to `users` may not set the fields the auth flows own (API.md §9).
    /// Registration (`.system`) supplies the email.
    static func isManaged(_ field: String, _ c: CollectionSchema, _ p: Principal) -> Bool {
        guard c.name == BuiltinCollections.usersName, !p.isAdmin, BuiltinCollections.managedUserFields.contains(field) else { return false }
        return !(p.kind == .system && field == "email")
    }

    static func normalizeUser(_ values: inout JSONObject, _ c: CollectionSchema) {
        guard c.name == BuiltinCollections.usersName, let e = values["email"]?.stringValue else { return }
        values["email"] = .string(BuiltinCollections.normalizeEmail(e))
    }

    func compiler(_ cs: CompiledSchema, _ p: Principal) -> FilterCompiler {
        FilterCompiler(schema: cs.schema, dialect: store.dialect, authValues: authValues(p))
    }

    /// 401 for anonymous callers, 403 for known ones (API.md §9).
    func deny(_ p: Principal) -> BasaltError {
        p.isAnonymous
            ? BasaltError(.unauthenticated, "Credentials are required for this action")
            : BasaltError(.forbidden, "No grant allows this action")
    }

    /// Predicates that restrict which rows `p` may see through `action`; throws when no grant matches.
    func rowPredicates(_ cs: CompiledSchema, _ action: AccessAction, _ c: String, _ p: Principal) throws(BasaltError) -> FilterExpr? {
        switch cs.access(action, on: c, for: p) {
        case .all: return nil
        case .rows(let ps): return ps.count == 1 ? ps[0] : .or(ps)
        case .denied: throw deny(p)
        }
    }

    /// Whether the grants for `action` admit this in-memory record.
    func admits(_ cs: CompiledSchema, _ action: AccessAction, _ c: String, _ p: Principal, record: JSONObject, new: JSONObject? = nil) -> Bool? {
        switch cs.access(action, on: c, for: p) {
        case .all: return true
        case .denied: return nil
        case .rows(let ps):
            let ev = FilterEvaluator(record: record, new: new, auth: authValues(p))
            return ps.contains { ev.evaluate($0) }
        }
    }

    // MARK: - Rendering

    func render(_ row: SQLRow, _ table: RecordTable, fields: Set<String>? = nil) -> JSONObject {
        var o = JSONObject(minimumCapacity: row.count + 1)
        for (i, name) in table.columns.enumerated() {
            if let fields, name != "id", !fields.contains(name) { continue }
            o.append(name, row[i].json)
        }
        return o
    }

    // MARK: - Read

    /// Runs `body`; when the database rejects SQL built from an outdated schema (another process
    /// changed it a moment ago), reloads the schema and runs `body` once more.
    func withCurrentSchema<T>(_ collection: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch StoreError.unavailable(let u) {
            throw BasaltError(.unavailable, "The database is unavailable; retry shortly", headers: [("Retry-After", "1")],
                              underlying: StoreError.unavailable(underlying: u))
        } catch let e as StoreError {
            guard case .other = e, try await schemas.reloadIfChanged() else { throw e }
            return try await body()
        } catch let e as BasaltError where e.code == .notFound && schemas.current.tables[collection] == nil {
            // A collection created elsewhere is not in memory yet. (A missing record is no reason
            // to look: that 404 stands without a database round trip.)
            guard try await schemas.reloadIfChanged() else { throw e }
            return try await body()
        }
    }

    public func get(_ collection: String, id rawID: String, principal p: Principal) async throws -> RecordOutcome {
        let out = try await withCurrentSchema(collection) { try await getNow(collection, id: rawID, principal: p) }
        try await auditRead(p, "record.view", collection, rawID)
        return out
    }

    /// Admin reads bypass the grants: each one is logged after it succeeded.
    func auditRead(_ p: Principal, _ action: String, _ collection: String, _ id: String?) async throws {
        guard p.isAdmin else { return }
        try await audit.record(AuditLog.entry(p, action, collection: collection, recordID: id))
    }

    func getNow(_ collection: String, id rawID: String, principal p: Principal) async throws -> RecordOutcome {
        let cs = schemas.current
        let table = try cs.requireTable(collection)
        let pred = try rowPredicates(cs, .view, collection, p)
        guard let id = RecordID.normalize(rawID), let row = try await fetchVisible(table, id, pred, cs, p) else {
            throw BasaltError.notFound("The record does not exist")
        }
        return RecordOutcome(status: 200, body: .object(render(row, table)), version: row[3].int)
    }

    func fetchVisible(_ table: RecordTable, _ id: String, _ pred: FilterExpr?, _ cs: CompiledSchema, _ p: Principal) async throws -> SQLRow? {
        guard let pred else { return try await store.fetchOne(table.selectByID(id), types: table.types) }
        let q = table.selectByIDs([id], visibility: pred, compiler: compiler(cs, p))
        return try await store.fetchOne(q, types: table.types)
    }

    public func list(_ collection: String, query: ListQuery, principal p: Principal) async throws -> ListPage {
        let page = try await withCurrentSchema(collection) { try await listNow(collection, query: query, principal: p) }
        try await auditRead(p, "record.list", collection, nil)
        return page
    }

    func listNow(_ collection: String, query: ListQuery, principal p: Principal) async throws -> ListPage {
        let cs = schemas.current
        let table = try cs.requireTable(collection)
        let c = table.collection
        let access = try rowPredicates(cs, .list, collection, p)
        var predicates: [FilterExpr] = []
        if let f = query.filter, !f.isEmpty {
            do {
                predicates.append(try FilterChecker.check(f, collection: c, schema: cs.schema))
            } catch {
                throw error.basaltError
            }
        }
        if let access { predicates.append(access) }

        var limit = 20
        if let l = query.limit {
            guard let n = Int(l), (1...200).contains(n) else { throw BasaltError.badRequest("limit must be an integer from 1 to 200") }
            limit = n
        }
        let sort = try parseSort(query.sort, c)
        let fields = try parseFields(query.fields, c)
        let expand = try parseExpand(query.expand, c, cs)
        let hash = CursorCodec.queryHash([collection, query.filter ?? "", query.sort ?? "", p.callerKey, String(cs.version)])
        var after: [SQLValue]?
        if let cur = query.cursor, !cur.isEmpty {
            after = try cursors.decode(cur, queryHash: hash, types: sort.map(\.type))
        }
        let comp = compiler(cs, p)
        let q = table.list(predicates: predicates, compiler: comp, sort: sort, after: after, limit: limit + 1)
        var rows = try await store.fetch(q, types: table.types)
        var next: String?
        if rows.count > limit {
            rows.removeLast()
            let last = rows[rows.count - 1]
            next = cursors.encode(values: sort.map { last[table.columnIndex($0.field)!] }, queryHash: hash)
        }
        var items = rows.map { render($0, table, fields: fields) }
        if !expand.isEmpty { try await applyExpand(expand, to: &items, rows: rows, table: table, cs: cs, p: p) }
        var total: Int64?
        if query.total {
            total = try await store.fetchOne(table.count(predicates: predicates, compiler: comp), types: [.int])?.first?.int ?? 0
        }
        return ListPage(items: items.map { .object($0) }, nextCursor: next, total: total)
    }

    func parseSort(_ text: String?, _ c: CollectionSchema) throws(BasaltError) -> [RecordTable.SortKey] {
        var keys: [RecordTable.SortKey] = []
        let spec = (text?.isEmpty ?? true) ? "-created_at" : text!
        for raw in spec.split(separator: ",", omittingEmptySubsequences: false) {
            var name = Substring(raw)
            var desc = false
            if name.hasPrefix("-") {
                desc = true
                name = name.dropFirst()
            } else if name.hasPrefix("+") {
                name = name.dropFirst()
            }
            let n = String(name)
            if let sys = SystemField(rawValue: n) {
                keys.append(.init(field: n, descending: desc, nullable: false, type: [.uuid, .timestamp, .timestamp, .int][SystemField.allCases.firstIndex(of: sys)!]))
            } else if let f = c.field(n), f.type != .json {
                keys.append(.init(field: n, descending: desc, nullable: !f.required, type: SQLColumnType(f.type)))
            } else {
                throw BasaltError.badRequest("sort: \(n.isEmpty ? "an empty field name" : "\(n) is not a sortable field")")
            }
            // A repeated field adds nothing to the order: the first occurrence decides.
            if keys.dropLast().contains(where: { $0.field == n }) { keys.removeLast() }
        }
        let lastDesc = keys.last?.descending ?? false
        if let i = keys.firstIndex(where: { $0.field == "id" }) {
            keys = Array(keys[...i])  // id is unique: nothing after it matters
        } else {
            keys.append(.init(field: "id", descending: lastDesc, nullable: false, type: .uuid))
        }
        return keys
    }

    func parseFields(_ text: String?, _ c: CollectionSchema) throws(BasaltError) -> Set<String>? {
        guard let text, !text.isEmpty else { return nil }
        var out: Set<String> = []
        for n in text.split(separator: ",").map(String.init) {
            guard SystemField(rawValue: n) != nil || c.field(n) != nil else {
                throw BasaltError.badRequest("fields: \(n) is not a field of \(c.name)")
            }
            out.insert(n)
        }
        return out
    }

    /// `expand=author,post.author` → a tree of relation fields, at most two levels.
    struct ExpandNode { var field: String; var target: String; var children: [ExpandNode] }

    func parseExpand(_ text: String?, _ c: CollectionSchema, _ cs: CompiledSchema) throws(BasaltError) -> [ExpandNode] {
        guard let text, !text.isEmpty else { return [] }
        var roots: [ExpandNode] = []
        for path in text.split(separator: ",").map(String.init) {
            let segs = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard (1...2).contains(segs.count) else { throw BasaltError.badRequest("expand: \(path) is deeper than 2 levels") }
            guard let f = c.field(segs[0]), f.type == .relation, let t = f.target else {
                throw BasaltError.badRequest("expand: \(segs[0]) is not a relation of \(c.name)")
            }
            var idx = roots.firstIndex { $0.field == segs[0] }
            if idx == nil {
                roots.append(ExpandNode(field: segs[0], target: t, children: []))
                idx = roots.count - 1
            }
            if segs.count == 2 {
                guard let tc = cs.schema.collection(t), let f2 = tc.field(segs[1]), f2.type == .relation, let t2 = f2.target else {
                    throw BasaltError.badRequest("expand: \(segs[1]) is not a relation of \(t)")
                }
                if !roots[idx!].children.contains(where: { $0.field == segs[1] }) {
                    roots[idx!].children.append(ExpandNode(field: segs[1], target: t2, children: []))
                }
            }
        }
        return roots
    }

    /// One query per relation level, never one per record; targets the caller may not view are left out.
    func applyExpand(_ nodes: [ExpandNode], to items: inout [JSONObject], rows: [SQLRow], table: RecordTable, cs: CompiledSchema, p: Principal) async throws {
        for node in nodes {
            guard let col = table.columnIndex(node.field), let tt = cs.tables[node.target] else { continue }
            let ids = Array(Set(rows.compactMap { $0[col].text }))
            if ids.isEmpty { continue }
            let pred: FilterExpr?
            switch cs.access(.view, on: node.target, for: p) {
            case .all: pred = nil
            case .rows(let ps): pred = ps.count == 1 ? ps[0] : .or(ps)
            case .denied: continue
            }
            let targetRows = try await store.fetch(tt.selectByIDs(ids, visibility: pred, compiler: compiler(cs, p)), types: tt.types)
            var rendered = targetRows.map { render($0, tt) }
            if !node.children.isEmpty {
                try await applyExpand(node.children, to: &rendered, rows: targetRows, table: tt, cs: cs, p: p)
            }
            var byID: [String: JSONObject] = [:]
            for r in rendered { if let id = r["id"]?.stringValue { byID[id] = r } }
            for i in items.indices {
                guard let id = rows[i][col].text, let target = byID[id] else { continue }
                var ex = items[i]["expand"]?.objectValue ?? JSONObject()
                ex[node.field] = .object(target)
                items[i]["expand"] = .object(ex)
            }
        }
    }

    // MARK: - Writes

    /// A write command, as carried by a request or a batch operation.
    public enum Command: Sendable {
        case create(collection: String, body: JSONValue)
        case replace(collection: String, id: String, body: JSONValue, ifMatch: String?)
        case patch(collection: String, id: String, body: JSONValue, ifMatch: String?)
        case delete(collection: String, id: String, ifMatch: String?)
    }

    /// Runs one command as its own transaction. `finish` may add statements (an idempotency
    /// record) that commit atomically with the write.
    public func execute(_ command: Command, principal p: Principal,
                        finish: (@Sendable (RecordOutcome) -> [SQLStatement])? = nil) async throws -> RecordOutcome {
        try await withCurrentSchema(command.collection) { try await executeNow(command, principal: p, finish: finish) }
    }

    func executeNow(_ command: Command, principal p: Principal,
                    finish: (@Sendable (RecordOutcome) -> [SQLStatement])?) async throws -> RecordOutcome {
        // Optimistic concurrency: a write that lost a race without If-Match is simply redone.
        var attempt = 0
        while true {
            attempt += 1
            let cs = schemas.current
            var pending = PendingWrite()
            let outcome = try await prepare(command, cs: cs, p: p, pending: &pending)
            if let finish { pending.statements += finish(outcome) }
            do {
                _ = try await store.write(pending.statements)
                noteWrites(pending)
                return outcome
            } catch StoreError.expectationFailed where attempt < 5 && !command.hasIfMatch {
                continue
            } catch {
                throw mapStoreError(error, cs: cs, command: command)
            }
        }
    }

    public func batch(_ body: JSONValue, principal p: Principal) async throws -> RecordOutcome {
        guard case .object(let o) = body, case .array(let ops)? = o["operations"] else {
            throw BasaltError.validation([FieldError(field: "/operations", code: .required, message: "operations is a list of 1 to 100 operations")])
        }
        guard (1...100).contains(ops.count) else {
            throw BasaltError.validation([FieldError(field: "/operations", code: ops.isEmpty ? .min : .max, message: "a batch has 1 to 100 operations")])
        }
        var commands: [Command] = []
        for (i, op) in ops.enumerated() {
            do {
                commands.append(try Self.parseOperation(op))
            } catch {
                throw Self.tagged(error, i)
            }
        }
        var attempt = 0
        while true {
            attempt += 1
            let cs = schemas.current
            var pending = PendingWrite()
            var results: [JSONValue] = []
            for (i, cmd) in commands.enumerated() {
                pending.tag = i
                do {
                    let out = try await prepare(cmd, cs: cs, p: p, pending: &pending)
                    var r = JSONObject([("status", .int(Int64(out.status)))])
                    if let b = out.body { r.append("body", b) }
                    results.append(.object(r))
                } catch {
                    throw Self.tagged(error, i)
                }
            }
            do {
                _ = try await store.write(pending.statements)
                noteWrites(pending)
                return RecordOutcome(status: 200, body: .object(JSONObject([("results", .array(results))])))
            } catch StoreError.expectationFailed(_, let tag) where attempt < 5 && !commands[tag].hasIfMatch {
                continue
            } catch {
                let tag = Self.tag(of: error) ?? 0
                throw Self.tagged(mapStoreError(error, cs: cs, command: commands[tag]), tag)
            }
        }
    }

    static func parseOperation(_ op: JSONValue) throws(BasaltError) -> Command {
        guard case .object(let o) = op else { throw BasaltError.badRequest("an operation is an object") }
        guard let method = o["method"]?.stringValue, let path = o["path"]?.stringValue else {
            throw BasaltError.validation([FieldError(field: "/method", code: .required, message: "an operation has a method and a path")])
        }
        for (k, _) in o where !["method", "path", "body", "if_match"].contains(k) {
            throw BasaltError.validation([FieldError(field: "/" + k, code: .unknownField, message: "unknown member \(k)")])
        }
        let segs = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        // "/v1/{collection}" or "/v1/{collection}/{id}"
        guard segs.count >= 3, segs[0].isEmpty, segs[1] == "v1", segs.count <= 4 else {
            throw BasaltError.badRequest("operation path must be /v1/{collection} or /v1/{collection}/{id}")
        }
        let collection = segs[2]
        let id = segs.count == 4 ? segs[3] : nil
        let body = o["body"] ?? .object(JSONObject())
        let ifMatch = o["if_match"]?.stringValue
        switch (method.uppercased(), id) {
        case ("POST", nil): return .create(collection: collection, body: body)
        case ("PUT", let id?): return .replace(collection: collection, id: id, body: body, ifMatch: ifMatch)
        case ("PATCH", let id?): return .patch(collection: collection, id: id, body: body, ifMatch: ifMatch)
        case ("DELETE", let id?): return .delete(collection: collection, id: id, ifMatch: ifMatch)
        default: throw BasaltError(.methodNotAllowed, "\(method) \(path) is not a batch operation")
        }
    }

    static func tagged(_ error: any Error, _ index: Int) -> any Error {
        guard var e = error as? BasaltError else { return error }
        e.extensions.append(("operation_index", .int(Int64(index))))
        return e
    }

    static func tag(of error: any Error) -> Int? {
        switch error as? StoreError {
        case .uniqueViolation(_, _, let tag, _), .foreignKeyViolation(let tag, _), .expectationFailed(_, let tag): tag
        default: nil
        }
    }

    /// The current record of user `id` (nil when there is none); `fresh` skips the cache.
    public func currentUser(_ id: String, fresh: Bool = false) async throws -> JSONObject? {
        guard let nid = RecordID.normalize(id) else { return nil }
        let now = Timestamp.now().millisecondsSinceEpoch
        if !fresh, let hit = userCache.withLock({ $0[nid] }), now - hit.1 < Self.userCacheMillis { return hit.0 }
        guard let table = schemas.current.tables[BuiltinCollections.usersName],
            let row = try await store.fetchOne(table.selectByID(nid), types: table.types)
        else {
            forgetUser(nid)
            return nil
        }
        let user = render(row, table)
        userCache.withLock {
            if $0.count > 50_000 { $0 = [:] }
            $0[nid] = (user, now)
        }
        return user
    }

    public func forgetUser(_ id: String) {
        _ = userCache.withLock { $0.removeValue(forKey: id) }
    }

    func noteWrites(_ pending: PendingWrite) {
        for k in pending.overlay.keys where k.hasPrefix(BuiltinCollections.usersName + "/") {
            forgetUser(String(k.dropFirst(BuiltinCollections.usersName.count + 1)))
        }
        guard let tracking = store as? any StatisticsTracking else { return }
        for (table, n) in pending.touched { tracking.noteWrites(table: table, count: n) }
    }

    func mapStoreError(_ error: any Error, cs: CompiledSchema, command: Command) -> any Error {
        guard let se = error as? StoreError else { return error }
        switch se {
        case .uniqueViolation(let table, let columns, _, let underlying):
            var fields = columns
            if let first = columns.first, let ix = cs.uniqueIndexes[first] { fields = ix.fields }
            if columns.first?.hasSuffix("_pkey") == true { fields = ["id"] }
            _ = table
            let f = fields.first ?? "id"
            let msg = f == "id" ? "A record with this id already exists" : "\(fields.joined(separator: ", ")) must be unique; another record has this value"
            return BasaltError(.conflict, msg, fieldErrors: [FieldError(field: FieldError.pointer(f), code: .unique, message: msg)],
                               underlying: StoreError.other(underlying: underlying))
        case .foreignKeyViolation(_, let underlying):
            if case .delete = command {
                return BasaltError(.conflict, "The record is still referenced by another record", underlying: StoreError.other(underlying: underlying))
            }
            return BasaltError.validation([FieldError(field: "", code: .notFound, message: "a related record does not exist")])
        case .expectationFailed:
            return BasaltError(.preconditionFailed, "The record changed since it was read")
        case .unavailable(let u):
            return BasaltError(.unavailable, "The database is unavailable", headers: [("Retry-After", "1")], underlying: StoreError.other(underlying: u))
        case .other:
            return se
        }
    }

    func key(_ c: String, _ id: String) -> String { c + "/" + id }

    func load(_ table: RecordTable, _ id: String, _ pending: PendingWrite) async throws -> SQLRow? {
        if let o = pending.overlay[key(table.collection.name, id)] { return o }
        return try await store.fetchOne(table.selectByID(id), types: table.types)
    }

    /// Whether the caller may view an existing row (SQL for stored rows, memory for batch-local ones).
    func canView(_ row: SQLRow, _ table: RecordTable, _ cs: CompiledSchema, _ p: Principal, _ pending: PendingWrite) async throws -> Bool {
        switch cs.access(.view, on: table.collection.name, for: p) {
        case .all: return true
        case .denied: return false
        case .rows(let ps):
            let id = row[0].text ?? ""
            if pending.overlay[key(table.collection.name, id)] != nil {
                return admits(cs, .view, table.collection.name, p, record: render(row, table)) ?? false
            }
            let q = table.selectByIDs([id], visibility: ps.count == 1 ? ps[0] : .or(ps), compiler: compiler(cs, p))
            return try await store.fetchOne(q, types: table.types) != nil
        }
    }

    func prepare(_ command: Command, cs: CompiledSchema, p: Principal, pending: inout PendingWrite) async throws -> RecordOutcome {
        let outcome: RecordOutcome
        let action: String
        var id: String?
        switch command {
        case .create(let c, let body):
            outcome = try await prepareCreate(c, body, cs, p, &pending)
            action = "record.create"
            id = outcome.location.map { String($0.split(separator: "/").last ?? "") }
        case .replace(let c, let i, let body, let ifMatch):
            outcome = try await prepareUpdate(c, i, body, ifMatch, merge: false, cs, p, &pending)
            (action, id) = ("record.replace", i)
        case .patch(let c, let i, let body, let ifMatch):
            outcome = try await prepareUpdate(c, i, body, ifMatch, merge: true, cs, p, &pending)
            (action, id) = ("record.update", i)
        case .delete(let c, let i, let ifMatch):
            outcome = try await prepareDelete(c, i, ifMatch, cs, p, &pending)
            (action, id) = ("record.delete", i)
        }
        if p.isAdmin {
            pending.statements.append(audit.statement(AuditLog.entry(p, action, collection: command.collection, recordID: id)))
        }
        return outcome
    }

    func prepareCreate(_ c: String, _ body: JSONValue, _ cs: CompiledSchema, _ p: Principal, _ pending: inout PendingWrite) async throws -> RecordOutcome {
        let table = try cs.requireTable(c)
        guard case .denied = cs.access(.create, on: c, for: p) else {
            return try await doCreate(table, body, cs, p, &pending)
        }
        throw deny(p)
    }

    func doCreate(_ table: RecordTable, _ body: JSONValue, _ cs: CompiledSchema, _ p: Principal, _ pending: inout PendingWrite) async throws -> RecordOutcome {
        let c = table.collection
        guard case .object(let obj) = body else { throw BasaltError.badRequest("The body must be a JSON object") }
        var errors: [FieldError] = []
        var id = RecordID.make()
        for (k, v) in obj {
            if k == "id" {
                if let s = v.stringValue, let n = RecordID.normalize(s) { id = n } else {
                    errors.append(FieldError(field: "/id", code: .format, message: "id must be a UUID"))
                }
            } else if SystemField(rawValue: k) != nil {
                errors.append(FieldError(field: FieldError.pointer(k), code: .readOnly, message: "\(k) is set by the server"))
            } else if Self.isManaged(k, c, p) {
                errors.append(FieldError(field: FieldError.pointer(k), code: .readOnly, message: "\(k) is managed by the auth flows and admins"))
            } else if c.field(k) == nil {
                errors.append(FieldError(field: FieldError.pointer(k), code: .unknownField, message: "\(k) is not a field of \(c.name)"))
            }
        }
        var values = JSONObject(minimumCapacity: c.fields.count)
        for f in c.fields {
            let v = (Self.isManaged(f.name, c, p) ? nil : obj[f.name]) ?? f.defaultValue ?? .null
            switch FieldValidator.check(v, field: f, pointer: FieldError.pointer(f.name)) {
            case .success(let nv): values.append(f.name, nv)
            case .failure(let e): errors.append(e)
            }
        }
        if errors.isEmpty { errors += try await checkRelations(c, values, cs, pending) }
        if !errors.isEmpty { throw BasaltError.validation(errors) }
        Self.normalizeUser(&values, c)
        let now = Timestamp.now()
        var record = JSONObject(minimumCapacity: c.fields.count + 4)
        record.append("id", .string(id))
        record.append("created_at", .string(now.rfc3339))
        record.append("updated_at", .string(now.rfc3339))
        record.append("version", .int(1))
        record.members += values.members
        guard admits(cs, .create, c.name, p, record: record, new: record) == true else {
            throw BasaltError(.forbidden, "No grant allows creating this record")
        }
        var cols: [(String, SQLValue)] = [("id", .uuid(id)), ("created_at", .timestamp(now)), ("updated_at", .timestamp(now)), ("version", .int(1))]
        for f in c.fields { cols.append((f.name, SQLValue(json: values[f.name] ?? .null, type: f.type))) }
        pending.statements.append(SQLStatement(table.insert(cols), returning: [], expect: .one, tag: pending.tag))
        pending.overlay[key(c.name, id)] = .some(cols.map(\.1))
        pending.touched[c.name, default: 0] += 1
        let visible = admits(cs, .view, c.name, p, record: record) == true
        return RecordOutcome(status: 201, body: visible ? .object(record) : .object(JSONObject([("id", .string(id))])),
                             location: "/v1/\(c.name)/\(id)", version: 1)
    }

    /// Relation targets must exist (in the database or earlier in the same batch).
    func checkRelations(_ c: CollectionSchema, _ values: JSONObject, _ cs: CompiledSchema, _ pending: PendingWrite) async throws -> [FieldError] {
        var errors: [FieldError] = []
        for f in c.fields where f.type == .relation {
            guard let id = values[f.name]?.stringValue, let t = f.target, let tt = cs.tables[t] else { continue }
            if let o = pending.overlay[key(t, id)] {
                if o == nil { errors.append(FieldError(field: FieldError.pointer(f.name), code: .notFound, message: "\(f.name): no \(t) record has id \(id)")) }
                continue
            }
            if try await store.fetchOne(tt.exists(id), types: [.int]) == nil {
                errors.append(FieldError(field: FieldError.pointer(f.name), code: .notFound, message: "\(f.name): no \(t) record has id \(id)"))
            }
        }
        return errors
    }

    func checkIfMatch(_ ifMatch: String?, version: Int64) throws(BasaltError) {
        guard let ifMatch else { return }
        let tags = ifMatch.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        if tags.contains("*") { return }
        // Strong comparison (RFC 9110 §13.1.1): weak tags never match.
        if !tags.contains("\"\(version)\"") {
            throw BasaltError(.preconditionFailed, "If-Match does not match the record's current version \"\(version)\"")
        }
    }

    func prepareUpdate(_ c: String, _ rawID: String, _ body: JSONValue, _ ifMatch: String?, merge: Bool, _ cs: CompiledSchema, _ p: Principal, _ pending: inout PendingWrite) async throws -> RecordOutcome {
        let table = try cs.requireTable(c)
        let col = table.collection
        let updateAccess = cs.access(.update, on: c, for: p)
        // No grant's `who` matches: 401/403 (API.md §9). A matching `who` on a record the caller
        // cannot view is the 404 below (you cannot change what you cannot see).
        if case .denied = updateAccess { throw deny(p) }
        guard let id = RecordID.normalize(rawID), let row = try await load(table, id, pending),
            try await canView(row, table, cs, p, pending)
        else { throw BasaltError.notFound("The record does not exist") }
        let version = row[3].int ?? 0
        try checkIfMatch(ifMatch, version: version)
        guard case .object(let obj) = body else { throw BasaltError.badRequest("The body must be a JSON object") }
        let current = render(row, table)
        var errors: [FieldError] = []
        for (k, v) in obj {
            if SystemField(rawValue: k) != nil {
                // A GET-modify-PUT round trip may repeat system fields unchanged.
                if !Self.sameSystemValue(k, v, current[k] ?? .null) {
                    errors.append(FieldError(field: FieldError.pointer(k), code: .readOnly, message: "\(k) is read-only"))
                }
            } else if Self.isManaged(k, col, p) {
                // A GET-modify-PUT round trip may repeat them unchanged.
                if v != (current[k] ?? .null) {
                    errors.append(FieldError(field: FieldError.pointer(k), code: .readOnly, message: "\(k) is managed by the auth flows and admins"))
                }
            } else if col.field(k) == nil {
                errors.append(FieldError(field: FieldError.pointer(k), code: .unknownField, message: "\(k) is not a field of \(c)"))
            }
        }
        var values = JSONObject(minimumCapacity: col.fields.count)
        var changed: [FieldSchema] = []
        for f in col.fields {
            let given = obj[f.name]
            let candidate: JSONValue
            if merge {
                guard let given else {
                    values.append(f.name, current[f.name] ?? .null)
                    continue
                }
                candidate = f.type == .json ? Self.mergePatch(current[f.name] ?? .null, given) : given
            } else if Self.isManaged(f.name, col, p) {
                candidate = current[f.name] ?? .null
            } else {
                candidate = given ?? f.defaultValue ?? .null
            }
            switch FieldValidator.check(candidate, field: f, pointer: FieldError.pointer(f.name)) {
            case .success(let nv):
                values.append(f.name, nv)
                changed.append(f)
            case .failure(let e): errors.append(e)
            }
        }
        if errors.isEmpty { errors += try await checkRelations(col, values, cs, pending) }
        if !errors.isEmpty { throw BasaltError.validation(errors) }
        Self.normalizeUser(&values, col)
        let now = Timestamp.now()
        var record = JSONObject(minimumCapacity: col.fields.count + 4)
        record.append("id", .string(id))
        record.append("created_at", current["created_at"] ?? .null)
        record.append("updated_at", .string(now.rfc3339))
        record.append("version", .int(version + 1))
        record.members += values.members
        if case .rows(let ps) = updateAccess {
            let ev = FilterEvaluator(record: current, new: record, auth: authValues(p))
            // Rules on stored fields read the record before the change; `@new` the record after it.
            let ok = ps.contains { ev.evaluate($0) }
            if !ok { throw BasaltError(.forbidden, "No grant allows updating this record") }
        }
        let sets = changed.map { ($0.name, SQLValue(json: values[$0.name] ?? .null, type: $0.type)) }
        pending.statements.append(SQLStatement(table.update(id: id, expectedVersion: version, values: sets, now: now), returning: [], expect: .one, tag: pending.tag))
        var newRow = row
        newRow[2] = .timestamp(now)
        newRow[3] = .int(version + 1)
        for (name, v) in sets { newRow[table.columnIndex(name)!] = v }
        pending.overlay[key(c, id)] = .some(newRow)  // updates change no row counts: not `touched`
        return RecordOutcome(status: 200, body: .object(record), version: version + 1)
    }

    static func sameSystemValue(_ name: String, _ given: JSONValue, _ current: JSONValue) -> Bool {
        switch name {
        case "id": return given.stringValue.flatMap(RecordID.normalize) == current.stringValue
        case "version": return given.integerValue != nil && given.integerValue == current.integerValue
        default:
            guard let a = given.stringValue.flatMap(Timestamp.init(rfc3339:)), let b = current.stringValue.flatMap(Timestamp.init(rfc3339:)) else { return false }
            return a == b
        }
    }

    /// RFC 7396 JSON Merge Patch.
    public static func mergePatch(_ target: JSONValue, _ patch: JSONValue) -> JSONValue {
        guard case .object(let p) = patch else { return patch }
        var t = target.objectValue ?? JSONObject()
        for (k, v) in p {
            if v.isNull { t[k] = nil } else { t[k] = mergePatch(t[k] ?? .null, v) }
        }
        return .object(t)
    }

    func prepareDelete(_ c: String, _ rawID: String, _ ifMatch: String?, _ cs: CompiledSchema, _ p: Principal, _ pending: inout PendingWrite) async throws -> RecordOutcome {
        let table = try cs.requireTable(c)
        let deleteAccess = cs.access(.delete, on: c, for: p)
        if case .denied = deleteAccess { throw deny(p) }
        guard let id = RecordID.normalize(rawID), let row = try await load(table, id, pending),
            try await canView(row, table, cs, p, pending)
        else { throw BasaltError.notFound("The record does not exist") }
        let version = row[3].int ?? 0
        try checkIfMatch(ifMatch, version: version)
        if case .rows(let ps) = deleteAccess {
            let ev = FilterEvaluator(record: render(row, table), auth: authValues(p))
            if !ps.contains(where: { ev.evaluate($0) }) { throw BasaltError(.forbidden, "No grant allows deleting this record") }
        }
        let now = Timestamp.now()
        for ref in cs.referrers[c] ?? [] {
            guard let rt = cs.tables[ref.collection] else { continue }
            switch ref.onDelete {
            case .restrict:
                if try await store.fetchOne(rt.firstReferencing(field: ref.field, id: id), types: [.int]) != nil {
                    throw BasaltError(.conflict, "The record is still referenced by \(ref.collection).\(ref.field)",
                                      fieldErrors: [FieldError(field: "/\(ref.collection)/\(ref.field)", code: .invalid,
                                                               message: "\(ref.collection).\(ref.field) references this record")])
                }
            case .setNull:
                pending.statements.append(SQLStatement(rt.nullify(field: ref.field, pointingAt: id, now: now), tag: pending.tag))
            case .cascade:
                break  // the foreign key's ON DELETE CASCADE
            }
        }
        pending.statements.append(SQLStatement(table.delete(id: id, expectedVersion: version), returning: [.uuid], expect: .one, tag: pending.tag))
        if c == BuiltinCollections.usersName {
            pending.statements += IdentityTables.forgetUser(id, dialect: store.dialect).map { SQLStatement($0, tag: pending.tag) }
        }
        pending.overlay[key(c, id)] = .some(nil)
        pending.touched[c, default: 0] += 1
        return RecordOutcome(status: 204, body: nil)
    }
}

extension RecordService.Command {
    var collection: String {
        switch self {
        case .create(let c, _), .replace(let c, _, _, _), .patch(let c, _, _, _), .delete(let c, _, _): c
        }
    }

    var hasIfMatch: Bool {
        switch self {
        case .create: false
        case .replace(_, _, _, let m), .patch(_, _, _, let m), .delete(_, _, let m): m != nil
        }
    }
}
