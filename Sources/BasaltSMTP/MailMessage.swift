/// A plain-text email.
///
/// Addresses are `user@example.com` or `Display Name <user@example.com>`; the display name may be
/// any Unicode text. Line breaks in any header value or address are refused (header injection).
///
/// ```swift
/// let message = MailMessage(from: "Basalt <noreply@example.com>", to: ["ada@example.com"],
///                           subject: "Réinitialiser le mot de passe", textBody: "Bonjour…\n")
/// try await client.send(message)
/// ```
public struct MailMessage: Sendable {
    public var from: String
    public var to: [String]
    public var subject: String
    /// Any Unicode text; sent as UTF-8 in quoted-printable, line endings normalized to CRLF.
    public var textBody: String
    /// `<unique@domain>`; when `nil` the client generates `<uuid@heloName>`.
    public var messageID: String?

    public init(from: String, to: [String], subject: String, textBody: String, messageID: String? = nil) {
        self.from = from
        self.to = to
        self.subject = subject
        self.textBody = textBody
        self.messageID = messageID
    }
}
