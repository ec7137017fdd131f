import Foundation
import Logging
import Testing

@testable import BasaltSMTP

/// The pure stages: encodings, dates, dot-stuffing, message rendering and its refusals.
struct MessageRenderingTests {
    // MARK: Quoted-printable

    @Test(arguments: [
        ("", ""),
        ("plain", "plain\r\n"),
        ("plain\n", "plain\r\n"),
        ("a\r\nb\rc\nd", "a\r\nb\r\nc\r\nd\r\n"),
        ("a\n\n", "a\r\n\r\n"),
        ("café", "caf=C3=A9\r\n"),
        ("1 + 1 = 2", "1 + 1 =3D 2\r\n"),
        ("trailing  ", "trailing =20\r\n"),
        ("tab\t", "tab=09\r\n"),
        (".dot", ".dot\r\n"),
        (String(repeating: "a", count: 76), String(repeating: "a", count: 76) + "\r\n"),
        (String(repeating: "a", count: 77), String(repeating: "a", count: 75) + "=\r\naa\r\n"),
        (String(repeating: "a", count: 74) + "é", String(repeating: "a", count: 74) + "=\r\n=C3=A9\r\n"),
    ])
    func quotedPrintable(_ input: String, _ expected: String) {
        #expect(String(decoding: MIMEEncoding.quotedPrintable(input), as: UTF8.self) == expected)
    }

    @Test(arguments: [
        "Grüße aus Zürich — naïve café ☕️ 日本語 " + String(repeating: "éa= ", count: 60),
        String(repeating: " ", count: 200) + "x",
        String(repeating: "=", count: 100) + "\n" + String(repeating: "\u{1F600}", count: 40),
        "end with space \nand tab\t\n",
    ])
    func quotedPrintableRoundTripsWithShortSevenBitLines(_ text: String) throws {
        let encoded = MIMEEncoding.quotedPrintable(text)
        #expect(encoded.allSatisfy { $0 < 0x80 })
        let lines = String(decoding: encoded, as: UTF8.self).components(separatedBy: "\r\n").dropLast()
        #expect(lines.allSatisfy { $0.utf8.count <= 76 })
        #expect(lines.allSatisfy { !$0.hasSuffix(" ") && !$0.hasSuffix("\t") })
        var expected = text.replacingOccurrences(of: "\r\n", with: "\n")
        if !expected.hasSuffix("\n") { expected += "\n" }
        #expect(try Self.decodeQuotedPrintable(encoded) == expected)
    }

    /// An independent decoder (RFC 2045 §6.7) for the round trip.
    static func decodeQuotedPrintable(_ encoded: [UInt8]) throws -> String {
        var bytes: [UInt8] = []
        var index = 0
        while index < encoded.count {
            let byte = encoded[index]
            if byte == UInt8(ascii: "=") {
                if encoded[index + 1] == UInt8(ascii: "\r") {
                    index += 3  // soft line break
                    continue
                }
                let hex = String(decoding: encoded[(index + 1)...(index + 2)], as: UTF8.self)
                bytes.append(try #require(UInt8(hex, radix: 16)))
                index += 3
            } else if byte == UInt8(ascii: "\r") {
                index += 1  // CRLF → LF
            } else {
                bytes.append(byte)
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Encoded-words

    @Test func encodedWordsSplitBetweenScalarsAndDecodeBack() throws {
        #expect(MIMEEncoding.encodedWords("Grüße") == ["=?UTF-8?B?R3LDvMOfZQ==?="])
        let text = String(repeating: "日本語とÄÖÜ ", count: 12)
        let words = MIMEEncoding.encodedWords(text)
        #expect(words.count > 1)
        var decoded = ""
        for word in words {
            #expect(word.utf8.count <= 75)
            #expect(word.hasPrefix("=?UTF-8?B?") && word.hasSuffix("?="))
            let payload = try #require(Data(base64Encoded: String(word.dropFirst(10).dropLast(2))))
            decoded += try #require(String(data: payload, encoding: .utf8))  // each word decodes alone
        }
        #expect(decoded == text)
    }

    @Test(arguments: [
        ("Hello", true),
        ("tab\tok", true),
        ("Grüße", false),
        ("looks =?like?= a word", false),
        ("bell\u{07}", false),
        (String(repeating: "x", count: 901), false),
    ])
    func safeHeaderText(_ text: String, _ safe: Bool) {
        #expect(MIMEEncoding.isSafeHeaderText(text) == safe)
    }

    // MARK: Dates and dot-stuffing

    @Test(arguments: [
        (Int64(0), "Thu, 01 Jan 1970 00:00:00 +0000"),
        (951_782_400, "Tue, 29 Feb 2000 00:00:00 +0000"),
        (1_709_251_199, "Thu, 29 Feb 2024 23:59:59 +0000"),
        (1_739_437_500, "Thu, 13 Feb 2025 09:05:00 +0000"),
        (4_102_444_799, "Thu, 31 Dec 2099 23:59:59 +0000"),
    ])
    func rfc5322Date(_ seconds: Int64, _ expected: String) {
        #expect(MIMEEncoding.rfc5322Date(secondsSince1970: seconds) == expected)
    }

    @Test func dotStuffing() {
        func stuffed(_ text: String) -> String {
            String(decoding: MIMEEncoding.dotStuffed(Array(text.utf8)), as: UTF8.self)
        }
        #expect(stuffed("a\r\n.b\r\n.\r\n..c\r\nd.e\r\n") == "a\r\n..b\r\n..\r\n...c\r\nd.e\r\n.\r\n")
        #expect(stuffed(".first\r\n") == "..first\r\n.\r\n")
        #expect(stuffed("no final newline") == "no final newline\r\n.\r\n")
    }

    // MARK: Rendering

    @Test func rendersHeadersInOrder() throws {
        let message = MailMessage(
            from: "Basalt <noreply@example.com>",
            to: ["ada@example.com", "\"Hopper, Grace\" <grace@example.org>"],
            subject: "Grüße",
            textBody: "Hi\n",
            messageID: "abc@example.com"
        )
        let mail = try message.render(heloName: "client.test", secondsSince1970: 1_739_437_500)
        #expect(mail.reversePath == "noreply@example.com")
        #expect(mail.forwardPaths == ["ada@example.com", "grace@example.org"])
        #expect(!mail.needsSMTPUTF8)
        #expect(
            String(decoding: mail.content, as: UTF8.self) == """
                Date: Thu, 13 Feb 2025 09:05:00 +0000\r
                From: Basalt <noreply@example.com>\r
                To: ada@example.com, "Hopper, Grace" <grace@example.org>\r
                Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r
                Message-ID: <abc@example.com>\r
                MIME-Version: 1.0\r
                Content-Type: text/plain; charset=utf-8\r
                Content-Transfer-Encoding: quoted-printable\r
                \r
                Hi\r

                """
        )
    }

    @Test func longRecipientListsAreFolded() throws {
        let recipients = (1...12).map { "recipient-number-\($0)@example.com" }
        let message = MailMessage(from: "a@example.com", to: recipients, subject: "S", textBody: "")
        let text = String(decoding: try message.render(heloName: "h", secondsSince1970: 0).content, as: UTF8.self)
        let lines = text.components(separatedBy: "\r\n")
        let start = try #require(lines.firstIndex { $0.hasPrefix("To: ") })
        let end = try #require(lines[start...].firstIndex { $0.hasPrefix("Subject: ") })
        #expect(end - start > 1)
        #expect(lines[start..<end].allSatisfy { $0.utf8.count <= 78 })
        #expect(lines[(start + 1)..<end].allSatisfy { $0.hasPrefix(" ") })
        let unfolded = lines[start..<end].joined()
        #expect(unfolded == "To: " + recipients.joined(separator: ", "))
    }

    @Test func longDisplayNamesAreEncodedAndFolded() throws {
        let longASCII = String(repeating: "Very Long Name ", count: 20)
        let longUnicode = String(repeating: "Ünïcödé Näme ", count: 10)
        let message = MailMessage(
            from: "\(longASCII) <a@example.com>",
            to: ["\(longUnicode) <b@example.com>", "c@example.com"],
            subject: "S",
            textBody: ""
        )
        let text = String(decoding: try message.render(heloName: "h", secondsSince1970: 0).content, as: UTF8.self)
        let headerLines = text.components(separatedBy: "\r\n\r\n")[0].components(separatedBy: "\r\n")
        #expect(headerLines.allSatisfy { $0.utf8.count <= 78 })
        #expect(headerLines.contains { $0.hasPrefix("From: =?UTF-8?B?") })
        #expect(headerLines.contains { $0.hasPrefix("To: =?UTF-8?B?") })
        #expect(headerLines.contains { $0.hasSuffix("?= <b@example.com>, c@example.com") })
    }

    @Test func generatedMessageID() throws {
        let message = MailMessage(from: "a@example.com", to: ["b@example.com"], subject: "S", textBody: "B")
        let first = String(
            decoding: try message.render(heloName: "mx.example", secondsSince1970: 0).content,
            as: UTF8.self
        )
        let second = String(
            decoding: try message.render(heloName: "mx.example", secondsSince1970: 0).content,
            as: UTF8.self
        )
        let id = try #require(first.components(separatedBy: "\r\n").first { $0.hasPrefix("Message-ID: ") })
        #expect(id.wholeMatch(of: /Message-ID: <[0-9a-f-]{36}@mx\.example>/) != nil)
        #expect(first != second)
    }

    static let injections: [(String, MailMessage)] = [
        (
            "subject CRLF",
            MailMessage(
                from: "a@example.com",
                to: ["b@example.com"],
                subject: "Hi\r\nBcc: evil@example.com",
                textBody: ""
            )
        ),
        (
            "subject LF",
            MailMessage(
                from: "a@example.com",
                to: ["b@example.com"],
                subject: "Hi\nBcc: evil@example.com",
                textBody: ""
            )
        ),
        ("subject CR", MailMessage(from: "a@example.com", to: ["b@example.com"], subject: "Hi\rX", textBody: "")),
        (
            "from",
            MailMessage(
                from: "a@example.com\r\nBcc: evil@example.com",
                to: ["b@example.com"],
                subject: "S",
                textBody: ""
            )
        ),
        (
            "to",
            MailMessage(
                from: "a@example.com",
                to: ["b@example.com>\r\nRCPT TO:<evil@example.com"],
                subject: "S",
                textBody: ""
            )
        ),
        (
            "display name",
            MailMessage(from: "Evil\n <a@example.com>", to: ["b@example.com"], subject: "S", textBody: "")
        ),
        (
            "message id",
            MailMessage(
                from: "a@example.com",
                to: ["b@example.com"],
                subject: "S",
                textBody: "",
                messageID: "<x@y>\r\nBcc: e@x"
            )
        ),
        ("no recipients", MailMessage(from: "a@example.com", to: [], subject: "S", textBody: "")),
        ("no at sign", MailMessage(from: "a@example.com", to: ["nobody"], subject: "S", textBody: "")),
        ("angle bracket", MailMessage(from: "a@example.com", to: ["b>@example.com"], subject: "S", textBody: "")),
        ("space", MailMessage(from: "a b@example.com", to: ["b@example.com"], subject: "S", textBody: "")),
        ("NUL", MailMessage(from: "a@example.com", to: ["b\0@example.com"], subject: "S", textBody: "")),
    ]

    @Test(arguments: Self.injections)
    func refusedBeforeConnecting(_ name: String, _ message: MailMessage) async throws {
        let error = try #require(throws: SMTPError.self, "\(name)") {
            try message.render(heloName: "h", secondsSince1970: 0)
        }
        #expect(!error.isTransient, "\(name)")
        #expect(error.code == nil, "\(name)")

        // Through the client: nothing listens on port 1, so connecting would be a transient error.
        let client = SMTPClient(
            configuration: SMTPConfiguration(host: "127.0.0.1", port: 1, timeout: .seconds(2)),
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        )
        let sendError = try await #require(throws: SMTPError.self, "\(name)") { try await client.send(message) }
        #expect(!sendError.isTransient, "\(name)")
        #expect(sendError.message == error.message, "\(name)")
    }

    @Test func heloNameIsValidatedBeforeConnecting() async throws {
        let client = SMTPClient(
            configuration: SMTPConfiguration(host: "127.0.0.1", port: 1, heloName: "x\r\nMAIL FROM:<e@x>"),
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        )
        let error = try await #require(throws: SMTPError.self) {
            try await client.send(MailMessage(from: "a@example.com", to: ["b@example.com"], subject: "S", textBody: ""))
        }
        #expect(!error.isTransient)
        #expect(error.message.contains("heloName"))
    }

    @Test(arguments: [
        ("Ada <ada@example.com>", "Ada <ada@example.com>"),
        ("  ada@example.com  ", "ada@example.com"),
        ("\"Ada Lovelace\" <ada@example.com>", "Ada Lovelace <ada@example.com>"),
        ("Lovelace, Ada <ada@example.com>", "\"Lovelace, Ada\" <ada@example.com>"),
        ("Say \"hi\" <ada@example.com>", "\"Say \\\"hi\\\"\" <ada@example.com>"),
        ("Zoë <zoe@example.com>", "=?UTF-8?B?Wm/Dqw==?= <zoe@example.com>"),
    ])
    func addressHeaderValues(_ input: String, _ expected: String) throws {
        #expect(try MailAddress(parsing: input, role: "to").headerValue == expected)
    }

    // MARK: Replies

    @Test(arguments: [
        ("250 OK", 250, true, "OK"),
        ("250-PIPELINING", 250, false, "PIPELINING"),
        ("220", 220, true, ""),
        ("554 ", 554, true, ""),
    ])
    func replyLines(_ line: String, _ code: Int, _ isLast: Bool, _ text: String) throws {
        let parsed = try #require(SMTPClientHandler.parseLine(Array(line.utf8)))
        #expect(parsed.code == code)
        #expect(parsed.isLast == isLast)
        #expect(parsed.text == text)
    }

    @Test(arguments: ["", "25", "abc OK", "150 too low", "650 too high", "2a0 x", "250+x", "250_x"])
    func malformedReplyLines(_ line: String) {
        #expect(SMTPClientHandler.parseLine(Array(line.utf8)) == nil)
    }

    @Test func ehloExtensions() {
        let reply = SMTPReply(
            code: 250,
            lines: ["mail.test greets you", "PIPELINING", "auth plain LOGIN", "AUTH=XOAUTH2", "SIZE 1000", "starttls"]
        )
        let extensions = reply.extensions
        #expect(extensions["AUTH"] == ["plain", "LOGIN", "XOAUTH2"])
        #expect(extensions["STARTTLS"] == [])
        #expect(extensions["SIZE"] == ["1000"])
        #expect(extensions["MAIL.TEST"] == nil)
    }
}
