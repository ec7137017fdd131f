import Synchronization

/// The principals of access tokens already authenticated, by token. Turning a token into a
/// principal takes its verified claims, the user's record, the session's liveness and the
/// schema's role closure, each from its own cache: a tenth of an authenticated read. A kept
/// principal is reused only while every one of those would still give the same answer:
/// - no user or session changed in this process since its reads (`UserDirectory.epoch`),
/// - the same schema version (roles) and signing key set,
/// - before the earliest of: the token's expiry, the session's end, and `cacheMillis` after
///   the user and session reads it was made from (so other replicas' changes take effect as
///   soon as they do without it).
/// The first two are one stamp for the whole map: when it moves, every entry is dead, and the
/// map starts over. Expired entries are swept as the map grows, so it holds about the tokens
/// used in the last two seconds, and never more than `capacity`.
final class TokenPrincipals: Sendable {
    /// What a kept principal must still agree with, taken before the reads it is made from.
    /// Each part only grows while nothing is restored.
    struct Stamp: Equatable {
        var users: UInt64
        var schema: Int64
        var keys: UInt64

        /// Taken before a change that `other` already follows: what was read under it is stale.
        func precedes(_ other: Stamp) -> Bool {
            self != other && users <= other.users && schema <= other.schema && keys <= other.keys
        }
    }

    struct Entry {
        var principal: Principal
        /// Milliseconds, exclusive.
        var keepUntil: Int64
    }

    struct State {
        var stamp: Stamp?
        var entries: [String: Entry] = [:]
        /// The size at which expired entries are next swept.
        var sweepAt: Int
    }

    let state: Mutex<State>
    let capacity: Int
    let sweepFrom: Int

    init(capacity: Int = 20_000, sweepFrom: Int = 1_024) {
        self.capacity = capacity
        self.sweepFrom = sweepFrom
        state = Mutex(State(sweepAt: sweepFrom))
    }

    var count: Int { state.withLock { $0.entries.count } }

    func principal(_ token: String, stamp: Stamp, now: Int64) -> Principal? {
        state.withLock { s in
            guard s.stamp == stamp else {
                if let kept = s.stamp, !stamp.precedes(kept) { s = State(stamp: stamp, sweepAt: sweepFrom) }
                return nil
            }
            guard let e = s.entries[token] else { return nil }
            guard now < e.keepUntil else {
                s.entries[token] = nil
                return nil
            }
            return e.principal
        }
    }

    func keep(_ token: String, _ principal: Principal, stamp: Stamp, until keepUntil: Int64, now: Int64) {
        state.withLock { s in
            if s.stamp != stamp {
                // A principal read before a change the map already follows is not kept.
                if let kept = s.stamp, stamp.precedes(kept) { return }
                s = State(stamp: stamp, sweepAt: sweepFrom)
            }
            if s.entries.count >= min(s.sweepAt, capacity) {
                s.entries = s.entries.filter { now < $0.value.keepUntil }
                // Past the bound start over: entries are cheap to make again.
                if s.entries.count >= capacity { s.entries = [:] }
                s.sweepAt = max(sweepFrom, 2 * s.entries.count)
            }
            s.entries[token] = Entry(principal: principal, keepUntil: keepUntil)
        }
    }
}
