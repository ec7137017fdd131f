public import BasaltStorage
import Logging
import PostgresNIO

/// LISTEN/NOTIFY between the processes sharing one database. The NOTIFY is not in the writes'
/// transactions (a transaction that notifies takes a database-wide lock at commit, which would
/// serialize every writing commit); a notifier sends one after this process's commits instead,
/// only when the outbox grew, at most every `spacing` — many commits, one notification.
/// Polling stays the fallback: a lost notification delays a reader to its next poll, no more.
extension PostgresStore: CommitRelaying {
    static let channel = "basalt_commits"

    /// Notifications name the schema: deployments (and tests) sharing a database ignore each other's.
    var relayTag: String { schemaName ?? "" }

    public func relayCommits() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.notifyOthers(spacing: .milliseconds(5)) }
            group.addTask { await self.listenToOthers() }
        }
    }

    /// After each local commit (coalesced): when the outbox has rows it has not announced yet,
    /// one `pg_notify` — a single round trip that reads the outbox's end and notifies.
    func notifyOthers(spacing: Duration) async {
        var announced: Int64 = 0
        var seen = localCommits.value
        while !Task.isCancelled {
            guard await localCommits.wait(beyond: seen, timeout: .seconds(1)) else { continue }
            seen = localCommits.value
            do {
                let rows = try await fetch(
                    SQLQuery(
                        sql: """
                            SELECT m, CASE WHEN m > $1 THEN (SELECT 1 FROM pg_notify('\(Self.channel)', $2)) END
                            FROM (SELECT max("position") AS m FROM "_basalt_events") s
                            """,
                        binds: [.int(announced), .text(relayTag)]
                    ),
                    types: [.int, .int]
                )
                if let row = rows.first, row[1].int != nil, let m = row[0].int { announced = m }
            } catch {
                logger.debug("commit notification failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: spacing)
        }
    }

    /// Holds one pooled connection that LISTENs; each notification for this schema raises
    /// `commits`. A lost connection is replaced after a second (and `commits` raised, since
    /// notifications may have been missed meanwhile).
    func listenToOthers() async {
        let tag = relayTag
        while !Task.isCancelled {
            do {
                try await pools.current.withConnection { conn in
                    try await conn.listen(on: Self.channel) { notifications in
                        self.commits.bump()
                        for try await n in notifications where n.payload == tag { self.commits.bump() }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.debug("listening for other processes' commits failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}
