import Logging
import PostgresNIO
import Synchronization

/// The connection pools of a `PostgresStore`: the current one, and those retired after an outage
/// that still run for calls that hold their connections.
final class Pools: Sendable {
    struct State {
        var current: PostgresClient
        /// Pools to start (the first, and each replacement), consumed by `run`.
        var pending: [PostgresClient]
        /// Since when calls fail for want of a reachable database (nil: they do not).
        var failingSince: ContinuousClock.Instant?
    }
    let state: Mutex<State>
    /// Wakes `run` when a pool is added.
    let wake: AsyncStream<Void>.Continuation
    let wakes: AsyncStream<Void>

    init(first: PostgresClient) {
        state = Mutex(State(current: first, pending: [first], failingSince: nil))
        (wakes, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        wake.yield()  // `run` starts the first pool
    }

    var current: PostgresClient { state.withLock { $0.current } }

    /// A call on `client` could not reach the database. Only the current pool counts: a
    /// retired one's late failures say nothing about the database now.
    func noteFailure(_ client: PostgresClient) {
        state.withLock { s in if s.current === client, s.failingSince == nil { s.failingSince = .now } }
    }

    /// A call on `client` reached the database: it is not down. A pool that is merely saturated
    /// (waits past the timeout while other calls succeed) is therefore never replaced — replacing
    /// it would only open more connections.
    func noteSuccess(_ client: PostgresClient) {
        state.withLock { s in if s.current === client, s.failingSince != nil { s.failingSince = nil } }
    }

    /// Runs every pool until cancelled: the current one, and for `retireAfter` each one replaced.
    /// While calls fail and none succeeds, the current pool is replaced every `replaceEvery` —
    /// once a new pool reaches the database, calls succeed again and the replacing stops. (During
    /// an outage the replaced pools hold no connections, so keeping them for a while is free.)
    func run(replaceEvery: Duration, retireAfter: Duration, makeClient: @escaping @Sendable () -> PostgresClient, logger: Logger) async {
        await withDiscardingTaskGroup { group in
            group.addTask { [self] in
                // The supervisor: replaces the pool while calls fail.
                while !Task.isCancelled {
                    try? await Task.sleep(for: replaceEvery)
                    let replace = state.withLock { s -> Bool in
                        guard let since = s.failingSince, since.duration(to: .now) >= replaceEvery else { return false }
                        let fresh = makeClient()
                        s.current = fresh
                        s.pending.append(fresh)
                        s.failingSince = nil
                        return true
                    }
                    if replace {
                        logger.warning("database unreachable: opening a fresh connection pool")
                        wake.yield()
                    }
                }
            }
            for await _ in wakes {
                let fresh = state.withLock { s -> [PostgresClient] in
                    defer { s.pending.removeAll() }
                    return s.pending
                }
                for client in fresh {
                    group.addTask { [self] in
                        await withTaskGroup(of: Void.self) { pool in
                            pool.addTask { await client.run() }
                            // A pool runs until it is no longer current, then `retireAfter` more
                            // (both sleeps end at once on cancellation: shutdown stops every pool).
                            while !Task.isCancelled, current === client {
                                try? await Task.sleep(for: .seconds(1))
                            }
                            try? await Task.sleep(for: retireAfter)
                            pool.cancelAll()
                        }
                    }
                }
            }
        }
    }
}

extension PostgresStore {
    /// Whether `error` says a connection in use was lost (the server went away mid-call).
    static func isConnectionLoss(_ error: any Error) -> Bool {
        if let e = error as? PSQLError {
            return [.serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .connectionError, .poolClosed].contains(e.code)
                || (e.serverInfo?[.sqlState]).map { $0.hasPrefix("08") || $0.hasPrefix("57P") } == true
        }
        return error is IOError || error is ChannelError
    }
}
