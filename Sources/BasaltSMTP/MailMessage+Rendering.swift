import Foundation

/// A message checked and rendered, ready for the envelope commands and DATA.
struct RenderedMail {
    var reversePath: String
    var forwardPaths: [String]
    /// Some address is not ASCII: the server must offer SMTPUTF8 (RFC 6531).
    var needsSMTPUTF8: Bool
    /// The RFC 5322 message with CRLF line endings, before dot-stuffing.
    var content: [UInt8]
}

extension MailMessage {
    /// Validates every header value and address, then renders the message. Runs before any
    /// connection is made, so a refused message never reaches a server.
    ///
    /// - Parameters:
    ///   - heloName: the domain of a generated Message-ID.
    ///   - secondsSince1970: the Date header's time.
    func render(heloName: String, secondsSince1970: Int64) throws -> RenderedMail {
        let from = try MailAddress(parsing: self.from, role: "from")
        guard !self.to.isEmpty else { throw SMTPError.invalid("the message has no recipients") }
        let recipients = try self.to.map { try MailAddress(parsing: $0, role: "to") }
        guard !self.subject.containsLineBreak else {
            throw SMTPError.invalid("header injection: line break in the subject")
        }
        let messageID =
            try self.messageID.map(Self.normalizedMessageID)
            ?? "<\(UUID().uuidString.lowercased())@\(heloName)>"

        var headers: [String] = []
        headers.append("Date: " + MIMEEncoding.rfc5322Date(secondsSince1970: secondsSince1970))
        headers.append(Self.foldedAddressList(name: "From", [from.headerValue]))
        headers.append(Self.foldedAddressList(name: "To", recipients.map(\.headerValue)))
        if MIMEEncoding.isSafeHeaderText(self.subject) {
            headers.append("Subject: " + self.subject)
        } else {
            headers.append("Subject: " + MIMEEncoding.encodedWords(self.subject).joined(separator: "\r\n "))
        }
        headers.append("Message-ID: " + messageID)
        headers.append("MIME-Version: 1.0")
        headers.append("Content-Type: text/plain; charset=utf-8")
        headers.append("Content-Transfer-Encoding: quoted-printable")

        var content = Array(headers.joined(separator: "\r\n").utf8)
        content += MIMEEncoding.crlf + MIMEEncoding.crlf
        content += MIMEEncoding.quotedPrintable(self.textBody)
        return RenderedMail(
            reversePath: from.address,
            forwardPaths: recipients.map(\.address),
            needsSMTPUTF8: !from.isASCII || recipients.contains { !$0.isASCII },
            content: content
        )
    }

    /// `id@domain` or `<id@domain>` → `<id@domain>`; no whitespace, controls or brackets inside.
    private static func normalizedMessageID(_ id: String) throws -> String {
        guard !id.containsLineBreak else {
            throw SMTPError.invalid("header injection: line break in the message ID")
        }
        var core = Substring(id)
        if core.hasPrefix("<") && core.hasSuffix(">") && core.count >= 2 { core = core.dropFirst().dropLast() }
        guard !core.isEmpty,
            core.utf8.allSatisfy({ (0x21...0x7E).contains($0) && $0 != UInt8(ascii: "<") && $0 != UInt8(ascii: ">") })
        else { throw SMTPError.invalid("the message ID must be printable ASCII without spaces") }
        return "<\(core)>"
    }

    /// `To: a@x, b@y` folded before an address when the line would pass 78 characters. A value
    /// may itself be folded (long encoded display names); lengths count from its last line.
    static func foldedAddressList(name: String, _ values: [String]) -> String {
        var text = name + ":"
        var lineLength = text.utf8.count
        for (index, value) in values.enumerated() {
            let piece = index == values.count - 1 ? value : value + ","
            let pieceLines = piece.components(separatedBy: "\r\n")
            if lineLength + 1 + pieceLines[0].utf8.count > 78 && index > 0 {
                text += "\r\n"
                lineLength = 0
            }
            text += " " + piece
            lineLength =
                pieceLines.count == 1 ? lineLength + 1 + piece.utf8.count : pieceLines[pieceLines.count - 1].utf8.count
        }
        return text
    }
}
