import BasaltSMTP
import Foundation
import Logging
import NIOSSL
import Testing

/// Wire details and misbehaving servers, against `ScriptedSMTPServer`.
@Suite(.timeLimit(.minutes(1)))
struct SMTPProtocolTests {
    static func send(
        to server: ScriptedSMTPServer,
        _ message: MailMessage = MailMessage(from: "a@example.com", to: ["b@example.com"], subject: "S", textBody: "B"),
        configure: (inout SMTPConfiguration) -> Void = { _ in }
    ) async throws {
        var configuration = SMTPConfiguration(
            host: "127.0.0.1",
            port: server.port,
            heloName: "client.test",
            timeout: .seconds(5)
        )
        configure(&configuration)
        let client = SMTPClient(
            configuration: configuration,
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        )
        try await client.send(message)
    }

    @Test func multiLineGreetingHeloFallbackAndDotStuffingOnTheWire() async throws {
        let greeting = ScriptedSMTPServer.Action.reply("220-mail.test ESMTP\r\n220-second line\r\n220 ready\r\n")
        let script = ScriptedSMTPServer.Action.standard(["EHLO": .reply("502 5.5.1 EHLO not supported\r\n")])
        try await ScriptedSMTPServer.with(greeting: greeting, script: script) { server in
            let message = MailMessage(
                from: "a@example.com",
                to: ["b@example.com", "c@example.com"],
                subject: "S",
                textBody: "first\n.hidden\n.\nlast"
            )
            try await Self.send(to: server, message)
            let lines = server.receivedLines
            #expect(
                lines.prefix(6) == [
                    "EHLO client.test", "HELO client.test", "MAIL FROM:<a@example.com>",
                    "RCPT TO:<b@example.com>", "RCPT TO:<c@example.com>", "DATA",
                ]
            )
            let body = try #require(lines.firstIndex(of: "")).advanced(by: 1)
            #expect(Array(lines[body...]) == ["first", "..hidden", "..", "last", ".", "QUIT"])
            #expect(lines.contains("Content-Transfer-Encoding: quoted-printable"))
        }
    }

    @Test func silentServerTimesOut() async throws {
        try await ScriptedSMTPServer.with(greeting: .silence, script: { _ in .silence }) { server in
            let clock = ContinuousClock()
            let start = clock.now
            let error = try await #require(throws: SMTPError.self) {
                try await Self.send(to: server) { $0.timeout = .milliseconds(300) }
            }
            #expect(error.isTransient)
            #expect(error.code == nil)
            #expect(error.message.contains("no reply"))
            #expect(clock.now - start < .seconds(5))
        }
    }

    @Test func timeoutAppliesToEachReply() async throws {
        let script = ScriptedSMTPServer.Action.standard(["MAIL": .silence])
        try await ScriptedSMTPServer.with(greeting: .reply("220 hi\r\n"), script: script) { server in
            // 2 s, not less: the earlier replies must beat it on a machine busy with the whole suite.
            let error = try await #require(throws: SMTPError.self) {
                try await Self.send(to: server) { $0.timeout = .seconds(2) }
            }
            #expect(error.isTransient)
            #expect(error.command == "MAIL")
            #expect(error.message.contains("no reply"))
        }
    }

    @Test(arguments: [
        ("endless line", String(repeating: "a", count: 5000)),
        ("endless reply", String(repeating: "220-more\r\n", count: 500)),
        ("not a reply", "hello there\r\n"),
        ("code change", "220-one\r\n250 two\r\n"),
        ("bad separator", "220+x\r\n"),
    ])
    func malformedRepliesAreProtocolErrors(_ name: String, _ greeting: String) async throws {
        try await ScriptedSMTPServer.with(greeting: .reply(greeting), script: { _ in .silence }) { server in
            let error = try await #require(throws: SMTPError.self, "\(name)") { try await Self.send(to: server) }
            #expect(error.code == nil, "\(name)")
            #expect(error.isTransient, "\(name)")
        }
    }

    @Test func plaintextAfterStartTLSReplyIsRefused() async throws {
        let script = ScriptedSMTPServer.Action.standard([
            "EHLO": .reply("250-mail.test\r\n250 STARTTLS\r\n"),
            "STARTTLS": .reply("220 go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n"),
        ])
        try await ScriptedSMTPServer.with(greeting: .reply("220 hi\r\n"), script: script) { server in
            let error = try await #require(throws: SMTPError.self) {
                try await Self.send(to: server) {
                    $0.security = .startTLS
                    var tls = TLSConfiguration.makeClientConfiguration()
                    tls.certificateVerification = .none
                    $0.tlsConfiguration = tls
                }
            }
            #expect(error.message.contains("STARTTLS"))
            #expect(!server.receivedLines.contains { $0.hasPrefix("MAIL") })
        }
    }

    /// Regression: the 220 to STARTTLS used to stay in NIOAsyncChannel's buffer once the TLS
    /// handler swallowed the read-complete, and the send hung with no timer armed.
    @Test func stalledTLSHandshakeTimesOut() async throws {
        let script: @Sendable (String) -> ScriptedSMTPServer.Action = { line in
            switch line.split(separator: " ").first.map({ $0.uppercased() }) {
            case "EHLO": .reply("250-mail.test\r\n250 STARTTLS\r\n")
            case "STARTTLS": .reply("220 go ahead\r\n")
            default: .silence  // the ClientHello, read as text, gets no answer
            }
        }
        try await ScriptedSMTPServer.with(greeting: .reply("220 hi\r\n"), script: script) { server in
            let error = try await #require(throws: SMTPError.self) {
                try await Self.send(to: server) {
                    $0.security = .startTLS
                    $0.timeout = .seconds(2)  // generous: the replies before must beat it under load
                }
            }
            #expect(error.isTransient)
            #expect(error.command == "EHLO")
            #expect(error.message.contains("no reply"))
        }
    }

    @Test func credentialsAreNotSentWithoutAuthExtension() async throws {
        try await ScriptedSMTPServer.with(greeting: .reply("220 hi\r\n"), script: ScriptedSMTPServer.Action.standard()) { server in
            let error = try await #require(throws: SMTPError.self) {
                try await Self.send(to: server) {
                    $0.username = "user"
                    $0.password = "secret"
                }
            }
            #expect(!error.isTransient)
            #expect(error.message.contains("AUTH"))
            #expect(!server.receivedLines.contains { $0.hasPrefix("AUTH") })
            #expect(server.receivedLines.last == "QUIT")
        }
    }

    @Test func authPlainSendsInitialResponse() async throws {
        let script = ScriptedSMTPServer.Action.standard([
            "EHLO": .reply("250-mail.test\r\n250-AUTH=LOGIN\r\n250 AUTH LOGIN PLAIN\r\n"),
            "AUTH": .reply("235 2.7.0 ok\r\n"),
        ])
        try await ScriptedSMTPServer.with(greeting: .reply("220 hi\r\n"), script: script) { server in
            try await Self.send(to: server) {
                $0.username = "üser"
                $0.password = "p@ss"
            }
            let auth = try #require(server.receivedLines.first { $0.hasPrefix("AUTH PLAIN ") })
            let decoded = Data(base64Encoded: String(auth.dropFirst("AUTH PLAIN ".count)))
            #expect(decoded == Data([0] + Array("üser".utf8) + [0] + Array("p@ss".utf8)))
        }
    }

    @Test func serverClosingIsATransientError() async throws {
        let script = ScriptedSMTPServer.Action.standard(["EHLO": .close])
        try await ScriptedSMTPServer.with(greeting: .reply("220 hi\r\n"), script: script) { server in
            let error = try await #require(throws: SMTPError.self) { try await Self.send(to: server) }
            #expect(error.isTransient)
            #expect(error.command == "EHLO")
        }
    }

    @Test func serviceNotAvailableGreetingIsTransient() async throws {
        try await ScriptedSMTPServer.with(
            greeting: .reply("421 4.3.2 try later\r\n"),
            script: ScriptedSMTPServer.Action.standard()
        ) { server in
            let error = try await #require(throws: SMTPError.self) { try await Self.send(to: server) }
            #expect(error.code == 421)
            #expect(error.isTransient)
            #expect(error.message == "4.3.2 try later")
        }
    }

    @Test func mailboxBusyIsTransient() async throws {
        let script = ScriptedSMTPServer.Action.standard(["RCPT": .reply("450 4.2.1 mailbox busy\r\n")])
        try await ScriptedSMTPServer.with(greeting: .reply("220 hi\r\n"), script: script) { server in
            let error = try await #require(throws: SMTPError.self) { try await Self.send(to: server) }
            #expect(error.code == 450)
            #expect(error.isTransient)
            #expect(error.command == "RCPT")
            #expect(server.receivedLines.last == "QUIT")
        }
    }

    @Test func nonASCIIAddressNeedsSMTPUTF8() async throws {
        try await ScriptedSMTPServer.with(greeting: .reply("220 hi\r\n"), script: ScriptedSMTPServer.Action.standard()) { server in
            let message = MailMessage(from: "jörg@example.com", to: ["b@example.com"], subject: "S", textBody: "B")
            try await Self.send(to: server, message)
            #expect(server.receivedLines.contains("MAIL FROM:<jörg@example.com> SMTPUTF8"))
        }
        let script = ScriptedSMTPServer.Action.standard(["EHLO": .reply("250 mail.test\r\n")])
        try await ScriptedSMTPServer.with(greeting: .reply("220 hi\r\n"), script: script) { server in
            let message = MailMessage(from: "a@example.com", to: ["jörg@example.com"], subject: "S", textBody: "B")
            let error = try await #require(throws: SMTPError.self) { try await Self.send(to: server, message) }
            #expect(!error.isTransient)
            #expect(error.message.contains("SMTPUTF8"))
        }
    }

    @Test func connectionRefusedIsTransient() async throws {
        let port = try await AiosmtpdServer.freePort()  // nothing listens there any more
        let client = SMTPClient(
            configuration: SMTPConfiguration(host: "127.0.0.1", port: port, timeout: .seconds(5)),
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        )
        let error = try await #require(throws: SMTPError.self) {
            try await client.send(
                MailMessage(from: "a@example.com", to: ["b@example.com"], subject: "S", textBody: "B")
            )
        }
        #expect(error.isTransient)
        #expect(error.code == nil)
        #expect(error.underlying != nil)
    }
}
