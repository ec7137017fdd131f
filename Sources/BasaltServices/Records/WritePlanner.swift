import BasaltCore
import BasaltStorage

/// What a guard statement's failure (zero rows where one was expected) means.
enum GuardFailure: Sendable {
    /// The caller may not view the record: `404`.
    case hidden
    /// A `where` of the matching grants rejects the write: `403`.
    case forbidden(String)
    /// A relation names a record that does not exist or that the caller may not view: `422`.
    case relation(field: String, target: String, id: String)
    /// A `restrict` relation still refers to the record being deleted: `409`.
    case referenced(collection: String, field: String)
    /// The record changed or vanished since it was read (`version` no longer matches).
    case stale
    /// A before-hook's statement found no row: the hook's own error.
    case refused(BasaltError)
}

/// Statements of one transaction, built command by command. A batch sees its own earlier writes
/// through `overlay` before anything is committed (create a record, then reference it); the
/// rules themselves run as guard statements inside the transaction, where the database shows
/// exactly the state the write will commit on.
struct PendingWrite {
    var statements: [SQLStatement] = []
    /// What each guard statement's failure means, by statement index.
    var guards: [Int: GuardFailure] = [:]
    /// Rows written earlier in this transaction, by `collection/id` (nil: deleted).
    var overlay: [String: SQLRow?] = [:]
    /// Rows inserted or deleted per table (planner statistics follow table size).
    var touched: [String: Int] = [:]
    /// The batch operation being planned (`operation_index` of errors).
    var tag = 0

    mutating func append(
        _ query: SQLQuery,
        returning: [SQLColumnType] = [],
        expect: SQLStatement.Expectation = .any,
        failure: GuardFailure? = nil
    ) {
        if let failure { guards[statements.count] = failure }
        statements.append(SQLStatement(query, returning: returning, expect: expect, tag: tag))
    }

    /// A `SELECT 1` that must find its row, else the transaction fails with `failure`.
    mutating func require(_ query: SQLQuery, else failure: GuardFailure) {
        append(query, returning: [.int], expect: .one, failure: failure)
    }

    static func key(_ collection: String, _ id: String) -> String { collection + "/" + id }
}

/// A planned command: its outcome, which may still depend on a statement's result (whether the
/// caller may view the record it created is decided in the transaction).
struct PlannedCommand: Sendable {
    var outcome: RecordOutcome
    /// Index of the statement whose rows say whether the created record is visible.
    var visibilityProbe: Int?

    func resolve(_ results: [[SQLRow]]) -> RecordOutcome {
        guard let i = visibilityProbe, case .created(let c, let id, _) = outcome, results.indices.contains(i), results[i].isEmpty else {
            return outcome
        }
        return .created(collection: c, id: id, record: nil)
    }
}

/// Plans record commands into statements. It reads what must be known before the transaction
/// (the current record, whether the caller may see it, relation targets) and leaves every rule
/// to SQL: the guards of `create`, `update` and `delete` are compiled by the same compiler as
/// lists, with hops and `@new` hops, and run inside the write's transaction.
struct WritePlanner {
    let scope: RequestScope
    let store: any Store
    var hooks = RecordHooks()

    var principal: Principal { scope.principal }

    func plan(_ command: RecordCommand, into pending: inout PendingWrite) async throws -> PlannedCommand {
        let planned: PlannedCommand
        let action: String
        switch command {
        case .create(let c, let body):
            planned = try await create(c, body, &pending)
            action = "record.create"
        case .replace(let c, let id, let body, let pre):
            planned = try await update(c, id, body, pre, merge: false, &pending)
            action = "record.replace"
        case .patch(let c, let id, let body, let pre):
            planned = try await update(c, id, body, pre, merge: true, &pending)
            action = "record.update"
        case .delete(let c, let id, let pre):
            planned = try await delete(c, id, pre, &pending)
            action = "record.delete"
        }
        if principal.isAdmin {
            let id: String? =
                switch planned.outcome {
                case .created(_, let id, _), .deleted(_, let id): id
                case .updated(_, let r): r["id"]?.stringValue
                }
            let audit = AuditLog(store: store)
            pending.statements.append(
                SQLStatement(
                    audit.statement(AuditLog.entry(principal, action, collection: command.collection, recordID: id)).query,
                    tag: pending.tag
                )
            )
        }
        return planned
    }

    // MARK: - Create

    func create(_ c: String, _ body: JSONValue, _ pending: inout PendingWrite) async throws -> PlannedCommand {
        let table = try scope.schema.requireTable(c)
        let col = table.collection
        let createAccess = scope.access(.create, on: c)
        if case .denied = createAccess { throw scope.deny() }
        guard case .object(let obj) = body else { throw BasaltError.badRequest("The body must be a JSON object") }
        var errors: [FieldError] = []
        var id = RecordID.make()
        for (k, v) in obj {
            if k == "id" {
                if case .string(let s) = v {
                    if let n = RecordID.normalize(s) {
                        id = n
                    } else {
                        errors.append(FieldError(field: "/id", code: .format, message: "id must be a UUID"))
                    }
                } else {
                    errors.append(FieldError(field: "/id", code: .type, message: "id must be a string holding a UUID"))
                }
            } else if SystemField(rawValue: k) != nil {
                errors.append(FieldError(field: FieldError.pointer(k), code: .readOnly, message: "\(k) is set by the server"))
            } else if Self.isManaged(k, col, principal) {
                errors.append(FieldError(field: FieldError.pointer(k), code: .readOnly, message: "\(k) is managed by the auth flows and admins"))
            } else if col.field(k) == nil {
                errors.append(FieldError(field: FieldError.pointer(k), code: .unknownField, message: "\(k) is not a field of \(c)"))
            }
        }
        var values = JSONObject(minimumCapacity: col.fields.count)
        for f in col.fields {
            let v = (Self.isManaged(f.name, col, principal) ? nil : obj[f.name]) ?? f.defaultValue ?? .null
            switch FieldValidator.check(v, field: f, pointer: FieldError.pointer(f.name)) {
            case .success(let nv): values.append(f.name, nv)
            case .failure(let e): errors.append(e)
            }
        }
        if errors.isEmpty { errors += try await checkRelations(col, values, &pending) }
        if !errors.isEmpty { throw BasaltError.validation(errors) }
        Self.normalizeUser(&values, col)
        let hooked = try await runHooks(.create, col, id: id, &values, current: nil, &pending)
        let now = Timestamp.now()
        var record = JSONObject(minimumCapacity: col.fields.count + 4)
        record.append("id", .string(id))
        record.append("created_at", .string(now.rfc3339))
        record.append("updated_at", .string(now.rfc3339))
        record.append("version", .int(1))
        record.members += values.members
        var cols: [(String, SQLValue)] = [("id", .uuid(id)), ("created_at", .timestamp(now)), ("updated_at", .timestamp(now)), ("version", .int(1))]
        for f in col.fields { cols.append((f.name, SQLValue(json: values[f.name] ?? .null, type: f.type))) }
        if case .rows(let ps) = createAccess {
            // The record is not stored yet: its fields and `@new.*` are the same values.
            let fields = Dictionary(uniqueKeysWithValues: cols)
            let rule = scope.condition(ps, compiler: scope.writeRule(record: .values(fields), new: fields))
            pending.require(table.check(rule), else: .forbidden("No grant allows creating this record"))
        }
        pending.append(table.insert(cols), expect: .one)
        append(hooked, &pending)
        pending.overlay[PendingWrite.key(c, id)] = .some(cols.map(\.1))
        pending.touched[c, default: 0] += 1
        var planned = PlannedCommand(outcome: .created(collection: c, id: id, record: record))
        switch scope.access(.view, on: c) {
        case .all: break
        case .denied: planned.outcome = .created(collection: c, id: id, record: nil)
        case .rows(let ps):
            // A 201 carries the record only if the caller may view it (API.md §9), as stored.
            planned.visibilityProbe = pending.statements.count
            pending.append(table.probe(id, where: scope.condition(ps)), returning: [.int])
        }
        return planned
    }

    /// Relation targets must exist and be visible to the caller (API.md §2: otherwise the same
    /// `422 not_found`); a `users` target only has to exist. Targets written earlier in the same
    /// batch are checked by guards in the transaction.
    func checkRelations(
        _ c: CollectionSchema,
        _ values: JSONObject,
        unchangedFrom current: JSONObject? = nil,
        _ pending: inout PendingWrite
    ) async throws -> [FieldError] {
        var errors: [FieldError] = []
        for f in c.fields where f.type == .relation {
            guard let id = values[f.name]?.stringValue, let t = f.target, let tt = scope.schema.tables[t] else { continue }
            // A reference the write does not change is not the caller's to answer for (an admin may
            // have set it to a record the caller cannot see).
            if let current, current[f.name]?.stringValue == id { continue }
            let missing = FieldError(field: FieldError.pointer(f.name), code: .notFound, message: "\(f.name): no \(t) record has id \(id)")
            var visibility: SQLCondition?
            if t != BuiltinCollections.usersName {
                switch scope.access(.view, on: t) {
                case .all: break
                case .rows(let ps): visibility = scope.condition(ps)
                case .denied:
                    errors.append(missing)
                    continue
                }
            }
            if let o = pending.overlay[PendingWrite.key(t, id)] {
                if o == nil {
                    errors.append(missing)
                } else if let visibility {
                    pending.require(tt.probe(id, where: visibility), else: .relation(field: f.name, target: t, id: id))
                }
                continue
            }
            if try await store.fetchOne(tt.probe(id, where: visibility), types: [.int]) == nil { errors.append(missing) }
        }
        return errors
    }

    // MARK: - Update

    func update(
        _ c: String,
        _ rawID: String,
        _ body: JSONValue,
        _ pre: VersionPrecondition,
        merge: Bool,
        _ pending: inout PendingWrite
    ) async throws -> PlannedCommand {
        let table = try scope.schema.requireTable(c)
        let col = table.collection
        let updateAccess = scope.access(.update, on: c)
        // No grant's `who` matches: 401/403 (API.md §9). A matching `who` on a record the caller
        // cannot view is the 404 below (you cannot change what you cannot see).
        if case .denied = updateAccess { throw scope.deny() }
        let (id, row) = try await requireVisible(table, rawID, &pending)
        let version = row[3].int ?? 0
        guard pre.admits(version) else {
            throw BasaltError(.preconditionFailed, "If-Match does not match the record's current version \"\(version)\"")
        }
        guard case .object(let obj) = body else { throw BasaltError.badRequest("The body must be a JSON object") }
        let current = RecordService.render(row, table)
        var errors: [FieldError] = []
        for (k, v) in obj {
            if SystemField(rawValue: k) != nil {
                // A GET-modify-PUT round trip may repeat system fields unchanged.
                if !Self.sameSystemValue(k, v, current[k] ?? .null) {
                    errors.append(FieldError(field: FieldError.pointer(k), code: .readOnly, message: "\(k) is read-only"))
                }
            } else if Self.isManaged(k, col, principal) {
                if v != (current[k] ?? .null) {
                    errors.append(FieldError(field: FieldError.pointer(k), code: .readOnly, message: "\(k) is managed by the auth flows and admins"))
                }
            } else if col.field(k) == nil {
                errors.append(FieldError(field: FieldError.pointer(k), code: .unknownField, message: "\(k) is not a field of \(c)"))
            }
        }
        var values = JSONObject(minimumCapacity: col.fields.count)
        var changed: [FieldSchema] = []  // a PATCH sets only what it names
        for f in col.fields {
            let given = obj[f.name]
            let candidate: JSONValue
            if merge {
                guard let given else {
                    values.append(f.name, current[f.name] ?? .null)
                    continue
                }
                candidate = f.type == .json ? RecordService.mergePatch(current[f.name] ?? .null, given) : given
            } else if Self.isManaged(f.name, col, principal) {
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
        if errors.isEmpty { errors += try await checkRelations(col, values, unchangedFrom: current, &pending) }
        if !errors.isEmpty { throw BasaltError.validation(errors) }
        Self.normalizeUser(&values, col)
        let beforeHooks = values
        let hooked = try await runHooks(.update, col, id: id, &values, current: current, &pending)
        for f in col.fields where values[f.name] != beforeHooks[f.name] && !changed.contains(where: { $0.name == f.name }) {
            changed.append(f)  // a hook may set what the body did not
        }
        let now = Timestamp.now()
        var record = JSONObject(minimumCapacity: col.fields.count + 4)
        record.append("id", .string(id))
        record.append("created_at", current["created_at"] ?? .null)
        record.append("updated_at", .string(now.rfc3339))
        record.append("version", .int(version + 1))
        record.members += values.members
        let sets = changed.map { ($0.name, SQLValue(json: values[$0.name] ?? .null, type: $0.type)) }
        if case .rows(let ps) = updateAccess {
            // Stored fields read the record before the change; `@new.*` the record after it.
            var new: [String: SQLValue] = ["id": .uuid(id)]
            for f in col.fields { new[f.name] = SQLValue(json: values[f.name] ?? .null, type: f.type) }
            let rule = scope.condition(ps, compiler: scope.writeRule(record: .table("t"), new: new))
            pending.require(table.probe(id, where: rule), else: .forbidden("No grant allows updating this record"))
        }
        pending.append(table.update(id: id, expectedVersion: version, values: sets, now: now), expect: .one, failure: .stale)
        append(hooked, &pending)
        if c == BuiltinCollections.usersName, values["disabled"]?.boolValue == true, current["disabled"]?.boolValue != true {
            // Disabling ends every session (and so every access token) in the same transaction,
            // whichever endpoint does it; enabling later revives none (API.md §8).
            pending.append(IdentityTables.revokeSessions(userID: id, now: now).query(store.dialect))
        }
        var newRow = row
        newRow[2] = .timestamp(now)
        newRow[3] = .int(version + 1)
        for (name, v) in sets { newRow[table.columnIndex(name)!] = v }
        pending.overlay[PendingWrite.key(c, id)] = .some(newRow)  // updates change no row counts: not `touched`
        return PlannedCommand(outcome: .updated(collection: c, record: record))
    }

    // MARK: - Delete

    func delete(_ c: String, _ rawID: String, _ pre: VersionPrecondition, _ pending: inout PendingWrite) async throws -> PlannedCommand {
        let table = try scope.schema.requireTable(c)
        let deleteAccess = scope.access(.delete, on: c)
        if case .denied = deleteAccess { throw scope.deny() }
        let (id, row) = try await requireVisible(table, rawID, &pending)
        let version = row[3].int ?? 0
        guard pre.admits(version) else {
            throw BasaltError(.preconditionFailed, "If-Match does not match the record's current version \"\(version)\"")
        }
        if case .rows(let ps) = deleteAccess {
            pending.require(table.probe(id, where: scope.condition(ps)), else: .forbidden("No grant allows deleting this record"))
        }
        let stored = RecordService.render(row, table)
        var fields = JSONObject(stored.members.filter { SystemField(rawValue: $0.key) == nil })
        let hooked = try await runHooks(.delete, table.collection, id: id, &fields, current: stored, &pending)
        let now = Timestamp.now()
        for ref in scope.schema.referrers[c] ?? [] {
            guard let rt = scope.schema.tables[ref.collection] else { continue }
            switch ref.onDelete {
            case .restrict:
                // In the transaction, after the rule's guard: a caller the rule refuses gets its
                // 403, never a 409 that would tell what (hidden) records refer here; and a batch
                // that removed the referrers first may delete.
                pending.require(rt.unreferenced(field: ref.field, id: id), else: .referenced(collection: ref.collection, field: ref.field))
            case .setNull:
                pending.append(rt.nullify(field: ref.field, pointingAt: id, now: now))
            case .cascade:
                break  // the foreign key's ON DELETE CASCADE
            }
        }
        pending.append(table.delete(id: id, expectedVersion: version), returning: [.uuid], expect: .one, failure: .stale)
        append(hooked, &pending)
        if c == BuiltinCollections.usersName {
            for q in IdentityTables.forgetUser(id) { pending.append(q.query(store.dialect)) }
        }
        pending.overlay[PendingWrite.key(c, id)] = .some(nil)
        pending.touched[c, default: 0] += 1
        return PlannedCommand(outcome: .deleted(collection: c, id: id))
    }

    // MARK: - Before-hooks

    /// Runs the collection's before-hooks for `action` on the validated `values`; what they
    /// change is validated again (relations it newly names too). Returns their statements.
    func runHooks(
        _ action: RecordAction,
        _ col: CollectionSchema,
        id: String,
        _ values: inout JSONObject,
        current: JSONObject?,
        _ pending: inout PendingWrite
    ) async throws -> [(query: SQLQuery, refusal: BasaltError?)] {
        let hooks = hooks.beforeHooks(col.name, action)
        guard !hooks.isEmpty else { return [] }
        var change = RecordChange(
            collection: col.name,
            action: action,
            id: id,
            fields: values,
            current: current,
            principal: principal,
            store: store,
            tables: scope.schema.tables
        )
        for h in hooks { try await h.run(&change) }
        guard action != .delete, change.fields != values else { return change.statements }
        var errors: [FieldError] = []
        var checked = JSONObject(minimumCapacity: col.fields.count)
        for f in col.fields {
            switch FieldValidator.check(change.fields[f.name] ?? .null, field: f, pointer: FieldError.pointer(f.name)) {
            case .success(let v): checked.append(f.name, v)
            case .failure(let e): errors.append(e)
            }
        }
        if errors.isEmpty { errors += try await checkRelations(col, checked, unchangedFrom: values, &pending) }
        if !errors.isEmpty { throw BasaltError.validation(errors) }
        Self.normalizeUser(&checked, col)
        values = checked
        return change.statements
    }

    func append(_ hooked: [(query: SQLQuery, refusal: BasaltError?)], _ pending: inout PendingWrite) {
        for (query, refusal) in hooked {
            pending.append(query, expect: refusal == nil ? .any : .one, failure: refusal.map(GuardFailure.refused))
        }
    }

    // MARK: - Reads before the transaction

    /// The record as this transaction will see it, if the caller may view it; else `404`.
    /// Records written earlier in the batch are judged by a guard in the transaction.
    func requireVisible(_ table: RecordTable, _ rawID: String, _ pending: inout PendingWrite) async throws -> (String, SQLRow) {
        let notFound = BasaltError.notFound("The record does not exist")
        guard let id = RecordID.normalize(rawID) else { throw notFound }
        let c = table.collection.name
        let local = pending.overlay[PendingWrite.key(c, id)]
        let found: SQLRow?
        if let local { found = local } else { found = try await store.fetchOne(table.selectByID(id), types: table.types) }
        guard let row = found else { throw notFound }
        switch scope.access(.view, on: c) {
        case .all:
            break
        case .denied:
            throw notFound
        case .rows(let ps):
            if local != nil {
                pending.require(table.probe(id, where: scope.condition(ps)), else: .hidden)
            } else if try await store.fetchOne(table.probe(id, where: scope.condition(ps)), types: [.int]) == nil {
                throw notFound
            }
        }
        return (id, row)
    }

    // MARK: - Field rules

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

    static func sameSystemValue(_ name: String, _ given: JSONValue, _ current: JSONValue) -> Bool {
        switch name {
        case "id": return given.stringValue.flatMap(RecordID.normalize) == current.stringValue
        case "version": return given.integerValue != nil && given.integerValue == current.integerValue
        default:
            guard let a = given.stringValue.flatMap(Timestamp.init(rfc3339:)), let b = current.stringValue.flatMap(Timestamp.init(rfc3339:)) else {
                return false
            }
            return a == b
        }
    }
}
