import BasaltCore
public import BasaltStorage
public import Logging
import Synchronization

/// Each process's one reader of the outbox. It reads new events when a write commits here (the
/// store's `commits`) or at the latest every `pollInterval` (other processes' commits); keeps the newest `capacity` in memory; and
/// raises `head` so subscribers wake. Subscribers pull from it at their own pace (`events(after:)`):
/// a slow one falls back to reading the table, so memory never grows with a slow consumer.
public final class EventHub: Sendable {
    public let log: EventLog
    let logger: Logger
    let capacity: Int
    let pollInterval: Duration
    /// The newest sequence read.
    public let head = Beacon()
    let recent = Mutex<[StoredEvent]>([])
    /// Open subscriptions: with none, nothing reads the outbox (an idle hub costs no queries).
    let readers = Mutex(0)

    public init(store: any Store, logger: Logger, capacity: Int = 4096, pollInterval: Duration = .seconds(1)) {
        self.log = EventLog(store: store)
        self.logger = logger
        self.capacity = capacity
        self.pollInterval = pollInterval
    }

    /// Starts at the current end of the outbox: earlier events are read by subscribers that ask.
    public func start() async throws {
        head.raise(to: try await log.bounds().newest)
    }

    /// Reads until cancelled. Errors (a database outage) are logged and retried at the next wake.
    public func run() async {
        let commits = log.store.commits
        var failures = 0
        while !Task.isCancelled {
            let seen = commits.value
            do {
                if readers.withLock({ $0 }) > 0 { try await catchUp() }
                failures = 0
            } catch {
                failures += 1
                if failures == 1 || failures % 60 == 0 {
                    logger.warning("reading the event outbox failed", metadata: ["error": "\(error)"])
                }
            }
            await commits.wait(beyond: seen, timeout: pollInterval)
        }
        head.close()
    }

    /// A subscriber arrives (the hub reads at once) or leaves.
    public func addReader() {
        readers.withLock { $0 += 1 }
        log.store.commits.bump()  // "look now": the hub may have been idle
    }

    public func removeReader() { readers.withLock { $0 -= 1 } }

    /// Reads everything committed since `head`.
    func catchUp() async throws {
        try await log.number()
        while true {
            let batch = try await log.read(after: head.value, limit: 1000)
            guard let last = batch.last else { return }
            recent.withLock { r in
                r.append(contentsOf: batch)
                if r.count > capacity { r.removeFirst(r.count - capacity) }
            }
            head.raise(to: last.sequence)
            if batch.count < 1000 { return }
        }
    }

    /// Up to `limit` events after `sequence` (not beyond `head`): from memory when it still holds
    /// them, else from the table.
    public func events(after sequence: Int64, limit: Int) async throws -> [StoredEvent] {
        let top = head.value
        guard sequence < top else { return [] }
        let cached = recent.withLock { r -> [StoredEvent]? in
            guard let first = r.first, first.sequence <= sequence + 1 else { return nil }
            // Binary search for the first event after `sequence`.
            var lo = 0
            var hi = r.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if r[mid].sequence <= sequence { lo = mid + 1 } else { hi = mid }
            }
            return Array(r[lo..<min(r.count, lo + limit)])
        }
        if let cached { return cached }
        return try await log.read(after: sequence, limit: limit).filter { $0.sequence <= top }
    }
}
