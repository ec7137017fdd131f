import Synchronization

/// The deadlines of the connection leases being waited for, kept by one sweeper for all of them.
///
/// A timer per call (`Task.sleep` raced against the lease in a task group) cost 15–25% of a
/// PostgreSQL read's throughput: each sleep is a dispatch timer that stays armed for the whole
/// timeout after its call ended, so at a few thousand calls a second tens of thousands of timers
/// were pending. Here a call registers its deadline, the sweeper checks every `tick`, and a call
/// that ends before its deadline just removes its entry. A deadline fires at most `tick` late.
///
/// The sweeper runs only while entries exist: the first registration starts it, and it ends once
/// it finds none, so a store that is not used holds no task.
final class LeaseDeadlines: Sendable {
    struct Entry {
        var deadline: ContinuousClock.Instant
        var expire: @Sendable () -> Void
    }
    struct State {
        var entries: [UInt64: Entry] = [:]
        var next: UInt64 = 0
        var sweeping = false
    }
    let state = Mutex(State())
    let tick: Duration

    init(tick: Duration) { self.tick = tick }

    /// Calls `expire` (once, from the sweeper) when `deadline` passes before ``remove(_:)``.
    func add(deadline: ContinuousClock.Instant, expire: @escaping @Sendable () -> Void) -> UInt64 {
        let (ticket, start) = state.withLock { s -> (UInt64, Bool) in
            s.next &+= 1
            s.entries[s.next] = Entry(deadline: deadline, expire: expire)
            defer { s.sweeping = true }
            return (s.next, !s.sweeping)
        }
        if start { Task.detached { await self.sweep() } }
        return ticket
    }

    func remove(_ ticket: UInt64) { state.withLock { _ = $0.entries.removeValue(forKey: ticket) } }

    /// The number of deadlines registered (tests).
    var count: Int { state.withLock { $0.entries.count } }

    func sweep() async {
        while true {
            try? await Task.sleep(for: tick)
            let now = ContinuousClock.now
            let (due, more) = state.withLock { s -> ([@Sendable () -> Void], Bool) in
                var due: [@Sendable () -> Void] = []
                for (ticket, e) in s.entries where e.deadline <= now {
                    due.append(e.expire)
                    s.entries.removeValue(forKey: ticket)
                }
                if s.entries.isEmpty { s.sweeping = false }
                return (due, s.sweeping)
            }
            for expire in due { expire() }
            if !more { return }
        }
    }
}
