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

/// Mail on the durable job queue (kind `mail`). A flow enqueues its mail in the same transaction
/// as the token it carries, so a committed token always has its mail and a mail survives a
/// restart. Bodies carry single-use tokens, so they are sealed with the master key: a copy of the
/// database alone yields no live token. Retries back off from 2 s to at most 1 h, 12 attempts.
public struct MailOutbox: JobHandler {
    public let queue: JobQueue
    public let transport: any MailTransport
    let secrets: SecretBox
    let logger: Logger
    public static let kind = "mail"
    public static let maximumAttempts: Int64 = 12
    public var kind: String { Self.kind }
    public let schedule = RetrySchedule.exponential(first: .seconds(2), cap: .seconds(3600), maxAttempts: maximumAttempts)
    public var lease: Duration { .seconds(30) }

    public init(queue: JobQueue, transport: any MailTransport, secrets: SecretBox, logger: Logger) {
        self.queue = queue
        self.transport = transport
        self.secrets = secrets
        self.logger = logger
    }

    public func enqueue(to: String, subject: String, body: String, now: Timestamp = .now()) throws -> SQLStatement {
        let sealed = try secrets.seal(Array(body.utf8))
        let payload = JSONValue.object(JSONObject([("to", .string(to)), ("subject", .string(subject)), ("body", .string(sealed))]))
        defer { queue.wakeups.bump() }
        return queue.enqueue(.init(kind: Self.kind, payload: payload, owner: to, maxAttempts: Self.maximumAttempts), now: now).statement
    }

    /// A queued body in clear text (for delivery, and for tests that play the recipient).
    public func open(_ sealed: String) throws -> String {
        String(decoding: try secrets.open(sealed), as: UTF8.self)
    }

    public func run(_ job: Job) async throws {
        guard let to = job.payload["to"]?.stringValue, let subject = job.payload["subject"]?.stringValue,
            let sealed = job.payload["body"]?.stringValue
        else { throw PermanentJobFailure("malformed mail job") }
        try await transport.send(OutgoingMail(id: job.id, to: to, subject: subject, body: try open(sealed)))
        logger.info("mail sent", metadata: ["mail.id": "\(job.id)"])
    }

    /// Sends the mail that is due now, here (tests, and `basalt` commands without workers);
    /// returns how many were sent.
    @discardableResult
    public func deliverDue(limit: Int = 20) async throws -> Int {
        let runner = JobRunner(queue: queue, handlers: [self], workers: 1, logger: logger)
        var sent = 0
        for _ in 0..<limit {
            guard let state = try await runner.runNext(kinds: [Self.kind]) else { break }
            if state == .succeeded { sent += 1 }
        }
        return sent
    }
}
