import Basalt
import BasaltAuth
import BasaltCore
import BasaltPostgres
import BasaltServices
import BasaltStorage
import BasaltTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// aiosmtpd (PyPI) delivering into a maildir: a real SMTP server on loopback.
struct MaildirServer {
    let process: ChildProcess
    let directory: URL

    static func start(port: Int) async throws -> MaildirServer {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("basalt-maildir-\(UUID().uuidString)")
        let p = try ChildProcess(["python3", "-m", "aiosmtpd", "-n", "-l", "127.0.0.1:\(port)", "-c", "aiosmtpd.handlers.Mailbox", dir.path])
        let server = MaildirServer(process: p, directory: dir)
        for _ in 0..<200 {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("new").path), Self.accepts(port) { return server }
            try await Task.sleep(for: .milliseconds(50))
        }
        server.stop()
        throw TestSetupError("aiosmtpd did not start on port \(port) (pip install aiosmtpd)")
    }

    static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = in_port_t(UInt16(port).bigEndian)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: a.sin_port))
    }

    /// The raw messages delivered so far.
    func messages() -> [String] {
        let new = directory.appendingPathComponent("new")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: new.path)) ?? []
        return files.compactMap { try? String(contentsOf: new.appendingPathComponent($0), encoding: .utf8) }
    }

    func stop() {
        // SIGKILL: the test process blocks SIGTERM in its threads, and children inherit the mask.
        process.signal(SIGKILL)
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Quoted-printable bodies (RFC 2045) back to text: soft line breaks out, `=XX` decoded.
func decodeQuotedPrintable(_ s: String) -> String {
    let joined = s.replacingOccurrences(of: "=\r\n", with: "").replacingOccurrences(of: "=\n", with: "")
    var bytes: [UInt8] = []
    var u = Array(joined.utf8)[...]
    while let c = u.popFirst() {
        if c == UInt8(ascii: "="), u.count >= 2, let v = UInt8(String(decoding: u.prefix(2), as: UTF8.self), radix: 16) {
            bytes.append(v)
            u = u.dropFirst(2)
        } else {
            bytes.append(c)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

@Suite("Mail over SMTP: durable queue, retries, restart")
struct MailDeliveryTests {
    @Test(arguments: TestBackend.all)
    func queuedMailSurvivesARestartAndIsDeliveredOverSMTP(_ backend: TestBackend) async throws {
        let hasAiosmtpd = (try? await Subprocess.run(["python3", "-c", "import aiosmtpd"]))?.succeeded ?? false
        if !hasAiosmtpd {
            try #require(ProcessInfo.processInfo.environment["CI"] == nil, "aiosmtpd is not installed (pip install aiosmtpd)")
            return
        }
        let port = MaildirServer.freePort()
        var config = try backend.configuration()
        config.auth.smtpURL = "smtp://127.0.0.1:\(port)"
        config.auth.mailFrom = "Basalt <no-reply@basalt.test>"
        config.auth.passwordParameters = .fastForTests
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        defer { if backend == .sqlite { try? FileManager.default.removeItem(atPath: config.dataDirectory) } }

        // 1. The SMTP server is down: the reset mail is queued with its token and retried.
        try await BasaltRuntime.withRuntime(config, logger: logger) { rt in
            let admin = try await rt.apiKeys.create(name: "t", admin: true, roles: [], expiresAt: nil).key
            try await rt.makeApplication().test(.live) { client in
                let api = APIClient(client: client, adminKey: admin, runtime: rt)
                _ = try await api.signUp("ada@example.com")
                #expect(try await api.post("/v1/auth/password/forgot", #"{"email":"ada@example.com"}"#, auth: .none).status == .accepted)
                var attempts: Int64 = 0
                for _ in 0..<100 where attempts == 0 {
                    try await Task.sleep(for: .milliseconds(100))
                    attempts =
                        try await rt.store.fetchOne(
                            SQLQuery(sql: "SELECT \"attempts\" FROM \"_basalt_jobs\" WHERE \"state\" = 'failed'"),
                            types: [.int]
                        )?[0].int ?? 0
                }
                #expect(attempts >= 1, "the delivery service never tried")
                let row = try #require(
                    try await rt.store.fetchOne(
                        SQLQuery(sql: "SELECT \"state\", \"last_error\" FROM \"_basalt_jobs\" WHERE \"kind\" = 'mail'"),
                        types: [.text, .text]
                    )
                )
                #expect(row[0].text == "failed" && row[1].text != nil)
            }
        }

        // 2. Restarted, with the server up: the queued mail goes out; its token works once.
        let smtp = try await MaildirServer.start(port: port)
        defer { smtp.stop() }
        try await BasaltRuntime.withRuntime(config, logger: logger) { rt in
            let admin = try await rt.apiKeys.create(name: "t2", admin: true, roles: [], expiresAt: nil).key
            // Due again after the backoff of the failed attempts (2 s, 4 s, …; a slow machine may
            // have made more than one): it must arrive within 20 s of that. Read before the
            // workers start (they claim it at once).
            let queued = try #require(
                try await rt.store.fetchOne(
                    SQLQuery(sql: "SELECT \"run_at\", \"attempts\", \"state\" FROM \"_basalt_jobs\" WHERE \"kind\" = 'mail'"),
                    types: [.int, .int, .text]
                )
            )
            let due = queued[0].int ?? 0
            // A backoff, not a claim left behind by the shutdown (that would be two minutes).
            #expect(queued[2].text != "running")
            #expect(due <= Timestamp.now().millisecondsSinceEpoch + (2_000 << (queued[1].int ?? 0)), "the stopped process kept its claim on the mail")
            try await rt.makeApplication().test(.live) { client in
                let api = APIClient(client: client, adminKey: admin, runtime: rt)
                let now = Timestamp.now().millisecondsSinceEpoch
                let deadline = max(due, now) + 20_000
                var mails: [String] = []
                while mails.isEmpty && Timestamp.now().millisecondsSinceEpoch < deadline {
                    try await Task.sleep(for: .milliseconds(100))
                    mails = smtp.messages()
                }
                let mail = try #require(mails.first, "no mail arrived within 20 s of its next attempt")
                #expect(mail.contains("To: ada@example.com") && mail.contains("From: Basalt <no-reply@basalt.test>"))
                #expect(mail.contains("Subject: Reset your Basalt password"))
                let text = decodeQuotedPrintable(mail)
                let range = try #require(text.range(of: #"{"token": ""#))
                let token = String(text[range.upperBound...].prefix { $0 != "\"" })
                #expect(
                    try await api.post("/v1/auth/password/reset", #"{"token":"\#(token)","password":"a brand new passphrase"}"#, auth: .none).status
                        == .noContent
                )
                #expect(
                    try await api.post("/v1/auth/password/reset", #"{"token":"\#(token)","password":"another passphrase!"}"#, auth: .none).status
                        == .unprocessableContent
                )
                _ = try await api.signIn("ada@example.com", password: "a brand new passphrase")
                let sent = try await rt.store.fetchOne(
                    SQLQuery(sql: "SELECT \"state\" FROM \"_basalt_jobs\" WHERE \"kind\" = 'mail'"),
                    types: [.text]
                )
                #expect(sent?[0].text == "succeeded")
                #expect(smtp.messages().count == 1)  // sent once, not once per replica tick
            }
            if let pg = rt.store as? PostgresStore { try await pg.dropSchema() }
        }
    }
}

@Suite("Password hashes follow the configured parameters")
struct RehashTests {
    static func storedHash(_ rt: BasaltRuntime) async throws -> String {
        try #require(try await rt.store.fetchOne(SQLQuery(sql: "SELECT \"password_hash\" FROM \"_basalt_credentials\""), types: [.text])?[0].text)
    }

    @Test(arguments: TestBackend.all)
    func signInRehashesWithRaisedParameters(_ backend: TestBackend) async throws {
        var config = try backend.configuration()
        config.auth.passwordParameters = .fastForTests
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        defer { if backend == .sqlite { try? FileManager.default.removeItem(atPath: config.dataDirectory) } }
        try await BasaltRuntime.withRuntime(config, logger: logger) { rt in
            _ = try await rt.auth.register(
                .object(JSONObject([("email", "ada@example.com"), ("password", "correct horse battery")])),
                client: .init(address: "127.0.0.1", userAgent: nil)
            )
            #expect(try await Self.storedHash(rt).hasPrefix("$scrypt$ln=10,"))
        }
        config.auth.passwordParameters = .init(logN: 11, r: 8, p: 1)
        try await BasaltRuntime.withRuntime(config, logger: logger) { rt in
            let client = AuthService.Client(address: "127.0.0.1", userAgent: nil)
            // A wrong password changes nothing; the right one signs in and stores a stronger hash.
            await #expect(throws: BasaltError.self) {
                try await rt.auth.login(.object(JSONObject([("email", "ada@example.com"), ("password", "wrong horse battery")])), client: client)
            }
            #expect(try await Self.storedHash(rt).hasPrefix("$scrypt$ln=10,"))
            let tokens = try await rt.auth.login(
                .object(JSONObject([("email", "ada@example.com"), ("password", "correct horse battery")])),
                client: client
            )
            #expect(tokens["access_token"]?.stringValue != nil)
            #expect(try await Self.storedHash(rt).hasPrefix("$scrypt$ln=11,"))
            _ = try await rt.auth.login(.object(JSONObject([("email", "ada@example.com"), ("password", "correct horse battery")])), client: client)
            if let pg = rt.store as? PostgresStore { try await pg.dropSchema() }
        }
    }

    @Test func devModeWritesMailsToTheLog() async throws {
        let lines = LogCapture()
        var config = try TestBackend.sqlite.configuration()
        config.auth.passwordParameters = .fastForTests
        defer { try? FileManager.default.removeItem(atPath: config.dataDirectory) }
        let logger = Logger(label: "test", factory: { _ in lines })
        try await BasaltRuntime.withRuntime(config, logger: logger) { rt in
            _ = try await rt.auth.register(
                .object(JSONObject([("email", "ada@example.com"), ("password", "correct horse battery")])),
                client: .init(address: "127.0.0.1", userAgent: nil)
            )
            try await rt.auth.forgotPassword(.object(JSONObject([("email", "ada@example.com")])), client: .init(address: "127.0.0.1", userAgent: nil))
            #expect(try await rt.auth.processResetRequests() == 1)
            #expect(try await rt.auth.mail.deliverDue() == 1)
            let logged = lines.lines.withLock { $0 }
            #expect(logged.contains { $0.contains("dev mode") && $0.contains("ada@example.com") && $0.contains("/v1/auth/password/reset") })
            #expect(try await rt.auth.mail.deliverDue() == 0)  // sent means sent
        }
    }
}

/// Collects log lines (message + metadata) in memory.
final class LogCapture: LogHandler, Sendable {
    let lines = Mutex<[String]>([])
    var logLevel: Logger.Level {
        get { .trace }
        set {}
    }
    var metadata: Logger.Metadata {
        get { [:] }
        set {}
    }
    subscript(metadataKey _: String) -> Logger.Metadata.Value? {
        get { nil }
        set {}
    }
    func log(event: LogEvent) {
        let text = "\(event.message) \(event.metadata ?? [:])"
        lines.withLock { $0.append(text) }
    }
}
