import BasaltTesting
import Foundation
import NIOCore
import NIOPosix
import Testing

/// A real SMTP server for the tests: aiosmtpd (PyPI) in a child process on a free loopback port.
/// Each received message is appended to a JSON-lines file, already decoded by Python's `email`
/// package, so the tests assert what a real receiver sees rather than what we think we sent.
struct AiosmtpdServer: Sendable {
    enum Mode: String, Sendable {
        case plain, starttls, tls
    }

    struct Options: Sendable {
        var mode: Mode = .plain
        /// Credentials the server accepts; without them AUTH always fails.
        var credentials: (username: String, password: String)?
        /// AUTH mechanisms the server must not offer (`["PLAIN"]` to force AUTH LOGIN).
        var excludedMechanisms: [String] = []
    }

    /// One message as the server's handler saw it.
    struct ReceivedMail: Decodable {
        var mailFrom: String
        var rcptTos: [String]
        /// The DATA content after the server removed dot-stuffing.
        var raw: String
        var hasEightBitBytes: Bool
        var subject: String
        var body: String
        var headers: [String: String]
        var tls: Bool
        var authMechanism: String?

        enum CodingKeys: String, CodingKey {
            case mailFrom = "mail_from"
            case rcptTos = "rcpt_tos"
            case raw
            case hasEightBitBytes = "eight_bit"
            case subject, body, headers, tls
            case authMechanism = "auth_mechanism"
        }
    }

    let port: Int
    private let outputFile: URL

    /// Messages received so far, in order.
    func receivedMail() throws -> [ReceivedMail] {
        guard FileManager.default.fileExists(atPath: self.outputFile.path) else { return [] }
        let text = try String(contentsOf: self.outputFile, encoding: .utf8)
        return try text.split(separator: "\n").map {
            try JSONDecoder().decode(ReceivedMail.self, from: Data($0.utf8))
        }
    }

    // MARK: Availability

    /// Whether the suite should run: always under `CI` (a missing server then fails loudly),
    /// otherwise only when `python3 -c 'import aiosmtpd'` succeeds.
    static func shouldRun() async -> Bool {
        if ProcessInfo.processInfo.environment["CI"] != nil { return true }
        return (try? await Subprocess.run(["python3", "-c", "import aiosmtpd"]))?.succeeded == true
    }

    // MARK: Lifecycle

    /// Starts a server, waits until it accepts connections, runs `body`, and kills the server on
    /// every path.
    static func with<T>(_ options: Options = Options(), _ body: (AiosmtpdServer) async throws -> T) async throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "basalt-smtp-\(UUID().uuidString)"
        )
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let script = directory.appendingPathComponent("server.py")
        try Self.script.write(to: script, atomically: true, encoding: .utf8)
        let outputFile = directory.appendingPathComponent("received.jsonl")
        let port = try await Self.freePort()

        var arguments = [
            "python3", script.path, "--port", "\(port)", "--out", outputFile.path, "--mode", options.mode.rawValue,
        ]
        if options.mode != .plain {
            let openssl = try await Subprocess.run(
                [
                    "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "1",
                    "-keyout", "key.pem", "-out", "cert.pem",
                ],
                in: directory
            )
            try #require(openssl.succeeded, "openssl could not create a self-signed certificate: \(openssl.output)")
            arguments += [
                "--cert", directory.appendingPathComponent("cert.pem").path,
                "--key", directory.appendingPathComponent("key.pem").path,
            ]
        }
        if let credentials = options.credentials {
            arguments += ["--user", credentials.username, "--password", credentials.password]
        }
        for mechanism in options.excludedMechanisms { arguments += ["--exclude-auth", mechanism] }

        let stderrFile = directory.appendingPathComponent("stderr.log")
        let lifeline = try ChildProcess.pipe()
        let process: ChildProcess
        do {
            process = try ChildProcess(
                arguments,
                directory: directory.path,
                stdin: .descriptor(lifeline.read),
                stderr: .file(stderrFile.path)
            )
        } catch {
            close(lifeline.read)
            close(lifeline.write)
            throw error
        }
        close(lifeline.read)
        defer {
            // SIGKILL: the test process's threads block SIGTERM, and children inherit the mask.
            process.signal(SIGKILL)
            close(lifeline.write)
        }

        try await Self.waitUntilAccepting(port: port, process: process, stderrFile: stderrFile)
        return try await body(AiosmtpdServer(port: port, outputFile: outputFile))
    }

    /// Polls TCP connects (every 50 ms, at most 20 s) until the server accepts one.
    private static func waitUntilAccepting(port: Int, process: ChildProcess, stderrFile: URL) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(20))
        while true {
            do {
                let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connectTimeout(.seconds(1))
                    .connect(host: "127.0.0.1", port: port).get()
                try? await channel.close().get()
                return
            } catch {
                let log = (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? ""
                guard process.isRunning else {
                    throw ServerError(message: "aiosmtpd exited (is `pip install aiosmtpd` done?):\n\(log)")
                }
                guard clock.now < deadline else {
                    throw ServerError(message: "aiosmtpd did not accept connections within 20 s:\n\(log)")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    struct ServerError: Error, CustomStringConvertible {
        var message: String
        var description: String { self.message }
    }

    /// A port that was free a moment ago: bind port 0 on loopback, read it, close.
    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port
        try await channel.close().get()
        return try #require(port)
    }

    // MARK: The server

    private static let script = #"""
        import argparse, email, email.policy, json, os, signal, ssl, sys, threading
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        parser = argparse.ArgumentParser()
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--out", required=True)
        parser.add_argument("--mode", choices=["plain", "starttls", "tls"], default="plain")
        parser.add_argument("--cert")
        parser.add_argument("--key")
        parser.add_argument("--user")
        parser.add_argument("--password")
        parser.add_argument("--exclude-auth", action="append", default=[])
        args = parser.parse_args()
        write_lock = threading.Lock()

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if address.startswith("reject"):
                    return "550 5.1.1 Recipient address rejected"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                raw = envelope.original_content
                message = email.message_from_bytes(raw, policy=email.policy.default)
                record = {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "raw": raw.decode("utf-8", errors="replace"),
                    "eight_bit": any(byte > 127 for byte in raw),
                    "subject": str(message["subject"]),
                    "body": message.get_content().replace("\r\n", "\n"),
                    "headers": {name: str(value) for name, value in message.items()},
                    "tls": session.ssl is not None,
                    "auth_mechanism": session.auth_data if isinstance(session.auth_data, str) else None,
                }
                with write_lock, open(args.out, "a", encoding="utf-8") as out:
                    out.write(json.dumps(record) + "\n")
                return "250 2.0.0 Message accepted"

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                args.user is not None
                and isinstance(auth_data, LoginPassword)
                and auth_data.login == args.user.encode()
                and auth_data.password == args.password.encode()
            )
            return AuthResult(success=ok, handled=False, auth_data=mechanism if ok else None)

        kwargs = dict(
            hostname="127.0.0.1",
            port=args.port,
            server_hostname="localhost",
            authenticator=authenticator,
            auth_exclude_mechanism=args.exclude_auth,
        )
        if args.mode != "plain":
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(args.cert, args.key)
            if args.mode == "starttls":
                kwargs.update(tls_context=context, require_starttls=True, auth_require_tls=True)
            else:
                kwargs.update(ssl_context=context, auth_require_tls=False)
        else:
            kwargs.update(auth_require_tls=False)

        # The test process blocks SIGTERM in its threads and children inherit the mask.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
        controller = Controller(Handler(), **kwargs)
        controller.start()
        # Lives as long as the test holds the other end of stdin, even if the test process dies.
        sys.stdin.buffer.read()
        os._exit(0)
        """#
}
