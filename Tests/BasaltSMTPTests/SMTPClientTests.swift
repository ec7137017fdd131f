import BasaltSMTP
import Foundation
import Logging
import NIOCore
import NIOSSL
import Testing

/// End-to-end against aiosmtpd, a real SMTP server. Under `CI` a missing python3/aiosmtpd fails
/// these tests; elsewhere the suite is reported as skipped with the reason.
@Suite(
    .enabled("needs python3 with aiosmtpd (pip install aiosmtpd); required when CI is set") {
        await AiosmtpdServer.shouldRun()
    },
    .timeLimit(.minutes(1))  // a hang fails instead of waiting for aiosmtpd's 300 s idle timeout
)
struct SMTPClientTests {
    static let credentials = (username: "mailer@example.com", password: "pä:ss w@rd")

    static func configuration(
        port: Int,
        security: SMTPConfiguration.Security = .none,
        username: String? = nil,
        password: String? = nil
    ) -> SMTPConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none  // the test server's certificate is self-signed
        return SMTPConfiguration(
            host: "127.0.0.1",
            port: port,
            security: security,
            username: username,
            password: password,
            heloName: "client.test",
            timeout: .seconds(10),
            tlsConfiguration: tls
        )
    }

    static func client(_ configuration: SMTPConfiguration) -> SMTPClient {
        SMTPClient(
            configuration: configuration,
            logger: Logger(label: "basalt.smtp.test") { _ in SwiftLogNoOpLogHandler() }
        )
    }

    static let simpleMessage = MailMessage(
        from: "sender@example.com",
        to: ["ada@example.com"],
        subject: "Hello",
        textBody: "Hi Ada.\n"
    )

    @Test func plainDeliveryWithRecipientsDotStuffingAndUnicode() async throws {
        let body = """
            Grüße aus Zürich — naïve café ☕️ and 日本語.
            .a line starting with a dot
            .
            ..two dots
            trailing spaces   
            \ttab first, then a long line: \(String(repeating: "ÄÖÜ äöü = equals ", count: 8))
            done
            """ + "\n"
        let message = MailMessage(
            from: "Basalt Tests <sender@example.com>",
            to: ["ada@example.com", "Grace “Amazing” Hopper <grace@example.org>", "plain@example.net"],
            subject: "Grüße — ünïcödé ✉️ subject that is long enough to need more than one encoded word",
            textBody: body,
            messageID: "<fixed-id-1@client.test>"
        )
        try await AiosmtpdServer.with { server in
            try await Self.client(Self.configuration(port: server.port)).send(message)

            let mail = try #require(try server.receivedMail().only)
            #expect(mail.mailFrom == "sender@example.com")
            #expect(mail.rcptTos == ["ada@example.com", "grace@example.org", "plain@example.net"])
            #expect(mail.subject == message.subject)
            #expect(mail.body == body)
            #expect(!mail.hasEightBitBytes)
            #expect(mail.headers["Message-ID"] == "<fixed-id-1@client.test>")
            #expect(mail.headers["MIME-Version"] == "1.0")
            #expect(mail.headers["Content-Type"] == "text/plain; charset=\"utf-8\"")
            #expect(mail.headers["Content-Transfer-Encoding"] == "quoted-printable")
            #expect(mail.headers["From"] == "Basalt Tests <sender@example.com>")
            #expect(
                mail.headers["To"] == "ada@example.com, Grace “Amazing” Hopper <grace@example.org>, plain@example.net"
            )
            #expect(mail.headers["Date"].map { $0.hasSuffix("+0000") } == true)
            #expect(!mail.tls)
            // RFC 5322 §2.1.1: no line over 998 characters; ours stay within 78 where we choose.
            #expect(mail.raw.components(separatedBy: "\r\n").allSatisfy { $0.utf8.count <= 78 })
        }
    }

    @Test func generatedMessageIDUsesHeloName() async throws {
        try await AiosmtpdServer.with { server in
            try await Self.client(Self.configuration(port: server.port)).send(Self.simpleMessage)
            let mail = try #require(try server.receivedMail().only)
            let id = try #require(mail.headers["Message-ID"])
            #expect(id.hasPrefix("<") && id.hasSuffix("@client.test>"))
            #expect(mail.body == "Hi Ada.\n")
        }
    }

    @Test func startTLSWithAuthPlain() async throws {
        let options = AiosmtpdServer.Options(mode: .starttls, credentials: Self.credentials)
        try await AiosmtpdServer.with(options) { server in
            let configuration = Self.configuration(
                port: server.port,
                security: .startTLS,
                username: Self.credentials.username,
                password: Self.credentials.password
            )
            try await Self.client(configuration).send(Self.simpleMessage)
            let mail = try #require(try server.receivedMail().only)
            #expect(mail.tls)
            #expect(mail.authMechanism == "PLAIN")
            #expect(mail.rcptTos == ["ada@example.com"])
        }
    }

    @Test func authLoginWhenPlainIsNotOffered() async throws {
        let options = AiosmtpdServer.Options(
            mode: .starttls,
            credentials: Self.credentials,
            excludedMechanisms: ["PLAIN"]
        )
        try await AiosmtpdServer.with(options) { server in
            let configuration = Self.configuration(
                port: server.port,
                security: .startTLS,
                username: Self.credentials.username,
                password: Self.credentials.password
            )
            try await Self.client(configuration).send(Self.simpleMessage)
            let mail = try #require(try server.receivedMail().only)
            #expect(mail.authMechanism == "LOGIN")
        }
    }

    @Test func implicitTLSWithAuth() async throws {
        let options = AiosmtpdServer.Options(mode: .tls, credentials: Self.credentials)
        try await AiosmtpdServer.with(options) { server in
            let configuration = Self.configuration(
                port: server.port,
                security: .tls,
                username: Self.credentials.username,
                password: Self.credentials.password
            )
            try await Self.client(configuration).send(Self.simpleMessage)
            let mail = try #require(try server.receivedMail().only)
            #expect(mail.authMechanism == "PLAIN")
            #expect(mail.body == "Hi Ada.\n")
        }
    }

    @Test func wrongPasswordIsAPermanent535() async throws {
        let options = AiosmtpdServer.Options(mode: .starttls, credentials: Self.credentials)
        try await AiosmtpdServer.with(options) { server in
            let configuration = Self.configuration(
                port: server.port,
                security: .startTLS,
                username: Self.credentials.username,
                password: "wrong"
            )
            let error = try await #require(throws: SMTPError.self) {
                try await Self.client(configuration).send(Self.simpleMessage)
            }
            #expect(error.code == 535)
            #expect(!error.isTransient)
            #expect(error.command == "AUTH")
            #expect(!error.description.contains("wrong"))
            #expect(try server.receivedMail().isEmpty)
        }
    }

    @Test func refusedRecipientFailsTheSend() async throws {
        try await AiosmtpdServer.with { server in
            var message = Self.simpleMessage
            message.to = ["ada@example.com", "reject-me@example.com"]
            let error = try await #require(throws: SMTPError.self) {
                try await Self.client(Self.configuration(port: server.port)).send(message)
            }
            #expect(error.code == 550)
            #expect(!error.isTransient)
            #expect(error.command == "RCPT")
            #expect(error.message.contains("Recipient address rejected"))
            #expect(try server.receivedMail().isEmpty)
        }
    }

    @Test func startTLSRequiredButNotOfferedIsAnError() async throws {
        try await AiosmtpdServer.with { server in  // plain server: no STARTTLS in EHLO
            let configuration = Self.configuration(
                port: server.port,
                security: .startTLS,
                username: Self.credentials.username,
                password: Self.credentials.password
            )
            let error = try await #require(throws: SMTPError.self) {
                try await Self.client(configuration).send(Self.simpleMessage)
            }
            #expect(error.code == nil)
            #expect(!error.isTransient)
            #expect(error.message.contains("STARTTLS"))
            #expect(try server.receivedMail().isEmpty)
        }
    }

    @Test func certificatesAreVerifiedByDefault() async throws {
        try await AiosmtpdServer.with(AiosmtpdServer.Options(mode: .starttls)) { server in
            var configuration = Self.configuration(port: server.port, security: .startTLS)
            configuration.tlsConfiguration = nil  // system trust roots: the self-signed certificate fails
            let error = try await #require(throws: SMTPError.self) {
                try await Self.client(configuration).send(Self.simpleMessage)
            }
            #expect(error.code == nil)
            // The handshake's failure, or — when the peer's close wins the race under load — the
            // closed channel it leaves; either way no mail went out over an unverified connection.
            #expect(error.underlying is NIOSSLError || error.underlying is ChannelError, "\(error)")
            #expect(try server.receivedMail().isEmpty)
        }
    }

    @Test func passwordNeverLogged() async throws {
        let options = AiosmtpdServer.Options(mode: .starttls, credentials: Self.credentials)
        try await AiosmtpdServer.with(options) { server in
            let configuration = Self.configuration(
                port: server.port,
                security: .startTLS,
                username: Self.credentials.username,
                password: Self.credentials.password
            )
            let (logger, logs) = CapturingLogHandler.logger()
            try await SMTPClient(configuration: configuration, logger: logger).send(Self.simpleMessage)

            let commands = logs.all.compactMap { line in
                line.hasPrefix("debug smtp command")
                    ? line.components(separatedBy: "smtp.command=").last?
                        .components(separatedBy: " ").first : nil
            }
            #expect(commands == ["EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT", "DATA", "DATA-END", "QUIT"])
            let plainToken = Data(
                [0] + Array(Self.credentials.username.utf8) + [0] + Array(Self.credentials.password.utf8)
            )
            .base64EncodedString()
            for line in logs.all {
                #expect(!line.contains(Self.credentials.password))
                #expect(!line.contains(plainToken))
            }
        }
    }
}

extension Array {
    /// The single element, or `nil` when there are none or several.
    var only: Element? { self.count == 1 ? self.first : nil }
}
