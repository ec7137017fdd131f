public import BasaltCore
public import BasaltStorage

/// One job as a worker or an admin sees it.
public struct Job: Sendable, Equatable {
    public enum State: String, Sendable, CaseIterable {
        /// Due at `runAt`, never tried (or handed back by a stopping process).
        case pending
        /// Claimed by a worker until `runAt` (its lease).
        case running
        /// An attempt failed; due again at `runAt`.
        case failed
        /// Gave up: out of attempts, or a permanent failure. An admin may retry it.
        case dead
        case succeeded
    }
    public var id: String
    public var kind: String
    /// What the job belongs to (a mail's recipient, a delivery's webhook): admins filter by it.
    public var owner: String?
    public var payload: JSONValue
    public var state: State
    /// Attempts made, the one under way included.
    public var attempts: Int64
    public var maxAttempts: Int64
    public var runAt: Timestamp
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
    public var finishedAt: Timestamp?
    public var lastError: String?

    /// The admin API's representation (API.md §12); payloads stay inside (mail bodies are sealed,
    /// deliveries carry whole records).
    public var json: JSONValue {
        .object(
            JSONObject([
                ("id", .string(id)), ("kind", .string(kind)), ("owner", owner.map(JSONValue.string) ?? .null),
                ("state", .string(state.rawValue)), ("attempts", .int(attempts)), ("max_attempts", .int(maxAttempts)),
                ("run_at", .string(runAt.rfc3339)), ("created_at", .string(createdAt.rfc3339)),
                ("updated_at", .string(updatedAt.rfc3339)), ("finished_at", finishedAt.map { .string($0.rfc3339) } ?? .null),
                ("last_error", lastError.map(JSONValue.string) ?? .null),
            ])
        )
    }
}

/// When a failed job is tried again: the delay after the n-th failed attempt (the last delay
/// repeats), each stretched or shrunk at random by up to `jitter` so that jobs failing together
/// (an endpoint down) do not come back together.
public struct RetrySchedule: Sendable {
    public var delays: [Duration]
    public var maxAttempts: Int64
    public var jitter: Double

    public init(delays: [Duration], maxAttempts: Int64, jitter: Double = 0.1) {
        precondition(!delays.isEmpty && maxAttempts >= 1)
        self.delays = delays
        self.maxAttempts = maxAttempts
        self.jitter = jitter
    }

    /// Doubling from `first`, capped at `cap`.
    public static func exponential(first: Duration, cap: Duration, maxAttempts: Int64, jitter: Double = 0.2) -> RetrySchedule {
        var delays: [Duration] = []
        var d = first
        while delays.count < Int(maxAttempts) {
            delays.append(min(d, cap))
            d = d * 2
        }
        return RetrySchedule(delays: delays, maxAttempts: maxAttempts, jitter: jitter)
    }

    /// The delay after `attempts` failed attempts (1 = after the first), jitter applied.
    public func delay(afterAttempt attempts: Int64) -> Duration {
        let base = delays[Int(min(max(attempts, 1), Int64(delays.count))) - 1]
        let ms = Double(base.components.seconds) * 1000 + Double(base.components.attoseconds) / 1e15
        return .milliseconds(Int64((ms * Double.random(in: (1 - jitter)...(1 + jitter))).rounded()))
    }
}

/// A failure that retrying cannot fix (the job goes straight to `dead`).
public struct PermanentJobFailure: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The durable job queue (`_basalt_jobs`), in the same database as the data: a job enqueued in a
/// write's transaction exists exactly when the write committed. Workers claim due jobs with a
/// lease (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so replicas never claim the same job; SQLite: the
/// one writer serializes claims), and record each attempt's outcome only while they still hold the
/// claim they made — a worker whose lease ran out and whose job was claimed again changes nothing.
/// Handlers are at-least-once: a crash between doing the work and recording it repeats the work.
public struct JobQueue: Sendable {
    public let store: any Store
    /// Raised when this process enqueued work: local workers look at once instead of at their next poll.
    public let wakeups: Beacon

    public init(store: any Store, wakeups: Beacon = Beacon()) {
        self.store = store
        self.wakeups = wakeups
    }

    public struct NewJob: Sendable {
        public var kind: String
        public var payload: JSONValue
        public var owner: String?
        public var maxAttempts: Int64
        public var runAt: Timestamp?
        /// Jobs with one key run one at a time, by rank.
        public var ordering: (key: String, rank: Int64)?
        public var id: String?

        public init(
            kind: String,
            payload: JSONValue,
            owner: String? = nil,
            maxAttempts: Int64,
            runAt: Timestamp? = nil,
            ordering: (key: String, rank: Int64)? = nil,
            id: String? = nil
        ) {
            self.kind = kind
            self.payload = payload
            self.owner = owner
            self.maxAttempts = maxAttempts
            self.runAt = runAt
            self.ordering = ordering
            self.id = id
        }
    }

    /// The statement that enqueues `job`, to run in the caller's transaction. Returns its id too.
    public func enqueue(_ job: NewJob, now: Timestamp = .now()) -> (id: String, statement: SQLStatement) {
        let id = job.id ?? RecordID.make(at: now)
        let t = now.millisecondsSinceEpoch
        let statement = store.statement(
            """
            INSERT INTO "_basalt_jobs" ("id", "kind", "owner", "payload", "state", "attempts", "max_attempts", "run_at",
              "ordering_key", "ordering_rank", "created_at", "updated_at")
            VALUES (\(id), \(job.kind), \(job.owner), \(job.payload.serialized()), 'pending', 0, \(job.maxAttempts),
              \(job.runAt?.millisecondsSinceEpoch ?? t), \(job.ordering?.key), \(job.ordering?.rank), \(t), \(t))
            """
        )
        return (id, statement)
    }

    static let columns: SQL = """
        "id", "kind", "owner", "payload", "state", "attempts", "max_attempts", "run_at", "created_at", "updated_at",
        "finished_at", "last_error"
        """
    static let columnTypes: [SQLColumnType] = [.text, .text, .text, .text, .text, .int, .int, .int, .int, .int, .int, .text]

    static func job(_ row: SQLRow) -> Job {
        Job(
            id: row[0].text ?? "",
            kind: row[1].text ?? "",
            owner: row[2].text,
            payload: (try? JSONValue.parse(row[3].text ?? "null", maxDepth: 512)) ?? .null,
            state: Job.State(rawValue: row[4].text ?? "") ?? .dead,
            attempts: row[5].int ?? 0,
            maxAttempts: row[6].int ?? 0,
            runAt: Timestamp(millisecondsSinceEpoch: row[7].int ?? 0),
            createdAt: Timestamp(millisecondsSinceEpoch: row[8].int ?? 0),
            updatedAt: Timestamp(millisecondsSinceEpoch: row[9].int ?? 0),
            finishedAt: row[10].int.map(Timestamp.init(millisecondsSinceEpoch:)),
            lastError: row[11].text
        )
    }

    /// Due and not waiting behind an earlier job of its ordering key.
    func dueCondition(now t: Int64, kinds: [String]) -> SQL {
        """
        j."state" IN ('pending', 'failed', 'running') AND j."run_at" <= \(t) AND j."kind" IN (\(SQL.list(kinds.map(SQLValue.text))))
        AND (j."ordering_key" IS NULL OR NOT EXISTS (
          SELECT 1 FROM "_basalt_jobs" e WHERE e."ordering_key" = j."ordering_key" AND e."ordering_rank" < j."ordering_rank"
          AND e."state" IN ('pending', 'failed', 'running')))
        """
    }

    /// Claims the next due job of one of `kinds` for `lease`, counting the attempt; `nil` when none
    /// is due. Looks before it writes, so an idle queue costs one indexed read (no write on SQLite).
    public func claim(kinds: [String], lease: Duration, now: Timestamp = .now()) async throws -> Job? {
        let t = now.millisecondsSinceEpoch
        let probe = try await store.fetchRows(
            "SELECT j.\"id\" FROM \"_basalt_jobs\" j WHERE \(dueCondition(now: t, kinds: kinds)) LIMIT 1",
            types: [.text]
        )
        guard !probe.isEmpty else { return nil }
        let skipLocked: SQL = store.dialect.name == "postgres" ? " FOR UPDATE SKIP LOCKED" : ""
        let until = t + lease.milliseconds
        let rows = try await store.write([
            store.statement(
                """
                UPDATE "_basalt_jobs" SET "state" = 'running', "attempts" = "attempts" + 1, "run_at" = \(until), "updated_at" = \(t)
                WHERE "id" = (SELECT j."id" FROM "_basalt_jobs" j WHERE \(dueCondition(now: t, kinds: kinds))
                  ORDER BY j."run_at" LIMIT 1\(skipLocked))
                RETURNING \(Self.columns)
                """,
                returning: Self.columnTypes
            )
        ])
        return rows.first?.first.map(Self.job)
    }

    /// The condition that the claim `job` came from is still held.
    func held(_ job: Job) -> SQL {
        "\"id\" = \(job.id) AND \"state\" = 'running' AND \"attempts\" = \(job.attempts)"
    }

    /// Extends a claim still held by `lease` from now.
    public func renew(_ job: Job, lease: Duration, now: Timestamp = .now()) async throws {
        try await store.write([
            store.statement("UPDATE \"_basalt_jobs\" SET \"run_at\" = \(now.millisecondsSinceEpoch + lease.milliseconds) WHERE \(held(job))")
        ])
    }

    /// The attempt succeeded.
    public func succeed(_ job: Job, now: Timestamp = .now()) async throws {
        let t = now.millisecondsSinceEpoch
        try await store.write([
            store.statement(
                """
                UPDATE "_basalt_jobs" SET "state" = 'succeeded', "finished_at" = \(t), "updated_at" = \(t), "run_at" = \(t),
                  "last_error" = NULL WHERE \(held(job))
                """
            )
        ])
    }

    /// The attempt failed: due again after `schedule`'s delay, or dead when out of attempts or
    /// the failure is permanent. Returns the state the job is left in.
    @discardableResult
    public func fail(_ job: Job, error: any Error, schedule: RetrySchedule, now: Timestamp = .now()) async throws -> Job.State {
        let t = now.millisecondsSinceEpoch
        let message = String(String(describing: error).prefix(500))
        let dead = error is PermanentJobFailure || job.attempts >= job.maxAttempts
        let next = t + schedule.delay(afterAttempt: job.attempts).milliseconds
        let state: Job.State = dead ? .dead : .failed
        try await store.write([
            store.statement(
                """
                UPDATE "_basalt_jobs" SET "state" = \(state.rawValue), "run_at" = \(dead ? t : next), "updated_at" = \(t),
                  "finished_at" = \(dead ? t : nil), "last_error" = \(message) WHERE \(held(job))
                """
            )
        ])
        return state
    }

    /// Hands a claimed job back untried (the process is stopping): due again at once, the
    /// attempt not counted.
    public func release(_ job: Job, now: Timestamp = .now()) async throws {
        let t = now.millisecondsSinceEpoch
        try await store.write([
            store.statement(
                """
                UPDATE "_basalt_jobs" SET "state" = CASE WHEN "attempts" <= 1 THEN 'pending' ELSE 'failed' END,
                  "attempts" = "attempts" - 1, "run_at" = \(t), "updated_at" = \(t) WHERE \(held(job))
                """
            )
        ])
    }

    /// An admin's retry: a failed, dead or succeeded job is due now with one more attempt
    /// allowed. A running one is left alone (`nil` then, as for an unknown id).
    public func retry(id: String, kind: String? = nil, owner: String? = nil, now: Timestamp = .now()) async throws -> Job? {
        let t = now.millisecondsSinceEpoch
        var scope: SQL = ""
        if let kind { scope = "\(scope) AND \"kind\" = \(kind)" }
        if let owner { scope = "\(scope) AND \"owner\" = \(owner)" }
        let rows = try await store.write([
            store.statement(
                """
                UPDATE "_basalt_jobs" SET "state" = 'pending', "run_at" = \(t), "updated_at" = \(t), "finished_at" = NULL,
                  "max_attempts" = CASE WHEN "max_attempts" > "attempts" THEN "max_attempts" ELSE "attempts" + 1 END
                WHERE "id" = \(id) AND "state" IN ('failed', 'dead', 'succeeded')\(scope)
                RETURNING \(Self.columns)
                """,
                returning: Self.columnTypes
            )
        ])
        wakeups.bump()
        return rows.first?.first.map(Self.job)
    }

    public func job(id: String) async throws -> Job? {
        try await store.fetchRows(
            "SELECT \(Self.columns) FROM \"_basalt_jobs\" WHERE \"id\" = \(id)",
            types: Self.columnTypes
        )
        .first.map(Self.job)
    }

    /// Newest first, keyset-paginated by id (time-ordered), narrowed by state, kind, owner and a
    /// filter from `JobQueue.filter(_:)`.
    public func list(
        limit: Int,
        before: String?,
        states: [Job.State],
        kinds: [String],
        owner: String?,
        filter: FilterExpr? = nil
    ) async throws -> (
        items: [Job], next: String?
    ) {
        var sql: SQL = "SELECT \(Self.columns) FROM \"_basalt_jobs\" t WHERE 1 = 1"
        if let filter { sql = "\(sql) AND \(condition(filter))" }
        if let before { sql = "\(sql) AND \"id\" < \(before)" }
        if !states.isEmpty { sql = "\(sql) AND \"state\" IN (\(SQL.list(states.map { .text($0.rawValue) })))" }
        if !kinds.isEmpty { sql = "\(sql) AND \"kind\" IN (\(SQL.list(kinds.map(SQLValue.text))))" }
        if let owner { sql = "\(sql) AND \"owner\" = \(owner)" }
        var jobs = try await store.fetchRows(
            "\(sql) ORDER BY \"id\" DESC LIMIT \(limit + 1)",
            types: Self.columnTypes
        )
        .map(Self.job)
        var next: String?
        if jobs.count > limit {
            jobs.removeLast()
            next = jobs.last?.id
        }
        return (jobs, next)
    }

    /// How many jobs are in each state (every state, zero included).
    public func depth() async throws -> [(state: Job.State, count: Int64)] {
        let rows = try await store.fetchRows(#"SELECT "state", count(*) FROM "_basalt_jobs" GROUP BY "state""#, types: [.text, .int])
        var counts: [String: Int64] = [:]
        for r in rows { counts[r[0].text ?? ""] = r[1].int ?? 0 }
        return Job.State.allCases.map { ($0, counts[$0.rawValue] ?? 0) }
    }

    /// Forgets finished jobs: succeeded ones after `succeededFor`, dead ones after `deadFor`.
    public func purge(succeededFor: Duration = .seconds(86_400), deadFor: Duration = .seconds(30 * 86_400), now: Timestamp = .now()) async throws {
        let t = now.millisecondsSinceEpoch
        try await store.write([
            store.statement(
                """
                DELETE FROM "_basalt_webhook_attempts" WHERE "delivery_id" IN (SELECT "id" FROM "_basalt_jobs" WHERE
                  ("state" = 'succeeded' AND "finished_at" < \(t - succeededFor.milliseconds))
                  OR ("state" = 'dead' AND "finished_at" < \(t - deadFor.milliseconds)))
                """
            ),
            store.statement(
                """
                DELETE FROM "_basalt_jobs" WHERE ("state" = 'succeeded' AND "finished_at" < \(t - succeededFor.milliseconds))
                  OR ("state" = 'dead' AND "finished_at" < \(t - deadFor.milliseconds))
                """
            ),
        ])
    }
}

extension Duration {
    /// Whole milliseconds.
    public var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
