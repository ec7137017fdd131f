public import BasaltAuth
public import BasaltCore
public import BasaltStorage

/// `POST /v1/realtime/tickets` (API.md §10): browsers cannot set headers on EventSource or
/// WebSocket, so a signed-in caller trades its credential for a ticket that opens one stream
/// within 60 seconds. The ticket stands for the credential itself (sealed with the master key, in
/// the database so any replica can redeem it): the stream re-checks that credential as any other
/// stream does, and ends with it.
public struct RealtimeTickets: Sendable {
    let store: any Store
    let secrets: SecretBox
    public static let lifetimeSeconds: Int64 = 60

    public init(store: any Store, secrets: SecretBox) {
        self.store = store
        self.secrets = secrets
    }

    /// A new ticket for `credential` (the caller's `Authorization` header value).
    public func issue(credential: String, now: Timestamp = .now()) async throws -> String {
        let ticket = "rtt_" + Digest.randomToken(bytes: 32)
        let sealed = try secrets.seal(Array(credential.utf8))
        let expires = now.millisecondsSinceEpoch + Self.lifetimeSeconds * 1000
        try await store.write([
            store.statement(
                """
                INSERT INTO "_basalt_realtime_tickets" ("ticket_hash", "credential", "expires_at")
                VALUES (\(Digest.sha256Hex(ticket)), \(sealed), \(expires))
                """
            )
        ])
        return ticket
    }

    /// The credential a live, unused ticket stands for; the ticket is used up. `401` otherwise.
    public func redeem(_ ticket: String, now: Timestamp = .now()) async throws -> String {
        let refused = BasaltError(.unauthenticated, "The ticket is unknown, used or expired; request a new one", bearerError: "invalid_token")
        guard ticket.hasPrefix("rtt_"), ticket.utf8.count < 100 else { throw refused }
        let t = now.millisecondsSinceEpoch
        let rows = try await store.write([
            store.statement(
                """
                UPDATE "_basalt_realtime_tickets" SET "used_at" = \(t)
                WHERE "ticket_hash" = \(Digest.sha256Hex(ticket)) AND "used_at" IS NULL AND "expires_at" > \(t)
                RETURNING "credential"
                """,
                returning: [.text]
            )
        ])
        guard let sealed = rows.first?.first?.first?.text, let bytes = try? secrets.open(sealed) else { throw refused }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Drops tickets that expired (used or not).
    public func purge(now: Timestamp = .now()) async throws {
        try await store.write([store.statement(#"DELETE FROM "_basalt_realtime_tickets" WHERE "expires_at" < \#(now.millisecondsSinceEpoch)"#)])
    }
}
