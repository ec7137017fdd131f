public import BasaltCore
import BasaltStorage
public import Logging

/// Does the work of one kind of job. Throwing fails the attempt (retried on `schedule`, or dead
/// at once for a `PermanentJobFailure`). A handler may run twice for one job (a crash after the
/// work, before its outcome was recorded), so it must be idempotent or tolerate a repeat.
public protocol JobHandler: Sendable {
    var kind: String { get }
    var schedule: RetrySchedule { get }
    /// How long a claim lasts: longer than one attempt can take.
    var lease: Duration { get }
    func run(_ job: Job) async throws
}

/// Runs due jobs with a few workers per process. Each worker claims one job, runs its handler
/// and records the outcome; an idle worker waits for `JobQueue.wakeups` or the poll interval.
/// Cancellation (graceful shutdown) interrupts handlers and hands their jobs back untried.
public struct JobRunner: Sendable {
    public let queue: JobQueue
    let handlers: [String: any JobHandler]
    let workers: Int
    let pollInterval: Duration
    let logger: Logger

    public init(queue: JobQueue, handlers: [any JobHandler], workers: Int = 4, pollInterval: Duration = .seconds(1), logger: Logger) {
        self.queue = queue
        self.handlers = Dictionary(handlers.map { ($0.kind, $0) }, uniquingKeysWith: { a, _ in a })
        self.workers = workers
        self.pollInterval = pollInterval
        self.logger = logger
    }

    /// Works until cancelled.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            // One worker polls; the others wait to be woken (a local enqueue, or a peer that found
            // work), so an idle process probes the queue once per interval, not once per worker.
            for i in 0..<workers {
                group.addTask { await self.worker(polls: i == 0) }
            }
        }
    }

    func worker(polls: Bool) async {
        var failures = 0
        while !Task.isCancelled {
            let seen = queue.wakeups.value
            do {
                if try await runNext() != nil {
                    failures = 0
                    queue.wakeups.bump()  // there may be more: idle peers look too
                    continue
                }
                failures = 0
            } catch {
                failures += 1
                if failures == 1 || failures % 60 == 0 { logger.warning("job queue unavailable", metadata: ["error": "\(error)"]) }
            }
            // The beacon's wait ignores cancellation: a bump on cancel ends it (shutdown is prompt).
            _ = await withTaskCancellationHandler {
                await queue.wakeups.wait(beyond: seen, timeout: polls ? pollInterval : pollInterval * 30)
            } onCancel: { [queue] in
                queue.wakeups.bump()
            }
        }
    }

    /// Claims and runs one due job of `kinds` (default: every kind handled here); returns the
    /// state the attempt left it in, `nil` when none was due.
    @discardableResult
    public func runNext(kinds: [String]? = nil, now: Timestamp = .now()) async throws -> Job.State? {
        let kinds = kinds ?? handlers.keys.sorted()
        let lease = kinds.compactMap { handlers[$0]?.lease }.max() ?? .seconds(60)
        // A claim that commits must reach the code below, which records or returns it: shutdown's
        // cancellation must not cut the wait for a commit that happens anyway.
        guard let job = try await Self.uncancelled({ [queue] in try await queue.claim(kinds: kinds, lease: lease, now: now) }) else {
            return nil
        }
        guard let handler = handlers[job.kind], !Task.isCancelled else {
            try await Self.uncancelled { [queue] in try await queue.release(job) }
            return .pending
        }
        let outcome: Result<Void, any Error>
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                // The claim is renewed while the handler runs, so a lease can be short: a process
                // that dies leaves its jobs due again within one lease, however long they take.
                group.addTask { [queue] in
                    while true {
                        try await Task.sleep(for: handler.lease / 3)
                        try await queue.renew(job, lease: handler.lease)
                    }
                }
                try await handler.run(job)
                group.cancelAll()
            }
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        let stopping = Task.isCancelled
        // Recorded even when the process is stopping: work done must be marked done (else it is
        // done again), and a job cut short must be handed back (else it waits out its lease).
        return try await Self.uncancelled { [queue, logger] in
            switch outcome {
            case .success:
                try await queue.succeed(job)
                return .succeeded
            case .failure(let error) where error is CancellationError || stopping:
                try await queue.release(job)
                return .pending
            case .failure(let error):
                let state = try await queue.fail(job, error: error, schedule: handler.schedule)
                logger.warning(
                    "job attempt failed",
                    metadata: [
                        "job.id": "\(job.id)", "job.kind": "\(job.kind)", "job.attempts": "\(job.attempts)", "job.state": "\(state.rawValue)",
                        "error": "\(error)",
                    ]
                )
                return state
            }
        }
    }

    /// Runs `body` in a task of its own, which the caller's cancellation does not reach.
    static func uncancelled<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await Task { try await body() }.value
    }
}
