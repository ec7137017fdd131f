import Synchronization

/// A number that only grows, and tasks waiting for it to pass a value: the count of commits a
/// store has made (the event hub reads the outbox after one instead of at its next poll), the
/// newest event sequence a process has read (subscribers wait for it). Many waiters, one lock,
/// no task per waiter unless it waits with a timeout.
public final class Beacon: Sendable {
    struct State {
        var value: Int64
        var nextID = 0
        var waiters: [Int: (beyond: Int64, continuation: CheckedContinuation<Void, Never>)] = [:]
        /// Waits whose task was cancelled (kept only while the wait runs).
        var cancelled: Set<Int> = []
        var closed = false
    }
    let state: Mutex<State>

    public init(_ value: Int64 = 0) { state = Mutex(State(value: value)) }

    public var value: Int64 { state.withLock { $0.value } }
    public var isClosed: Bool { state.withLock { $0.closed } }

    /// Raises the value (never lowers it) and wakes the waiters it passes.
    public func raise(to v: Int64) {
        let woken = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            guard v > s.value else { return [] }
            s.value = v
            var out: [CheckedContinuation<Void, Never>] = []
            for (id, w) in s.waiters where w.beyond < v {
                out.append(w.continuation)
                s.waiters[id] = nil
            }
            return out
        }
        for c in woken { c.resume() }
    }

    /// One more: a commit happened.
    public func bump() {
        raise(to: state.withLock { $0.value } &+ 1)
    }

    /// Wakes every waiter for good (shutdown).
    public func close() {
        let woken = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.closed = true
            defer { s.waiters = [:] }
            return s.waiters.values.map(\.continuation)
        }
        for c in woken { c.resume() }
    }

    /// Returns once the value passes `beyond`, the beacon closes, `timeout` passes or the task is
    /// cancelled; at once if one of these already happened. Returns whether the value is beyond
    /// `beyond`.
    @discardableResult
    public func wait(beyond: Int64, timeout: Duration) async -> Bool {
        let id = state.withLock { s -> Int in
            defer { s.nextID += 1 }
            return s.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { s -> Bool in
                    if s.value > beyond || s.closed || s.cancelled.contains(id) { return true }
                    s.waiters[id] = (beyond, c)
                    return false
                }
                if ready {
                    c.resume()
                    return
                }
                Task {
                    try? await Task.sleep(for: timeout)
                    self.resume(id)
                }
            }
        } onCancel: {
            // Before the waiter is registered, the mark makes it return at once.
            state.withLock { _ = $0.cancelled.insert(id) }
            resume(id)
        }
        state.withLock { _ = $0.cancelled.remove(id) }
        return value > beyond
    }

    func resume(_ id: Int) {
        state.withLock { $0.waiters.removeValue(forKey: id)?.continuation }?.resume()
    }
}
