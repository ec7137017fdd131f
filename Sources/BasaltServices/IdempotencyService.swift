import BasaltCore
public import BasaltStorage

/// `Idempotency-Key` (IETF httpapi draft; API.md §6) as a wrapper around a write: it claims the
/// key in the database first (so a second request with it — on this replica or another — finds
/// it taken while the first runs: `409`), lets the write commit its answer in its own
/// transaction, and remembers a refusal (any 4xx) the same way. A retry with the same body gets
/// the first answer back; another body is `422`.
public struct IdempotencyService: Sendable {
    let store: any Store
    public static let lifetimeMillis: Int64 = 24 * 3600 * 1000
    /// A claim older than this whose write never committed (the process died) may be taken over.
    public static let leaseMillis: Int64 = 60_000

    public init(store: any Store) { self.store = store }

    public static func isValidKey(_ k: String) -> Bool {
        (1...255).contains(k.utf8.count) && k.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E }
    }

    /// One request under a key: its scope (key, caller, method, path), its body, and where a
    /// refusal would be reported from.
    public struct Request: Sendable {
        public var key: String
        public var caller: String
        public var method: String
        public var path: String
        public var body: [UInt8]
        public var requestID: String
        public init(key: String, caller: String, method: String, path: String, body: [UInt8], requestID: String) {
            self.key = key
            self.caller = caller
            self.method = method
            self.path = path
            self.body = body
            self.requestID = requestID
        }
    }

    /// Runs `write` once per key: a fresh answer, or the stored one with `replayed`.
    /// `write` receives the completion to commit with its change.
    public func perform(
        _ request: Request,
        _ write: (@escaping RecordService.Completion) async throws -> WriteAnswer
    ) async throws -> (answer: WriteAnswer, replayed: Bool) {
        let keyHash = Digest.sha256Hex([request.key, request.caller, request.method, request.path].joined(separator: "\u{1F}"))
        let requestHash = Digest.sha256Hex(request.body)
        let claim: Int64
        switch try await self.claim(keyHash, requestHash) {
        case .stored(let answer): return (answer, true)
        case .claimed(let token): claim = token
        }
        let dialect = store.dialect
        do {
            let answer = try await write { answer in [Self.completion(keyHash, claim, answer, dialect)] }
            return (answer, false)
        } catch StoreError.expectationFailed {
            // Only the completion can fail this way here (the write's own guards are mapped before
            // this): a retry took the claim over after the lease, and this write rolled back.
            throw BasaltError(.conflict, "A retry with this Idempotency-Key took over while this request was still running")
        } catch let e as BasaltError where e.code.isClientFault {
            let refused = WriteAnswer.refused(e, requestID: request.requestID, instance: request.path)
            _ = try? await store.write([Self.completion(keyHash, claim, refused, dialect, expectClaim: false)])
            throw e
        } catch {
            // Not an answer to remember (5xx): the key is free again for a retry. Only this
            // request's own claim is dropped, and only while it runs: a committed write keeps its
            // answer, and a claim taken over belongs to the request that took it.
            _ = try? await store.write([
                store.statement(
                    """
                    DELETE FROM "_basalt_idempotency"
                    WHERE "key_hash" = \(keyHash) AND "state" = 'running' AND "created_at" = \(claim)
                    """
                )
            ])
            throw error
        }
    }

    /// What a claim found: the key is now this request's (its token: the claim's time, which a
    /// takeover changes), or an answer is stored under it.
    enum ClaimResult {
        case claimed(Int64)
        case stored(WriteAnswer)
    }

    struct Claim: StoredRow {
        static let columns: [SQLColumnType] = [.text, .text, .text, .int]
        var requestHash: String
        var state: String
        var answer: String?
        var createdAt: Int64
        init(_ r: inout RowReader) {
            requestHash = r.text() ?? ""
            state = r.text() ?? ""
            answer = r.text()
            createdAt = r.int() ?? 0
        }
    }

    /// Takes the key for this request, or returns the answer already stored under it. Throws
    /// `409` while another request holds it and `422` when it was used with another body.
    func claim(_ keyHash: String, _ requestHash: String) async throws -> ClaimResult {
        for _ in 0..<3 {
            let now = Timestamp.now().millisecondsSinceEpoch
            do {
                try await store.write([
                    store.statement(
                        """
                        INSERT INTO "_basalt_idempotency" ("key_hash", "request_hash", "state", "created_at")
                        VALUES (\(keyHash), \(requestHash), 'running', \(now))
                        """
                    )
                ])
                return .claimed(now)
            } catch StoreError.uniqueViolation {
                let sql: SQL =
                    "SELECT \"request_hash\", \"state\", \"body\", \"created_at\" FROM \"_basalt_idempotency\" WHERE \"key_hash\" = \(keyHash)"
                guard let row = try await store.fetchOne(sql, as: Claim.self) else { continue }  // just deleted: claim again
                if now - row.createdAt > Self.lifetimeMillis {
                    try await store.write([
                        store.statement("DELETE FROM \"_basalt_idempotency\" WHERE \"key_hash\" = \(keyHash) AND \"created_at\" = \(row.createdAt)")
                    ])
                    continue
                }
                if row.requestHash != requestHash {
                    throw BasaltError(.validationFailed, "This Idempotency-Key was used with a different request body")
                }
                if row.state == "running" {
                    guard now - row.createdAt > Self.leaseMillis else {
                        throw BasaltError(.conflict, "A request with this Idempotency-Key is still being processed")
                    }
                    // The claimant died before its write committed (a committed write leaves `done`):
                    // take the claim over, unless someone else just did.
                    do {
                        try await store.write([
                            store.statement(
                                """
                                UPDATE "_basalt_idempotency" SET "created_at" = \(now)
                                WHERE "key_hash" = \(keyHash) AND "state" = 'running' AND "created_at" = \(row.createdAt)
                                """,
                                expect: .one
                            )
                        ])
                        return .claimed(now)
                    } catch StoreError.expectationFailed {
                        continue
                    }
                }
                guard let text = row.answer, let answer = try? AnswerCodec.decode(JSONValue.parse(text)) else {
                    throw BasaltError(.internalError, "A stored idempotent answer cannot be read")
                }
                return .stored(answer)
            }
        }
        throw BasaltError(.conflict, "A request with this Idempotency-Key is still being processed")
    }

    /// The statement that stores `answer` under the key — in the write's transaction, where it
    /// must find this request's claim still running (else the write rolls back: a retry took the
    /// key over), or alone for a refusal, where it simply does nothing then.
    static func completion(
        _ keyHash: String,
        _ claim: Int64,
        _ answer: WriteAnswer,
        _ dialect: any SQLDialect,
        expectClaim: Bool = true
    ) -> SQLStatement {
        SQLStatement(
            """
            UPDATE "_basalt_idempotency" SET "state" = 'done', "body" = \(AnswerCodec.encode(answer).serialized())
            WHERE "key_hash" = \(keyHash) AND "state" = 'running' AND "created_at" = \(claim)
            """,
            dialect,
            expect: expectClaim ? .one : .any
        )
    }

    /// Deletes expired records; run on a schedule.
    public func purge() async throws {
        try await store.write([
            store.statement(
                "DELETE FROM \"_basalt_idempotency\" WHERE \"created_at\" < \(Timestamp.now().millisecondsSinceEpoch - Self.lifetimeMillis)"
            )
        ])
    }
}

/// `WriteAnswer` as stored JSON.
enum AnswerCodec {
    struct Invalid: Error {}

    static func encode(_ a: WriteAnswer) -> JSONValue {
        switch a {
        case .record(let o): .object(JSONObject([("record", encode(o))]))
        case .batch(let os): .object(JSONObject([("batch", .array(os.map(encode)))]))
        case .refused(let e, let requestID, let instance):
            .object(
                JSONObject([
                    (
                        "refused",
                        .object(
                            JSONObject([
                                ("code", .string(e.code.slug)), ("message", .string(e.message)),
                                (
                                    "errors",
                                    .array(
                                        e.fieldErrors.map {
                                            .object(
                                                JSONObject([
                                                    ("field", .string($0.field)), ("code", .string($0.code.rawValue)),
                                                    ("message", .string($0.message)),
                                                ])
                                            )
                                        }
                                    )
                                ),
                                ("extensions", .object(JSONObject(e.extensions.map { (key: $0.0, value: $0.1) }))),
                                ("request_id", .string(requestID)), ("instance", .string(instance)),
                            ])
                        )
                    )
                ])
            )
        }
    }

    static func encode(_ o: RecordOutcome) -> JSONValue {
        switch o {
        case .created(let c, let id, let r):
            .object(JSONObject([("kind", "created"), ("collection", .string(c)), ("id", .string(id)), ("record", r.map(JSONValue.object) ?? .null)]))
        case .updated(let c, let r):
            .object(JSONObject([("kind", "updated"), ("collection", .string(c)), ("record", .object(r))]))
        case .deleted(let c, let id):
            .object(JSONObject([("kind", "deleted"), ("collection", .string(c)), ("id", .string(id))]))
        }
    }

    static func decode(_ v: JSONValue) throws -> WriteAnswer {
        if let o = v["record"] { return .record(try outcome(o)) }
        if let list = v["batch"]?.arrayValue { return .batch(try list.map(outcome)) }
        guard let r = v["refused"], let code = r["code"]?.stringValue.flatMap(BasaltError.Code.init(slug:)) else { throw Invalid() }
        var fieldErrors: [FieldError] = []
        for fe in r["errors"]?.arrayValue ?? [] {
            guard let f = fe["field"]?.stringValue, let c = fe["code"]?.stringValue.flatMap(FieldError.Code.init(rawValue:)) else { throw Invalid() }
            fieldErrors.append(FieldError(field: f, code: c, message: fe["message"]?.stringValue ?? ""))
        }
        let e = BasaltError(
            code,
            r["message"]?.stringValue ?? "",
            fieldErrors: fieldErrors,
            extensions: r["extensions"]?.objectValue?.members.map { ($0.key, $0.value) } ?? []
        )
        return .refused(e, requestID: r["request_id"]?.stringValue ?? "", instance: r["instance"]?.stringValue ?? "")
    }

    static func outcome(_ v: JSONValue) throws -> RecordOutcome {
        guard let c = v["collection"]?.stringValue else { throw Invalid() }
        switch v["kind"]?.stringValue {
        case "created":
            guard let id = v["id"]?.stringValue else { throw Invalid() }
            return .created(collection: c, id: id, record: v["record"]?.objectValue)
        case "updated":
            guard let r = v["record"]?.objectValue else { throw Invalid() }
            return .updated(collection: c, record: r)
        case "deleted":
            guard let id = v["id"]?.stringValue else { throw Invalid() }
            return .deleted(collection: c, id: id)
        default: throw Invalid()
        }
    }
}
