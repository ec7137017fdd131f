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
final class TokenPrincipals: Sendable {
    /// What a kept principal must still agree with, taken before the reads it is made from.
    struct Stamp: Equatable {
        var users: UInt64
        var schema: Int64
        var keys: UInt64
    }

    struct Entry {
        var principal: Principal
        var stamp: Stamp
        /// Milliseconds, exclusive.
        var keepUntil: Int64
    }

    let entries = Mutex<[String: Entry]>([:])
    let capacity: Int

    init(capacity: Int = 20_000) { self.capacity = capacity }

    func principal(_ token: String, stamp: Stamp, now: Int64) -> Principal? {
        entries.withLock { m in
            guard let e = m[token] else { return nil }
            guard e.stamp == stamp, now < e.keepUntil else {
                m[token] = nil
                return nil
            }
            return e.principal
        }
    }

    func keep(_ token: String, _ principal: Principal, stamp: Stamp, until keepUntil: Int64) {
        entries.withLock { m in
            // Past the bound start over: entries are cheap to make again.
            if m.count >= capacity { m = [:] }
            m[token] = Entry(principal: principal, stamp: stamp, keepUntil: keepUntil)
        }
    }
}
