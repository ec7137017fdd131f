public import BasaltCore
import Synchronization

/// Sign-in throttling (API.md §8/§11), keyed so that nobody can lock an account's owner out:
/// - per submitted email *and* client address (whether or not an account has the email, so the
///   answer reveals nothing): a quota (default 10 a minute) and, after `freeFailuresPerEmail`
///   consecutive failures, a lockout that doubles with each further failure (1 s, 2 s, 4 s … at
///   most 15 min). Failures from one address never lock the account from another.
/// - per client address: a quota (60 a minute) and a lockout after 20 failures, whatever emails.
/// - per email across all addresses: only a ceiling, ten times one address's quota, so a flood
///   from many addresses is slowed without a single one being able to deny the owner.
/// In-memory per process, like the rate limiter; state older than 15 minutes is forgotten.
public final class LoginThrottle: Sendable {
    public struct Settings: Sendable {
        public var attemptsPerMinutePerEmail: Int
        public var attemptsPerMinutePerAddress: Int
        public var freeFailuresPerEmail: Int
        public var freeFailuresPerAddress: Int
        public var maximumLockout: Duration
        public init(
            attemptsPerMinutePerEmail: Int = 10,
            attemptsPerMinutePerAddress: Int = 60,
            freeFailuresPerEmail: Int = 5,
            freeFailuresPerAddress: Int = 20,
            maximumLockout: Duration = .seconds(900)
        ) {
            self.attemptsPerMinutePerEmail = attemptsPerMinutePerEmail
            self.attemptsPerMinutePerAddress = attemptsPerMinutePerAddress
            self.freeFailuresPerEmail = freeFailuresPerEmail
            self.freeFailuresPerAddress = freeFailuresPerAddress
            self.maximumLockout = maximumLockout
        }
    }

    struct Entry {
        var windowStart: Int64 = 0
        var attempts = 0
        var failures = 0
        var lockedUntil: Int64 = 0
        var touched: Int64 = 0
    }

    public let settings: Settings
    let entries = Mutex<[String: Entry]>([:])

    public init(settings: Settings = Settings()) { self.settings = settings }

    /// Counts an attempt for `email` from `address`; throws `429` with `Retry-After` when either
    /// is over its quota or locked out.
    public func begin(email: String, address: String, now: Timestamp = .now()) throws(BasaltError) {
        let t = now.millisecondsSinceEpoch
        let ceiling = settings.attemptsPerMinutePerEmail * Self.emailCeilingFactor
        let keys = [
            (Self.pair(email, address), settings.attemptsPerMinutePerEmail), ("a:" + address, settings.attemptsPerMinutePerAddress),
            ("e:" + email, ceiling),
        ]
        let wait: Int64 = entries.withLock { map in
            map.trim(to: 100_000) { t - $0.touched >= 900_000 }
            // First judge, then count: an attempt refused by one key does not count against the
            // others (refused floods from one address must not reach the per-email ceiling).
            var current: [(String, Entry)] = []
            var wait: Int64 = 0
            for (key, quota) in keys {
                var e = map[key] ?? Entry()
                if t - e.touched > 900_000 { e = Entry() }
                if t - e.windowStart >= 60_000 {
                    e.windowStart = t
                    e.attempts = 0
                }
                if quota > 0, e.attempts >= quota { wait = max(wait, e.windowStart + 60_000 - t) }
                if e.lockedUntil > t { wait = max(wait, e.lockedUntil - t) }
                current.append((key, e))
            }
            if wait == 0 {
                for (key, var e) in current {
                    e.attempts += 1
                    e.touched = t
                    map[key] = e
                }
            }
            return wait
        }
        if wait > 0 {
            let seconds = (wait + 999) / 1000
            throw BasaltError(.rateLimited, "Too many sign-in attempts; retry in \(seconds) s", retryAfter: Int(seconds))
        }
    }

    public func failed(email: String, address: String, now: Timestamp = .now()) {
        let t = now.millisecondsSinceEpoch
        let maxMs = Int64(settings.maximumLockout.components.seconds) * 1000
        entries.withLock { map in
            for (key, free) in [(Self.pair(email, address), settings.freeFailuresPerEmail), ("a:" + address, settings.freeFailuresPerAddress)] {
                var e = map[key] ?? Entry()
                e.failures += 1
                e.touched = t
                if e.failures >= free {
                    let exponent = min(e.failures - free, 20)
                    e.lockedUntil = t + min(Int64(1000) << exponent, maxMs)
                }
                map[key] = e
            }
        }
    }

    public func succeeded(email: String, address: String) {
        entries.withLock { map in
            let key = Self.pair(email, address)
            if var e = map[key] {
                e.failures = 0
                e.lockedUntil = 0
                map[key] = e
            }
        }
    }

    /// The email-and-address key (U+001F cannot appear in either).
    static func pair(_ email: String, _ address: String) -> String { "ea:" + email + "\u{1F}" + address }
    /// The per-email ceiling across addresses, in multiples of one address's quota.
    static let emailCeilingFactor = 10
}
