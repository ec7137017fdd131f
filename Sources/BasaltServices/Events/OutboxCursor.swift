import BasaltCore
public import BasaltStorage

/// A consumer's position in the outbox (`_basalt_cursors`), shared by every process: whoever
/// moves it from the position it read commits the work for those events with the move, and a
/// process that finds it moved does nothing (the other one did the work). Retention keeps every
/// event a cursor has not passed.
public struct OutboxCursor: Sendable {
    public let store: any Store
    public let name: String

    public init(store: any Store, name: String) {
        self.store = store
        self.name = name
    }

    /// The position, or nil when the cursor does not exist.
    public func position() async throws -> Int64? {
        try await store.fetchRows(#"SELECT "position" FROM "_basalt_cursors" WHERE "name" = \#(name)"#, types: [.int]).first?[0].int
    }

    /// Creates the cursor at the outbox's newest event, unless it exists.
    public func create(at position: Int64) async throws {
        try await store.write([
            store.statement(
                #"INSERT INTO "_basalt_cursors" ("name", "position") VALUES (\#(name), \#(position)) ON CONFLICT ("name") DO NOTHING"#
            )
        ])
    }

    /// Removes the cursor, so it holds no events back from retention.
    public func remove() async throws {
        try await store.write([store.statement(#"DELETE FROM "_basalt_cursors" WHERE "name" = \#(name)"#)])
    }

    /// Commits `statements` with the move from `from` to `to`, unless another process moved the
    /// cursor first (then nothing here commits). Returns whether this call moved it.
    @discardableResult
    public func move(from: Int64, to: Int64, with statements: [SQLStatement]) async throws -> Bool {
        do {
            try await store.write(
                statements + [
                    store.statement(
                        #"UPDATE "_basalt_cursors" SET "position" = \#(to) WHERE "name" = \#(name) AND "position" = \#(from)"#,
                        expect: .one
                    )
                ]
            )
            return true
        } catch StoreError.expectationFailed(let statement, _) where statement == statements.count {
            return false
        }
    }
}

extension OutboxCursor {
    /// Turns up to `limit` events after the position (and after `earliest`) into jobs of
    /// `handler`'s kind, one per owner `owners` names for the event, each carrying the event's
    /// CloudEvent; the jobs of one owner and record run in order. The jobs commit with the move
    /// of the position. Returns how many events it read (`limit`: there may be more).
    public func dispatch(
        _ handler: some JobHandler,
        queue: JobQueue,
        tables: [String: RecordTable],
        limit: Int,
        after earliest: Int64 = 0,
        owners: (StoredEvent) -> [String]
    ) async throws -> Int {
        guard let from = try await position() else { return 0 }
        let log = EventLog(store: store)
        try await log.number()
        let events = try await log.read(after: max(from, earliest), limit: limit)
        guard let last = events.last else { return 0 }
        var statements: [SQLStatement] = []
        for e in events {
            let targets = owners(e)
            guard !targets.isEmpty else { continue }
            let event = JSONValue.object(e.cloudEvent(record: tables[e.collection].map { e.record(in: $0) } ?? e.data))
            for owner in targets {
                let job = JobQueue.NewJob(
                    kind: handler.kind,
                    payload: .object(JSONObject([("event", event)])),
                    owner: owner,
                    maxAttempts: handler.schedule.maxAttempts,
                    ordering: (key: "\(owner)/\(e.collection)/\(e.recordID)", rank: e.sequence)
                )
                statements.append(queue.enqueue(job).statement)
            }
        }
        try await move(from: from, to: last.sequence, with: statements)
        if !statements.isEmpty { queue.wakeups.bump() }
        return events.count
    }
}
