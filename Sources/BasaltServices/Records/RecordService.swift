public import BasaltCore
public import BasaltStorage
public import BasaltTelemetry
import Foundation
public import Logging

/// Records: list, read, create, replace, patch, delete, batch (API.md §2–7, §9).
///
/// Each call reads a `RequestScope` once (schema version, caller, `@auth` values), plans — a
/// `ListPlanner` for lists, a `WritePlanner` for writes — and executes: one query, or one
/// transaction whose guard statements carry the access rules.
public final class RecordService: Sendable {
    public let store: any Store
    let schemas: SchemaService
    let cursors: CursorCodec
    let logger: Logger
    let audit: AuditLog
    /// Signed-in users' records, read on every authenticated request.
    public let users: UserDirectory
    let hooks: RecordHooks
    let metrics: Metrics?
    /// List queries by shape, for the performance advisors.
    public let observations = QueryObservations()

    public init(
        store: any Store,
        schemas: SchemaService,
        cursors: CursorCodec,
        hooks: RecordHooks = RecordHooks(),
        metrics: Metrics? = nil,
        logger: Logger
    ) {
        self.store = store
        self.metrics = metrics
        self.hooks = hooks
        self.schemas = schemas
        self.cursors = cursors
        self.logger = logger
        self.audit = AuditLog(store: store)
        self.users = UserDirectory(store: store, schemas: schemas)
    }

    func scope(_ p: Principal) -> RequestScope {
        RequestScope(schema: schemas.current, principal: p, dialect: store.dialect)
    }

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

    static func render(_ row: SQLRow, _ table: RecordTable, fields: Set<String>? = nil) -> JSONObject {
        var o = JSONObject(minimumCapacity: row.count + 1)
        for (i, name) in table.columns.enumerated() {
            if let fields, name != "id", !fields.contains(name) { continue }
            o.append(name, row[i].json)
        }
        return o
    }

    /// Runs `body`; when the database rejects SQL built from an outdated schema (another process
    /// changed it a moment ago), reloads the schema and runs `body` once more.
    func withCurrentSchema<T>(_ collection: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
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

    /// Admin reads bypass the grants: each one is logged after it succeeded.
    func auditRead(_ p: Principal, _ action: String, _ collection: String, _ id: String?) async throws {
        guard p.isAdmin else { return }
        try await audit.record(AuditLog.entry(p, action, collection: collection, recordID: id))
    }

    // MARK: - Reads

    /// One record the caller may view, else `404`.
    public func get(_ collection: String, id rawID: String, principal p: Principal) async throws -> JSONObject {
        let record = try await withCurrentSchema(collection) { () async throws -> JSONObject in
            let scope = scope(p)
            let table = try scope.schema.requireTable(collection)
            let visible = try scope.rows(.view, on: collection)
            guard let id = RecordID.normalize(rawID) else { throw BasaltError.notFound("The record does not exist") }
            let query = visible.map { table.selectByIDs([id], where: $0) } ?? table.selectByID(id)
            guard let row = try await store.fetchOne(query, types: table.types) else { throw BasaltError.notFound("The record does not exist") }
            return Self.render(row, table)
        }
        try await auditRead(p, "record.view", collection, rawID)
        return record
    }

    public func list(_ collection: String, query: ListQuery, principal p: Principal) async throws -> ListPage {
        let page = try await withCurrentSchema(collection) { () async throws -> ListPage in
            let scope = scope(p)
            let plan = try ListPlanner(scope: scope, cursors: cursors).plan(collection, query)
            let table = plan.table
            let started = ContinuousClock.now
            var rows = try await store.fetch(plan.page, types: table.types)
            var next: String?
            if rows.count > plan.limit {
                rows.removeLast()
                let last = rows[rows.count - 1]
                next = cursors.encode(values: plan.sort.map { last[table.columnIndex($0.field)!] }, queryHash: plan.cursorHash)
            }
            var items = rows.map { Self.render($0, table, fields: plan.fields) }
            if !plan.expand.isEmpty { try await expand(plan.expand, into: &items, rows: rows, table: table, scope: scope) }
            var total: Int64?
            if let count = plan.count { total = try await store.fetchOne(count, types: [.int])?.first?.int ?? 0 }
            let elapsed = (ContinuousClock.now - started).components
            observations.record(
                collection: collection,
                filter: plan.filter,
                sort: plan.sort.map { ($0.descending ? "-" : "") + $0.field },
                total: plan.count != nil,
                query: plan.page,
                milliseconds: Double(elapsed.seconds) * 1000 + Double(elapsed.attoseconds) / 1e15
            )
            return ListPage(items: items.map { .object($0) }, nextCursor: next, total: total)
        }
        try await auditRead(p, "record.list", collection, nil)
        return page
    }

    /// One query per relation level, never one per record; targets the caller may not view are left out.
    func expand(_ nodes: [ExpandNode], into items: inout [JSONObject], rows: [SQLRow], table: RecordTable, scope: RequestScope) async throws {
        for node in nodes {
            guard let col = table.columnIndex(node.field), let tt = scope.schema.tables[node.target] else { continue }
            let ids = Array(Set(rows.compactMap { $0[col].text }))
            if ids.isEmpty { continue }
            let visible: SQLCondition?
            switch scope.access(.view, on: node.target) {
            case .all: visible = nil
            case .rows(let ps): visible = scope.condition(ps)
            case .denied: continue
            }
            let targetRows = try await store.fetch(tt.selectByIDs(ids, where: visible), types: tt.types)
            var rendered = targetRows.map { Self.render($0, tt) }
            if !node.children.isEmpty {
                try await expand(node.children, into: &rendered, rows: targetRows, table: tt, scope: scope)
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

    /// Statements that commit with a write, made from its outcome (an idempotency record).
    public typealias Completion = @Sendable (WriteAnswer) -> [SQLStatement]

    /// Runs one command as its own transaction. `completion`'s statements commit with it.
    public func execute(_ command: RecordCommand, principal p: Principal, completion: Completion? = nil) async throws -> RecordOutcome {
        try await withCurrentSchema(command.collection) {
            guard case .record(let outcome) = try await run([command], batch: false, principal: p, completion: completion) else {
                preconditionFailure("one command answers one record outcome")
            }
            return outcome
        }
    }

    /// `POST /v1/batch`: every operation in one transaction, or none (API.md §7).
    public func batch(_ body: JSONValue, principal p: Principal, completion: Completion? = nil) async throws -> [RecordOutcome] {
        let commands = try Self.batchCommands(body)
        guard case .batch(let outcomes) = try await run(commands, batch: true, principal: p, completion: completion) else {
            preconditionFailure("a batch answers a batch outcome")
        }
        return outcomes
    }

    /// Plans and commits `commands` in one transaction. Optimistic concurrency: a write that lost
    /// a race without a precondition is planned again from the new state (at most 5 times). A rule
    /// guard that refused is planned again once, whatever the precondition: it ran against the
    /// record as the transaction saw it, which a concurrent write may have changed or deleted since
    /// the plan read it (two DELETEs at once: the second must be a 404, not a 403). A refusal that
    /// stands on a fresh plan is the answer.
    func run(_ commands: [RecordCommand], batch: Bool, principal p: Principal, completion: Completion?) async throws -> WriteAnswer {
        var attempt = 0
        while true {
            attempt += 1
            let scope = scope(p)
            let planner = WritePlanner(scope: scope, store: store, hooks: hooks)
            var pending = PendingWrite()
            var planned: [PlannedCommand] = []
            for (i, command) in commands.enumerated() {
                pending.tag = i
                do {
                    planned.append(try await planner.plan(command, into: &pending))
                } catch {
                    throw batch ? Self.tagged(error, i) : error
                }
            }
            let answer: @Sendable ([[SQLRow]]) -> WriteAnswer = { [planned] results in
                batch ? .batch(planned.map { $0.resolve(results) }) : .record(planned[0].resolve(results))
            }
            do {
                let finish: (@Sendable ([[SQLRow]]) throws -> [SQLStatement])? = completion.map { c in { @Sendable results in c(answer(results)) } }
                let results = try await store.write(pending.statements, finish: finish)
                noteWrites(pending)
                return answer(results)
            } catch StoreError.expectationFailed(let statement, let tag)
                where (pending.guards[statement].isStale && attempt < 5 && !commands[tag].precondition.isConditional)
                || (pending.guards[statement].isForbidden && attempt == 1)
            {
                metrics?.transactionRetried()
                continue
            } catch {
                let tag = Self.tag(of: error) ?? 0
                let mapped = mapWriteError(error, pending: pending, command: commands[min(tag, commands.count - 1)], scope: scope)
                throw batch ? Self.tagged(mapped, tag) : mapped
            }
        }
    }

    static func batchCommands(_ body: JSONValue) throws(BasaltError) -> [RecordCommand] {
        guard case .object(let o) = body, case .array(let ops)? = o["operations"] else {
            throw BasaltError.validation([FieldError(field: "/operations", code: .required, message: "operations is a list of 1 to 100 operations")])
        }
        guard (1...100).contains(ops.count) else {
            throw BasaltError.validation([
                FieldError(field: "/operations", code: ops.isEmpty ? .min : .max, message: "a batch has 1 to 100 operations")
            ])
        }
        var commands: [RecordCommand] = []
        for (i, op) in ops.enumerated() {
            do {
                commands.append(try parseOperation(op))
            } catch {
                var e = error
                e.extensions.append(("operation_index", .int(Int64(i))))
                throw e
            }
        }
        return commands
    }

    static func parseOperation(_ op: JSONValue) throws(BasaltError) -> RecordCommand {
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
        let pre = VersionPrecondition(ifMatch: o["if_match"]?.stringValue)
        switch (method.uppercased(), id) {
        case ("POST", nil): return .create(collection: collection, body: body)
        case ("PUT", let id?): return .replace(collection: collection, id: id, body: body, precondition: pre)
        case ("PATCH", let id?): return .patch(collection: collection, id: id, body: body, precondition: pre)
        case ("DELETE", let id?): return .delete(collection: collection, id: id, precondition: pre)
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

    static func stillReferenced(_ collection: String, _ field: String) -> BasaltError {
        BasaltError(
            .conflict,
            "The record is still referenced by \(collection).\(field)",
            fieldErrors: [FieldError(field: "/\(collection)/\(field)", code: .invalid, message: "\(collection).\(field) references this record")]
        )
    }

    func noteWrites(_ pending: PendingWrite) {
        let prefix = BuiltinCollections.usersName + "/"
        for k in pending.overlay.keys where k.hasPrefix(prefix) { users.forget(String(k.dropFirst(prefix.count))) }
        guard let tracking = store as? any StatisticsTracking else { return }
        for (table, n) in pending.touched { tracking.noteWrites(table: table, count: n) }
    }

    /// A failed write's error in the domain's terms: what its guard meant, which field a unique
    /// index names. Anything else (an unreachable database) passes through to the edge's mapping.
    func mapWriteError(_ error: any Error, pending: PendingWrite, command: RecordCommand, scope: RequestScope) -> any Error {
        guard let se = error as? StoreError else { return error }
        switch se {
        case .expectationFailed(let statement, _) where statement >= pending.statements.count:
            return se  // a statement of the completion (the idempotency record): its owner maps it
        case .expectationFailed(let statement, _):
            switch pending.guards[statement] {
            case .hidden: return BasaltError.notFound("The record does not exist")
            case .forbidden(let why): return BasaltError(.forbidden, why)
            case .relation(let field, let target, let id):
                return BasaltError.validation([
                    FieldError(field: FieldError.pointer(field), code: .notFound, message: "\(field): no \(target) record has id \(id)")
                ])
            case .referenced(let collection, let field): return Self.stillReferenced(collection, field)
            case .refused(let error): return error
            case .stale, nil: return BasaltError(.preconditionFailed, "The record changed since it was read")
            }
        case .uniqueViolation(_, let columns, _, _):
            var fields = columns
            if let first = columns.first, let ix = scope.schema.uniqueIndexes[first] { fields = ix.fields }
            if columns.first?.hasSuffix("_pkey") == true { fields = ["id"] }
            let f = fields.first ?? "id"
            let msg =
                f == "id" ? "A record with this id already exists" : "\(fields.joined(separator: ", ")) must be unique; another record has this value"
            return BasaltError(.conflict, msg, fieldErrors: [FieldError(field: FieldError.pointer(f), code: .unique, message: msg)], underlying: se)
        case .foreignKeyViolation:
            if case .delete = command {
                return BasaltError(.conflict, "The record is still referenced by another record", underlying: se)
            }
            return BasaltError.validation([FieldError(field: "", code: .notFound, message: "a related record does not exist")])
        case .unavailable, .other:
            return se
        }
    }

    /// RFC 7396 JSON Merge Patch, in time linear in the sizes of target and patch.
    public static func mergePatch(_ target: JSONValue, _ patch: JSONValue) -> JSONValue {
        guard case .object(let p) = patch else { return patch }
        var t = target.objectValue ?? JSONObject()
        var index = Dictionary(t.members.enumerated().map { ($1.key, $0) }, uniquingKeysWith: { first, _ in first })
        var removed = Set<Int>()
        for (k, v) in p {
            if let i = index[k] {
                if v.isNull { removed.insert(i) } else { t.members[i].value = mergePatch(t.members[i].value, v) }
            } else if !v.isNull {
                index[k] = t.members.count
                t.members.append((k, mergePatch(.null, v)))
            }
        }
        if !removed.isEmpty { t.members = t.members.enumerated().filter { !removed.contains($0.offset) }.map(\.element) }
        return .object(t)
    }
}

extension Optional where Wrapped == GuardFailure {
    var isStale: Bool { if case .stale? = self { true } else { false } }
    var isForbidden: Bool { if case .forbidden? = self { true } else { false } }
}
