/// A failed SMTP send: a reply the server gave that the step did not expect, a connection or
/// protocol failure, or a message or configuration refused before connecting.
///
/// `isTransient` says whether retrying later may succeed: 4xx replies, timeouts and connection
/// failures are transient; 5xx replies and invalid input are not.
///
/// ```swift
/// do { try await client.send(message) } catch let error as SMTPError where error.isTransient {
///     // queue for a retry
/// }
/// ```
public struct SMTPError: Error, Sendable, CustomStringConvertible {
    /// The server's reply code (`550`), or `nil` when no reply caused the failure.
    public var code: Int?
    /// What went wrong; for a reply, the server's text. Never contains credentials.
    public var message: String
    /// Whether a later attempt may succeed (4xx, timeouts, connection failures).
    public var isTransient: Bool
    /// The step that failed (`"RCPT"`, `"STARTTLS"`), when known.
    public var command: String?
    /// The error beneath (I/O, TLS), for logs only.
    public var underlying: (any Error)?

    /// For callers and test doubles that report SMTP failures of their own.
    public init(code: Int?, message: String, isTransient: Bool, command: String? = nil, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.isTransient = isTransient
        self.command = command
        self.underlying = underlying
    }

    public var description: String {
        var text = "SMTPError("
        if let code { text += "\(code) " }
        if let command { text += "after \(command): " }
        text += message
        if let underlying { text += "; underlying: \(String(describing: underlying))" }
        return text + ")"
    }
}

extension SMTPError {
    /// The server answered `reply` where the step `command` expected something else.
    static func unexpectedReply(_ reply: SMTPReply, command: String) -> SMTPError {
        SMTPError(
            code: reply.code,
            message: reply.text.isEmpty ? "unexpected reply" : reply.text,
            isTransient: (400..<500).contains(reply.code),
            command: command
        )
    }

    /// The message or configuration cannot be sent as given; retrying will not help.
    static func invalid(_ message: String) -> SMTPError {
        SMTPError(code: nil, message: message, isTransient: false)
    }

    /// The server speaks something other than SMTP as we know it (malformed or oversized replies).
    static func protocolViolation(_ message: String) -> SMTPError {
        SMTPError(code: nil, message: message, isTransient: true)
    }

    /// No reply arrived within the configured timeout.
    static func timeout(_ duration: Duration) -> SMTPError {
        SMTPError(code: nil, message: "no reply within \(duration)", isTransient: true)
    }

    /// The server closed the connection before replying.
    static let connectionClosed = SMTPError(code: nil, message: "connection closed by server", isTransient: true)

    /// Wraps an I/O or TLS error as a transient connection failure.
    static func connection(_ error: any Error, command: String?) -> SMTPError {
        if var smtpError = error as? SMTPError {
            if smtpError.command == nil { smtpError.command = command }
            return smtpError
        }
        return SMTPError(
            code: nil,
            message: "connection failed",
            isTransient: true,
            command: command,
            underlying: error
        )
    }
}
