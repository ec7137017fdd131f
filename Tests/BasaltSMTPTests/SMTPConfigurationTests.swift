import BasaltSMTP
import Logging
import Testing

struct SMTPConfigurationTests {
    struct Expected: Sendable, CustomTestStringConvertible {
        var security: SMTPConfiguration.Security
        var host: String
        var port: Int
        var username: String? = nil
        var password: String? = nil
        var testDescription: String { "\(self.security) \(self.host):\(self.port)" }
    }

    @Test(arguments: [
        ("smtp://mail.example.com", Expected(security: .none, host: "mail.example.com", port: 25)),
        ("smtp://mail.example.com/", Expected(security: .none, host: "mail.example.com", port: 25)),
        (
            "smtp://user:pass@mail.example.com:2525",
            Expected(security: .none, host: "mail.example.com", port: 2525, username: "user", password: "pass")
        ),
        (
            "smtp://user:pass@mail.example.com?starttls=true",
            Expected(security: .startTLS, host: "mail.example.com", port: 587, username: "user", password: "pass")
        ),
        (
            "smtp://mail.example.com:2525?starttls=true",
            Expected(security: .startTLS, host: "mail.example.com", port: 2525)
        ),
        ("smtp://mail.example.com?starttls=false", Expected(security: .none, host: "mail.example.com", port: 25)),
        (
            "smtp+starttls://u%40x.com:p%3Aa%2Fss%25@smtp.example.com",
            Expected(security: .startTLS, host: "smtp.example.com", port: 587, username: "u@x.com", password: "p:a/ss%")
        ),
        ("smtps://smtp.example.com", Expected(security: .tls, host: "smtp.example.com", port: 465)),
        (
            "SMTPS://key:@smtp.example.com:1465/",
            Expected(security: .tls, host: "smtp.example.com", port: 1465, username: "key", password: "")
        ),
        ("smtp://[::1]:2525", Expected(security: .none, host: "::1", port: 2525)),
        ("smtp://127.0.0.1", Expected(security: .none, host: "127.0.0.1", port: 25)),
        (
            "smtp://apikey@smtp.example.com",
            Expected(security: .none, host: "smtp.example.com", port: 25, username: "apikey")
        ),
        (
            "smtp://us%C3%A9r:p%C3%A4ss@h",
            Expected(security: .none, host: "h", port: 25, username: "usér", password: "päss")
        ),
        ("smtp://user:p@ss@h", Expected(security: .none, host: "h", port: 25, username: "user", password: "p@ss")),
    ])
    func parsesURL(_ url: String, _ expected: Expected) throws {
        let configuration = try SMTPConfiguration(url: url)
        #expect(configuration.security == expected.security)
        #expect(configuration.host == expected.host)
        #expect(configuration.port == expected.port)
        #expect(configuration.username == expected.username)
        #expect(configuration.password == expected.password)
        #expect(configuration.heloName == "localhost")
        #expect(configuration.timeout == .seconds(30))
        #expect(configuration.tlsConfiguration == nil)
    }

    @Test(arguments: [
        "http://mail.example.com",
        "mail.example.com",
        "smtp:mail.example.com",
        "smtp://",
        "smtp://user:pass@",
        "smtp://host:0",
        "smtp://host:65536",
        "smtp://host:abc",
        "smtp://host:",
        "smtp://host:-25",
        "smtp://host/path",
        "smtp://host?foo=bar",
        "smtp://host?starttls=maybe",
        "smtps://host?starttls=true",
        "smtp+starttls://host?starttls=false",
        "smtp://host#fragment",
        "smtp://u:p%zz@host",
        "smtp://u:p%4@host",
        "smtp://u:%FF@host",
        "smtp://:pass@host",
        "smtp://[::1",
        "smtp://[example.com]:25",
        "smtp://ho st",
        "smtp://host\r\n:25",
    ])
    func rejectsURL(_ url: String) {
        let error = #expect(throws: SMTPError.self) { try SMTPConfiguration(url: url) }
        #expect(error?.isTransient == false)
        #expect(error?.code == nil)
    }

    @Test func defaults() {
        let configuration = SMTPConfiguration(host: "mail.example.com", port: 25)
        #expect(configuration.security == .none)
        #expect(configuration.username == nil && configuration.password == nil)
        #expect(configuration.heloName == "localhost")
        #expect(configuration.timeout == .seconds(30))
    }

    @Test func errorDescriptionNamesCodeAndStep() {
        let error = SMTPError(code: 550, message: "5.1.1 no such user", isTransient: false, command: "RCPT")
        #expect(error.description == "SMTPError(550 after RCPT: 5.1.1 no such user)")
    }
}

@Suite struct ClearTextCredentialTests {
    /// Refused before any connection: the host does not even need to exist.
    @Test func credentialsNeedTLSExceptToThisMachine() async throws {
        let remote = SMTPConfiguration(host: "mail.invalid", port: 25, security: .none, username: "u", password: "p")
        let error = try await #require(throws: SMTPError.self) {
            try await SMTPClient(configuration: remote, logger: Logger(label: "test")).send(
                MailMessage(from: "a@example.com", to: ["b@example.com"], subject: "s", textBody: "b")
            )
        }
        #expect(!error.isTransient && error.description.contains("clear text"))
        #expect(!error.description.contains("p\""), "the password is not in the error")
    }
}
