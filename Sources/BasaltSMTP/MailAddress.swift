/// One mailbox as written in `MailMessage`: `user@example.com` or `Name <user@example.com>`.
struct MailAddress: Equatable {
    /// The addr-spec used in `MAIL FROM:<…>` / `RCPT TO:<…>`.
    var address: String
    var displayName: String?

    /// Parses and validates `text`; `role` names the field in errors ("from", "to").
    init(parsing text: String, role: String) throws {
        guard !text.containsLineBreak else {
            throw SMTPError.invalid("header injection: line break in the \(role) address")
        }
        let trimmed = text.trimmingASCIIWhitespace()
        if trimmed.hasSuffix(">"), let open = trimmed.lastIndex(of: "<") {
            self.address = String(trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)])
            var name = Substring(trimmed[..<open]).trimmingASCIIWhitespace()
            if name.count >= 2, name.hasPrefix("\""), name.hasSuffix("\"") {
                name = name.dropFirst().dropLast()
            }
            self.displayName = name.isEmpty ? nil : String(name)
        } else {
            self.address = String(trimmed)
            self.displayName = nil
        }
        try Self.validate(addrSpec: self.address, role: role)
        if let displayName, displayName.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw SMTPError.invalid("control character in the \(role) display name")
        }
    }

    /// A deliberately plain check: something@something, at most 254 bytes (RFC 5321 §4.5.3.1),
    /// nothing that would break the envelope command or the header.
    private static func validate(addrSpec: String, role: String) throws {
        let bytes = Array(addrSpec.utf8)
        guard let at = bytes.lastIndex(of: UInt8(ascii: "@")), at > 0, at < bytes.count - 1, bytes.count <= 254 else {
            throw SMTPError.invalid("the \(role) address is not a valid address")
        }
        let forbidden = Set("<>(),;: \t\\".utf8)
        guard !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F || forbidden.contains($0) }) else {
            throw SMTPError.invalid("the \(role) address contains a forbidden character")
        }
    }

    /// Whether the address needs the SMTPUTF8 extension (RFC 6531).
    var isASCII: Bool { self.address.utf8.allSatisfy { $0 < 0x80 } }

    /// The mailbox as a header writes it: the bare address, or the display name (as atoms, a
    /// quoted-string, or encoded-words when it is not ASCII) followed by `<address>`.
    var headerValue: String {
        guard let displayName else { return self.address }
        return "\(Self.phrase(displayName)) <\(self.address)>"
    }

    /// Long names become encoded-words too, folded one per line, so no header line nears
    /// RFC 5322's 998-character limit.
    private static func phrase(_ name: String) -> String {
        guard MIMEEncoding.isSafeHeaderText(name), name.utf8.count <= 200 else {
            return MIMEEncoding.encodedWords(name).joined(separator: "\r\n ")
        }
        let atext = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~ ".utf8)
        if name.utf8.allSatisfy({ atext.contains($0) }) { return name }
        var quoted = "\""
        for character in name {
            if character == "\"" || character == "\\" { quoted.append("\\") }
            quoted.append(character)
        }
        return quoted + "\""
    }
}

extension StringProtocol {
    fileprivate func trimmingASCIIWhitespace() -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        let text = Substring(self)
        guard let first = text.firstIndex(where: { !isSpace($0) }), let last = text.lastIndex(where: { !isSpace($0) })
        else { return text[text.endIndex...] }
        return text[first...last]
    }
}

extension String {
    /// CR or LF anywhere. Checked on bytes: "\r\n" is one `Character`, equal to neither "\r" nor "\n".
    var containsLineBreak: Bool {
        self.utf8.contains { $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") }
    }
}
