public import BasaltAuth
public import BasaltCore
public import BasaltStorage
public import Logging

/// One mail to send.
public struct OutgoingMail: Sendable, Equatable {
    public var id: String
    public var to: String
    public var subject: String
    public var body: String
    public init(id: String, to: String, subject: String, body: String) {
        self.id = id
        self.to = to
        self.subject = subject
        self.body = body
    }
}

/// Delivers a mail (SMTP, or the log in development). Throwing means "try again later".
public protocol MailTransport: Sendable {
    func send(_ mail: OutgoingMail) async throws
}

/// Development transport: writes each mail to the log instead of sending it.
public struct LogMailTransport: MailTransport {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }
    public func send(_ mail: OutgoingMail) async throws {
        logger.notice(
            "mail (dev mode: not sent)",
            metadata: ["mail.to": "\(mail.to)", "mail.subject": "\(mail.subject)", "mail.body": "\(mail.body)"]
        )
    }
}

/// The durable mail queue (`_basalt_mail_queue`). A flow enqueues its mail in the same
/// transaction as the token it carries, so a committed token always has its mail and a mail
/// survives a restart. Bodies carry single-use tokens, so they are sealed with the master key: a
/// copy of the database alone yields no live token. Sent mail is purged after a day. `deliverDue` sends what is due, retrying with exponential backoff
/// (2 s, 4 s … at most 1 h, 12 attempts). On PostgreSQL several replicas may run it: a mail is
/// claimed by moving its next attempt forward before sending, so only one replica sends it.
public struct MailOutbox: Sendable {
    public let store: any Store
    public let transport: any MailTransport
    let secrets: SecretBox
    let logger: Logger
    public static let maximumAttempts: Int64 = 12

    public init(store: any Store, transport: any MailTransport, secrets: SecretBox, logger: Logger) {
        self.store = store
        self.transport = transport
        self.secrets = secrets
        self.logger = logger
    }

    public func enqueue(to: String, subject: String, body: String, now: Timestamp = .now()) throws -> SQLStatement {
        let id = RecordID.make(at: now)
        let sealed = try secrets.seal(Array(body.utf8))
        let t = now.millisecondsSinceEpoch
        return store.statement(
            """
            INSERT INTO "_basalt_mail_queue" ("id", "recipient", "subject", "body", "created_at", "attempts", "next_attempt_at")
            VALUES (\(id), \(to), \(subject), \(sealed), \(t), 0, \(t))
            """
        )
    }

    /// A queued body in clear text (for delivery, and for tests that play the recipient).
    public func open(_ sealed: String) throws -> String {
        String(decoding: try secrets.open(sealed), as: UTF8.self)
    }

    struct QueuedMail: StoredRow {
        static let columns: [SQLColumnType] = [.text, .text, .text, .text, .int, .int]
        var id: String?
        var recipient: String?
        var subject: String?
        /// Sealed with the master key.
        var body: String?
        var attempts: Int64?
        var nextAttemptAt: Int64?
        init(_ r: inout RowReader) {
            id = r.text()
            recipient = r.text()
            subject = r.text()
            body = r.text()
            attempts = r.int()
            nextAttemptAt = r.int()
        }
    }

    /// Sends up to `limit` due mails; returns how many were sent.
    @discardableResult
    public func deliverDue(limit: Int = 20, now: Timestamp = .now()) async throws -> Int {
        let t = now.millisecondsSinceEpoch
        let due = try await store.fetch(
            """
            SELECT "id", "recipient", "subject", "body", "attempts", "next_attempt_at" FROM "_basalt_mail_queue"
            WHERE "sent_at" IS NULL AND "next_attempt_at" <= \(t) AND "attempts" < \(Self.maximumAttempts)
            ORDER BY "next_attempt_at" LIMIT \(limit)
            """,
            as: QueuedMail.self
        )
        var sent = 0
        for r in due {
            guard let id = r.id, let attempts = r.attempts, let next = r.nextAttemptAt else { continue }
            // Claim: whoever moves next_attempt_at first sends; a crash mid-send retries after the lease.
            // Shutdown stops at a mail, not inside its claim: a claim that commits is always
            // followed by its bookkeeping below (both `uncancelled`).
            guard !Task.isCancelled else { break }
            let lease = t + 60_000
            let claim = store.statement(
                """
                UPDATE "_basalt_mail_queue" SET "next_attempt_at" = \(lease)
                WHERE "id" = \(id) AND "next_attempt_at" = \(next) AND "sent_at" IS NULL
                """,
                expect: .one
            )
            let claimed = try await Self.uncancelled { [store] in
                do {
                    _ = try await store.write([claim])
                    return true
                } catch StoreError.expectationFailed {
                    return false
                }
            }
            guard claimed else { continue }
            let outcome: Result<Void, any Error>
            do {
                let mail = OutgoingMail(id: id, to: r.recipient ?? "", subject: r.subject ?? "", body: try open(r.body ?? ""))
                try await transport.send(mail)
                outcome = .success(())
            } catch {
                outcome = .failure(error)
            }
            // A mail sent must be marked sent (else it goes out twice), and a send cut short by
            // shutdown must hand its claim back (else the mail waits out the lease after the restart).
            let delivered = try await Self.uncancelled { try await self.record(outcome, id: id, attempts: attempts, claimedFrom: next) }
            if delivered { sent += 1 }
        }
        return sent
    }

    /// Runs `body` in a task of its own, which the caller's cancellation (shutdown) does not reach:
    /// for database steps that must not be cut off once their pair has happened.
    static func uncancelled<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await Task { try await body() }.value
    }

    /// Records how one attempt ended; returns whether the mail went out.
    private func record(_ outcome: Result<Void, any Error>, id: String, attempts: Int64, claimedFrom next: Int64) async throws -> Bool {
        switch outcome {
        case .success:
            _ = try await store.write([
                store.statement(
                    """
                    UPDATE "_basalt_mail_queue"
                    SET "sent_at" = \(Timestamp.now().millisecondsSinceEpoch), "attempts" = \(attempts + 1), "last_error" = NULL
                    WHERE "id" = \(id)
                    """
                )
            ])
            logger.info("mail sent", metadata: ["mail.id": "\(id)"])
            return true
        case .failure(let error) where error is CancellationError:
            // Not an attempt: the process is stopping. The mail is due again as it was.
            _ = try await store.write([
                store.statement(#"UPDATE "_basalt_mail_queue" SET "next_attempt_at" = \#(next) WHERE "id" = \#(id) AND "sent_at" IS NULL"#)
            ])
            return false
        case .failure(let error):
            let delay = min(Int64(2_000) << min(attempts, 20), 3_600_000)
            let lastError = String(describing: error).prefix(500).description
            _ = try await store.write([
                store.statement(
                    """
                    UPDATE "_basalt_mail_queue"
                    SET "attempts" = \(attempts + 1), "next_attempt_at" = \(Timestamp.now().millisecondsSinceEpoch + delay),
                        "last_error" = \(lastError)
                    WHERE "id" = \(id)
                    """
                )
            ])
            logger.warning(
                "mail delivery failed; will retry",
                metadata: ["mail.id": "\(id)", "mail.attempts": "\(attempts + 1)", "error": "\(error)"]
            )
            return false
        }
    }
}
