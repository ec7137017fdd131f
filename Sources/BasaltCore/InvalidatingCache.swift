import Synchronization

/// An in-process cache of database reads that invalidations can race. A read notes `epoch()`
/// before it queries and hands it to `store` after: if an invalidation ran in between, the value
/// may be the state that change replaced, so it is not kept. Past `capacity` entries the cache
/// starts over (entries are cheap to read again; a bound matters more than a hit rate).
public final class InvalidatingCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    struct State {
        var entries: [Key: Value] = [:]
        var epoch: UInt64 = 0
    }
    let state = Mutex(State())
    let capacity: Int

    public init(capacity: Int) { self.capacity = capacity }

    public func value(_ key: Key) -> Value? { state.withLock { $0.entries[key] } }

    /// Take it before the read whose result goes to `store` or `modify`.
    public func epoch() -> UInt64 { state.withLock { $0.epoch } }

    /// Keeps `value` unless an invalidation happened since `readAt`.
    public func store(_ key: Key, _ value: Value, readAt: UInt64) {
        state.withLock { s in
            guard s.epoch == readAt else { return }
            if s.entries.count >= capacity { s.entries = [:] }
            s.entries[key] = value
        }
    }

    /// Changes the entry of `key`, if there is one and no invalidation happened since `readAt`.
    public func modify(_ key: Key, readAt: UInt64, _ change: (inout Value) -> Void) {
        state.withLock { s in
            guard s.epoch == readAt, var v = s.entries[key] else { return }
            change(&v)
            s.entries[key] = v
        }
    }

    public func invalidate(_ key: Key) {
        state.withLock { s in
            s.epoch &+= 1
            s.entries.removeValue(forKey: key)
        }
    }

    public func invalidateAll() {
        state.withLock { s in
            s.epoch &+= 1
            s.entries = [:]
        }
    }
}
