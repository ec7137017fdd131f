import BasaltCore
import BasaltStorage
import Logging

/// Feeds after-hooks from the outbox: like webhooks, each committed event becomes a job per
/// matching hook, enqueued in the transaction that moves the `hooks` cursor, so an event is
/// handed over exactly once across processes and a crash between commit and hook loses nothing.
/// The job queue gives the rest — one claim at a time, in order per record, retries, dead jobs
/// an admin can retry.
public struct AfterHooks: JobHandler {
    public static let kind = "hook"
    public var kind: String { Self.kind }
    public let schedule = RetrySchedule.exponential(first: .seconds(1), cap: .seconds(600), maxAttempts: 20)
    public var lease: Duration { .seconds(60) }

    let hooks: [String: RecordHooks.AfterHook]
    let queue: JobQueue
    let schemas: SchemaService
    var store: any Store { queue.store }
    var cursor: OutboxCursor { OutboxCursor(store: store, name: "hooks") }

    public init(hooks: RecordHooks, queue: JobQueue, schemas: SchemaService) {
        self.hooks = hooks.after
        self.queue = queue
        self.schemas = schemas
    }

    /// Creates the cursor at the outbox's end the first time a program has after-hooks: they run
    /// for changes from then on.
    public func prepare() async throws {
        guard !hooks.isEmpty else { return }
        try await cursor.create(at: try await EventLog(store: store).bounds().newest)
    }

    /// Run by a serving process without after-hooks: removes the cursor, so a backlog no process
    /// will take holds nothing back from retention. (CLI commands never do: they have no hooks,
    /// and the server running beside them may.)
    public func releaseIfUnused() async throws {
        guard hooks.isEmpty else { return }
        try await cursor.remove()
    }

    /// Turns up to `limit` new events into hook jobs; returns how many events it read.
    @discardableResult
    public func dispatch(limit: Int = 500) async throws -> Int {
        guard !hooks.isEmpty else { return 0 }
        // Gone (a process without after-hooks served the same data): from the outbox's end again.
        if try await cursor.position() == nil { try await prepare() }
        let hooks = hooks.values.sorted { $0.name < $1.name }
        return try await cursor.dispatch(self, queue: queue, tables: schemas.current.tables, limit: limit) { e in
            let action = Self.action(e.type)
            return hooks.filter { $0.matches(e.collection, action) }.map(\.name)
        }
    }

    struct Missing: Error, CustomStringConvertible {
        var description: String
    }

    static func action(_ type: String) -> RecordAction? {
        switch type {
        case "basalt.record.created": .create
        case "basalt.record.updated": .update
        case "basalt.record.deleted": .delete
        default: nil
        }
    }

    public func run(_ job: Job) async throws {
        guard let name = job.owner, case .object(let e)? = job.payload["event"] else {
            throw PermanentJobFailure("not a hook job")
        }
        // Not in this build (a rolling deploy): failing as usual lets a process that has it run it.
        guard let hook = hooks[name] else { throw Missing(description: "no after-hook named \(name) in this program") }
        guard let type = e["type"]?.stringValue, let action = Self.action(type), let id = e["id"]?.stringValue,
            let collection = e["source"]?.stringValue.map({ String($0.dropFirst(4)) }),
            let sequence = e["sequence"]?.stringValue.flatMap({ Int64($0) }),
            let time = e["time"]?.stringValue.flatMap(Timestamp.init(rfc3339:))
        else {
            throw PermanentJobFailure("a malformed event")
        }
        try await hook.run(
            HookEvent(
                id: id,
                sequence: sequence,
                type: type,
                action: action,
                collection: collection,
                recordID: e["subject"]?.stringValue ?? "",
                time: time,
                record: e["data"]?.objectValue ?? JSONObject(),
                attempt: job.attempts
            )
        )
    }
}
