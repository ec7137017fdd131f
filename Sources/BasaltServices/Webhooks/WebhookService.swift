public import BasaltAuth
public import BasaltCore
import BasaltStorage
import Crypto
import Foundation
public import Logging
import Synchronization

/// Makes a webhook's HTTP call (AsyncHTTPClient in `basalt serve`). Policy — which addresses,
/// what is signed — stays in `WebhookService`; a sender only resolves names and sends.
public protocol WebhookSender: Sendable {
    /// The addresses `host` resolves to.
    func resolve(_ host: String) async throws -> [String]
    /// POSTs `body` to `target`, connecting to `address` (already checked), without following
    /// redirects, within `timeout`; returns the status code.
    func post(_ target: WebhookTarget, address: String, headers: [(String, String)], body: [UInt8], timeout: Duration) async throws -> Int
}

/// Webhooks (API.md §10): registrations, the dispatcher that turns outbox events into deliveries
/// on the job queue, and the delivery handler that signs and sends them.
///
/// Every event is dispatched once: the dispatcher's position in the outbox (`_basalt_cursors`)
/// moves in the same transaction as the deliveries it enqueues, and only if no other replica
/// moved it first. Deliveries of one record to one webhook share an ordering key ranked by
/// sequence, so they go out in order; a failing one holds back that record's later events until
/// it succeeds or is given up.
public struct WebhookService: JobHandler {
    public let queue: JobQueue
    let schemas: SchemaService
    let secrets: SecretBox
    let sender: any WebhookSender
    public let policy: AddressPolicy
    let logger: Logger
    var store: any Store { queue.store }
    /// The dispatcher's position in the outbox.
    var position: OutboxCursor { OutboxCursor(store: store, name: "webhooks") }

    public static let kind = "webhook"
    public static let eventTypes = ["basalt.record.created", "basalt.record.updated", "basalt.record.deleted"]
    /// An endpoint failing this long is disabled.
    public static let disableAfter: Duration = .seconds(5 * 86_400)
    public static let timeout: Duration = .seconds(15)
    public var kind: String { Self.kind }
    /// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (API.md §10): eight attempts over about a day.
    public let schedule = RetrySchedule(
        delays: [.seconds(5), .seconds(300), .seconds(1800), .seconds(7200), .seconds(18_000), .seconds(36_000), .seconds(36_000)],
        maxAttempts: 8
    )
    public var lease: Duration { .seconds(30) }

    public init(queue: JobQueue, schemas: SchemaService, secrets: SecretBox, sender: any WebhookSender, policy: AddressPolicy, logger: Logger) {
        self.queue = queue
        self.schemas = schemas
        self.secrets = secrets
        self.sender = sender
        self.policy = policy
        self.logger = logger
    }

    // MARK: - Registrations

    struct Row: StoredRow {
        static let columns: [SQLColumnType] = [.text, .text, .text, .text, .text, .int, .int, .int, .text, .int, .int]
        var id: String
        var url: String
        var events: [String]
        var collections: [String]
        var secret: String
        var enabled: Bool
        var sinceSequence: Int64
        var failingSince: Int64?
        var disabledReason: String?
        var createdAt: Int64
        var updatedAt: Int64
        init(_ r: inout RowReader) {
            id = r.text() ?? ""
            url = r.text() ?? ""
            events = Self.list(r.text())
            collections = Self.list(r.text())
            secret = r.text() ?? ""
            enabled = (r.int() ?? 0) != 0
            sinceSequence = r.int() ?? 0
            failingSince = r.int()
            disabledReason = r.text()
            createdAt = r.int() ?? 0
            updatedAt = r.int() ?? 0
        }
        static func list(_ text: String?) -> [String] {
            ((try? JSONValue.parse(text ?? "[]"))?.arrayValue ?? []).compactMap(\.stringValue)
        }

        func matches(_ e: StoredEvent) -> Bool {
            e.sequence > sinceSequence && (events.isEmpty || events.contains(e.type))
                && (collections.isEmpty || collections.contains(e.collection))
        }

        var json: JSONValue {
            .object(
                JSONObject([
                    ("id", .string(id)), ("url", .string(url)), ("events", .array(events.map(JSONValue.string))),
                    ("collections", .array(collections.map(JSONValue.string))), ("enabled", .bool(enabled)),
                    ("disabled_reason", disabledReason.map(JSONValue.string) ?? .null),
                    ("failing_since", failingSince.map { .string(Timestamp(millisecondsSinceEpoch: $0).rfc3339) } ?? .null),
                    ("created_at", .string(Timestamp(millisecondsSinceEpoch: createdAt).rfc3339)),
                    ("updated_at", .string(Timestamp(millisecondsSinceEpoch: updatedAt).rfc3339)),
                ])
            )
        }
    }

    static let columns: SQL = """
        "id", "url", "events", "collections", "secret", "enabled", "since_sequence", "failing_since", "disabled_reason",
        "created_at", "updated_at"
        """

    func row(_ id: String) async throws -> Row? {
        try await store.fetchOne("SELECT \(Self.columns) FROM \"_basalt_webhooks\" WHERE \"id\" = \(id)", as: Row.self)
    }

    func existing(_ id: String) async throws -> Row {
        guard let r = try await row(id) else { throw BasaltError.notFound("No webhook has this id") }
        return r
    }

    public func list() async throws -> [JSONValue] {
        try await store.fetch("SELECT \(Self.columns) FROM \"_basalt_webhooks\" ORDER BY \"id\"", as: Row.self).map(\.json)
    }

    public func get(_ id: String) async throws -> JSONValue { try await existing(id).json }

    /// The checked members of a create or patch body.
    struct Fields {
        var url: String?
        var events: [String]?
        var collections: [String]?
        var enabled: Bool?
    }

    func decode(_ body: JSONValue, requireURL: Bool) async throws -> Fields {
        guard case .object(let o) = body else { throw BasaltError.badRequest("The body must be a JSON object") }
        var f = Fields()
        var errors: [FieldError] = []
        for (k, v) in o {
            switch k {
            case "url":
                guard let s = v.stringValue else {
                    errors.append(FieldError(field: "/url", code: .type, message: "url must be a string"))
                    continue
                }
                do {
                    try await check(try WebhookTarget(s))
                    f.url = s
                } catch WebhookTarget.Problem.invalid(let m) {
                    errors.append(FieldError(field: "/url", code: .format, message: m))
                } catch WebhookTarget.Problem.forbidden(let m) {
                    errors.append(FieldError(field: "/url", code: .forbiddenTarget, message: m))
                }
            case "events", "collections":
                guard let a = v.arrayValue ?? (v == .null ? [] : nil), a.allSatisfy({ $0.stringValue != nil }) else {
                    errors.append(FieldError(field: "/\(k)", code: .type, message: "\(k) must be an array of strings"))
                    continue
                }
                let names = a.compactMap(\.stringValue)
                for (i, n) in names.enumerated() {
                    if k == "events" && !Self.eventTypes.contains(n) {
                        errors.append(
                            FieldError(field: "/events/\(i)", code: .enum, message: "events are \(Self.eventTypes.joined(separator: ", "))")
                        )
                    }
                    if k == "collections" && schemas.current.schema.collection(n) == nil {
                        errors.append(FieldError(field: "/collections/\(i)", code: .notFound, message: "no collection is named \(n)"))
                    }
                }
                if k == "events" { f.events = names } else { f.collections = names }
            case "enabled":
                guard let b = v.boolValue else {
                    errors.append(FieldError(field: "/enabled", code: .type, message: "enabled must be a boolean"))
                    continue
                }
                f.enabled = b
            default:
                errors.append(FieldError(field: FieldError.pointer(k), code: .unknownField, message: "\(k) is not a webhook member"))
            }
        }
        if requireURL && o["url"] == nil { errors.append(FieldError(field: "/url", code: .required, message: "url is required")) }
        guard errors.isEmpty else { throw BasaltError.validation(errors) }
        return f
    }

    /// Refuses, at registration, a target this deployment may not call (`permittedAddresses`). A
    /// name that does not resolve yet is accepted: every delivery checks again.
    func check(_ target: WebhookTarget) async throws(WebhookTarget.Problem) {
        guard !policy.allowPrivate else { return }
        do {
            _ = try await permittedAddresses(target, within: .seconds(2))
        } catch let p as WebhookTarget.Problem {
            throw p
        } catch {
            return
        }
    }

    /// `POST /v1/admin/webhooks`: the registration with its signing secret, shown this once.
    public func create(_ body: JSONValue, audit: AuditLog.Entry) async throws -> JSONValue {
        let f = try await decode(body, requireURL: true)
        let now = Timestamp.now()
        let id = RecordID.make(at: now)
        var raw = [UInt8](repeating: 0, count: 24)
        var rng = SystemRandomNumberGenerator()
        for i in raw.indices { raw[i] = UInt8.random(in: 0...255, using: &rng) }
        let secret = "whsec_" + Data(raw).base64EncodedString()
        let sealed = try secrets.seal(Array(secret.utf8))
        let head = try await EventLog(store: store).bounds().newest
        let t = now.millisecondsSinceEpoch
        try await store.write([
            store.statement(
                """
                INSERT INTO "_basalt_webhooks" ("id", "url", "events", "collections", "secret", "enabled", "since_sequence",
                  "created_at", "updated_at")
                VALUES (\(id), \(f.url ?? ""), \(Self.encode(f.events ?? [])), \(Self.encode(f.collections ?? [])), \(sealed),
                  \(f.enabled ?? true), \(head), \(t), \(t))
                """
            ),
            AuditLog(store: store).statement(withRecord(audit, id)),
        ])
        guard case .object(var o) = try await get(id) else { throw BasaltError.notFound() }
        o.append("secret", .string(secret))
        return .object(o)
    }

    func withRecord(_ e: AuditLog.Entry, _ id: String) -> AuditLog.Entry {
        var e = e
        e.recordID = id
        return e
    }

    static func encode(_ names: [String]) -> String { JSONValue.array(names.map(JSONValue.string)).serialized() }

    /// `PATCH /v1/admin/webhooks/{id}` (JSON Merge Patch). Enabling again forgets the failures
    /// that disabled it.
    public func update(_ id: String, _ body: JSONValue, audit: AuditLog.Entry) async throws -> JSONValue {
        let current = try await existing(id)
        let f = try await decode(body, requireURL: false)
        let t = Timestamp.now().millisecondsSinceEpoch
        let enabled = f.enabled ?? current.enabled
        let reenabled = enabled && !current.enabled
        try await store.write([
            store.statement(
                """
                UPDATE "_basalt_webhooks" SET "url" = \(f.url ?? current.url), "events" = \(Self.encode(f.events ?? current.events)),
                  "collections" = \(Self.encode(f.collections ?? current.collections)), "enabled" = \(enabled),
                  "failing_since" = \(reenabled ? nil : current.failingSince),
                  "disabled_reason" = \(enabled ? nil : (current.disabledReason ?? "disabled by an admin")), "updated_at" = \(t)
                WHERE "id" = \(id)
                """
            ),
            AuditLog(store: store).statement(withRecord(audit, id)),
        ])
        return try await get(id)
    }

    /// `DELETE /v1/admin/webhooks/{id}`: its pending deliveries go with it; its log stays until purged.
    public func delete(_ id: String, audit: AuditLog.Entry) async throws {
        _ = try await existing(id)
        try await store.write([
            store.statement("DELETE FROM \"_basalt_webhooks\" WHERE \"id\" = \(id)"),
            store.statement(
                """
                UPDATE "_basalt_jobs" SET "state" = 'dead', "last_error" = 'webhook deleted', "finished_at" = \(Timestamp.now().millisecondsSinceEpoch)
                WHERE "kind" = \(Self.kind) AND "owner" = \(id) AND "state" IN ('pending', 'failed')
                """
            ),
            AuditLog(store: store).statement(withRecord(audit, id)),
        ])
    }

    // MARK: - Deliveries

    /// A delivery as the admin API shows it: its job, the event it carries and its attempts.
    func deliveryJSON(_ job: Job, attempts: [JSONValue]) -> JSONValue {
        guard case .object(var o) = job.json else { return job.json }
        o["kind"] = nil
        o["owner"] = nil
        o.append("webhook_id", job.owner.map(JSONValue.string) ?? .null)
        o.append("event_id", job.payload["event"]?["id"] ?? .null)
        o.append("event_type", job.payload["event"]?["type"] ?? .null)
        o.append("log", .array(attempts))
        return .object(o)
    }

    func attempts(of ids: [String]) async throws -> [String: [JSONValue]] {
        guard !ids.isEmpty else { return [:] }
        let rows = try await store.fetchRows(
            """
            SELECT "delivery_id", "attempt", "at", "status", "duration_ms", "error" FROM "_basalt_webhook_attempts"
            WHERE "delivery_id" IN (\(SQL.list(ids.map(SQLValue.text)))) ORDER BY "delivery_id", "attempt", "at"
            """,
            types: [.text, .int, .int, .int, .int, .text]
        )
        var out: [String: [JSONValue]] = [:]
        for r in rows {
            out[r[0].text ?? "", default: []].append(
                .object(
                    JSONObject([
                        ("attempt", .int(r[1].int ?? 0)), ("at", .string(Timestamp(millisecondsSinceEpoch: r[2].int ?? 0).rfc3339)),
                        ("status", r[3].int.map(JSONValue.int) ?? .null), ("duration_ms", .int(r[4].int ?? 0)),
                        ("error", r[5].text.map(JSONValue.string) ?? .null),
                    ])
                )
            )
        }
        return out
    }

    /// `GET /v1/admin/webhooks/{id}/deliveries`: newest first, with each one's attempts.
    public func deliveries(_ id: String, limit: Int, before: String?, states: [Job.State]) async throws -> (items: [JSONValue], next: String?) {
        _ = try await existing(id)
        let page = try await queue.list(limit: limit, before: before, states: states, kinds: [Self.kind], owner: id)
        let log = try await attempts(of: page.items.map(\.id))
        return (page.items.map { deliveryJSON($0, attempts: log[$0.id] ?? []) }, page.next)
    }

    /// `POST …/deliveries/{delivery_id}/retry`: due again now, with one more attempt allowed.
    public func retry(_ id: String, delivery: String) async throws -> JSONValue {
        _ = try await existing(id)
        guard let job = try await queue.retry(id: delivery, kind: Self.kind, owner: id) else {
            if let j = try await queue.job(id: delivery), j.kind == Self.kind, j.owner == id {
                throw BasaltError(.conflict, "The delivery is being attempted right now")
            }
            throw BasaltError.notFound("This webhook has no delivery with this id")
        }
        return deliveryJSON(job, attempts: try await attempts(of: [job.id])[job.id] ?? [])
    }

    /// `POST /v1/admin/webhooks/{id}/test`: a `basalt.webhook.test` event, delivered (and
    /// logged) like any other.
    public func test(_ id: String) async throws -> JSONValue {
        _ = try await existing(id)
        let now = Timestamp.now()
        let event = JSONObject([
            ("specversion", "1.0"), ("id", .string(RecordID.make(at: now))), ("source", .string("/v1/admin/webhooks/\(id)")),
            ("type", "basalt.webhook.test"), ("time", .string(now.rfc3339)), ("subject", .string(id)),
            ("datacontenttype", "application/json"), ("data", .object(JSONObject())),
        ])
        let (jobID, statement) = queue.enqueue(
            .init(kind: Self.kind, payload: .object(JSONObject([("event", .object(event))])), owner: id, maxAttempts: 1),
            now: now
        )
        try await store.write([statement])
        queue.wakeups.bump()
        guard let job = try await queue.job(id: jobID) else { throw BasaltError.notFound() }
        return deliveryJSON(job, attempts: [])
    }

    // MARK: - Dispatch

    /// Turns up to `limit` new outbox events into deliveries for the enabled webhooks they match;
    /// returns how many events it read (`limit`: there may be more).
    @discardableResult
    public func dispatch(limit: Int = 500) async throws -> Int {
        let hooks = try await store.fetch("SELECT \(Self.columns) FROM \"_basalt_webhooks\" WHERE \"enabled\" = 1", as: Row.self)
        guard let earliest = hooks.map(\.sinceSequence).min() else { return 0 }
        return try await position.dispatch(self, queue: queue, tables: schemas.current.tables, limit: limit, after: earliest) { e in
            hooks.filter { $0.matches(e) }.map(\.id)
        }
    }

    /// With no webhook enabled, moves the position to the end of the outbox, so retention may
    /// prune what no webhook will want (every minute, not at every commit: it writes).
    public func skipIdle() async throws {
        guard
            try await store.fetchRows(
                #"SELECT "id" FROM "_basalt_webhooks" WHERE "enabled" = 1 LIMIT 1"#,
                types: [.text]
            )
            .isEmpty
        else { return }
        let cursor = try await position.position() ?? 0
        let newest = try await EventLog(store: store).bounds().newest
        if newest > cursor { try await position.move(from: cursor, to: newest, with: []) }
    }

    // MARK: - Delivery

    public struct DeliveryFailure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The Standard Webhooks signature of one attempt: `v1,` + base64 of HMAC-SHA256 over
    /// `{id}.{timestamp}.{body}` keyed with the secret's decoded bytes.
    public static func signature(secret: String, id: String, timestamp: Int64, body: [UInt8]) -> String? {
        guard secret.hasPrefix("whsec_"), let key = Data(base64Encoded: String(secret.dropFirst(6))) else { return nil }
        var mac = HMAC<SHA256>(key: SymmetricKey(data: key))
        mac.update(data: Array("\(id).\(timestamp).".utf8))
        mac.update(data: body)
        return "v1," + Data(mac.finalize()).base64EncodedString()
    }

    public func run(_ job: Job) async throws {
        guard let id = job.owner, case .object(let event)? = job.payload["event"], let eventID = event["id"]?.stringValue else {
            throw PermanentJobFailure("malformed webhook delivery")
        }
        guard let hook = try await row(id) else { throw PermanentJobFailure("webhook deleted") }
        guard hook.enabled else { throw PermanentJobFailure("webhook disabled") }
        let secret = String(decoding: try secrets.open(hook.secret), as: UTF8.self)
        let body = Array(JSONValue.object(event).serialized().utf8)
        let timestamp = Timestamp.now().millisecondsSinceEpoch / 1000
        guard let signature = Self.signature(secret: secret, id: eventID, timestamp: timestamp, body: body) else {
            throw PermanentJobFailure("webhook secret unreadable")
        }
        let headers = [
            ("content-type", "application/cloudevents+json"), ("webhook-id", eventID), ("webhook-timestamp", String(timestamp)),
            ("webhook-signature", signature), ("user-agent", "Basalt-Webhooks/1"),
        ]
        let clock = ContinuousClock()
        let started = clock.now
        var status: Int?
        var failure: String?
        do {
            let target = try WebhookTarget(hook.url)
            guard let address = try await permittedAddresses(target, within: .seconds(5)).first else {
                throw DeliveryFailure(description: "\(target.host) does not resolve")
            }
            status = try await sender.post(target, address: address, headers: headers, body: body, timeout: Self.timeout)
            if let s = status, !(200..<300).contains(s) { failure = "HTTP \(s)" }
        } catch is CancellationError {
            throw CancellationError()
        } catch let p as WebhookTarget.Problem {
            switch p {
            case .invalid(let m), .forbidden(let m): failure = "forbidden_target: \(m)"
            }
        } catch {
            failure = Self.describe(error)
        }
        if Task.isCancelled { throw CancellationError() }
        let elapsed = (clock.now - started).milliseconds
        try await record(job, hook: hook, status: status, durationMS: elapsed, error: failure)
        if let failure { throw DeliveryFailure(description: failure) }
    }

    /// The addresses `target` may be called at: a local name is refused, and so is a host any of
    /// whose addresses `policy` refuses (a name that resolves to loopback too). Deliveries connect
    /// to the first, the very address checked.
    func permittedAddresses(_ target: WebhookTarget, within limit: Duration) async throws -> [String] {
        if target.isLocalName && !policy.allowPrivate { throw WebhookTarget.Problem.forbidden("url must not point at this machine") }
        var addresses = target.literalAddress.map { [$0] } ?? []
        if addresses.isEmpty { addresses = try await resolve(target.host, within: limit) }
        if let bad = addresses.first(where: { !policy.permits($0) }) {
            throw WebhookTarget.Problem.forbidden("\(target.host) is or resolves to \(bad), a loopback, private or link-local address")
        }
        return addresses
    }

    /// The host's addresses, or a failure once `limit` passes (a resolver that does not answer
    /// must not hold a request or a worker).
    func resolve(_ host: String, within limit: Duration) async throws -> [String] {
        // Unstructured on purpose: a system lookup blocks its thread and ignores cancellation,
        // so the caller must be able to walk away from it.
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<[String], any Error>) in
            let pending = Mutex(Optional(c))
            let finish: @Sendable (Result<[String], any Error>) -> Void = { r in pending.withLock { $0.take() }?.resume(with: r) }
            Task { [sender] in
                do { finish(.success(try await sender.resolve(host))) } catch { finish(.failure(error)) }
            }
            Task {
                try? await Task.sleep(for: limit)
                finish(.failure(DeliveryFailure(description: "resolving \(host) took longer than \(limit)")))
            }
        }
    }

    static func describe(_ error: any Error) -> String {
        String(String(describing: error).prefix(300))
    }

    /// Logs the attempt and keeps the endpoint's health: a success clears its failing streak; a
    /// failure starts one, and one older than `disableAfter` disables the endpoint.
    func record(_ job: Job, hook: Row, status: Int?, durationMS: Int64, error: String?) async throws {
        let now = Timestamp.now()
        let t = now.millisecondsSinceEpoch
        var statements = [
            store.statement(
                """
                INSERT INTO "_basalt_webhook_attempts" ("id", "delivery_id", "webhook_id", "attempt", "at", "status", "duration_ms", "error")
                VALUES (\(RecordID.make(at: now)), \(job.id), \(hook.id), \(job.attempts), \(t), \(status.map(Int64.init)), \(durationMS), \(error))
                """
            )
        ]
        if error == nil {
            if hook.failingSince != nil {
                statements.append(store.statement("UPDATE \"_basalt_webhooks\" SET \"failing_since\" = NULL WHERE \"id\" = \(hook.id)"))
            }
        } else if let since = hook.failingSince {
            if t - since >= Self.disableAfter.milliseconds {
                statements.append(
                    store.statement(
                        """
                        UPDATE "_basalt_webhooks" SET "enabled" = 0, "updated_at" = \(t),
                          "disabled_reason" = 'failing for 5 days' WHERE "id" = \(hook.id) AND "enabled" = 1
                        """
                    )
                )
                logger.warning("webhook disabled after failing for 5 days", metadata: ["webhook.id": "\(hook.id)"])
            }
        } else {
            statements.append(
                store.statement("UPDATE \"_basalt_webhooks\" SET \"failing_since\" = \(t) WHERE \"id\" = \(hook.id) AND \"failing_since\" IS NULL")
            )
        }
        try await store.write(statements)
    }
}
