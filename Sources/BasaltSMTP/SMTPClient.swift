import Foundation
public import Logging
public import NIOCore
public import NIOPosix
import NIOSSL

/// Submits mail over SMTP (RFC 5321), one connection per message.
///
/// ```swift
/// let client = SMTPClient(configuration: try SMTPConfiguration(url: "smtps://mailer:s3cret@smtp.example.com"),
///                         logger: logger)
/// try await client.send(MailMessage(from: "noreply@example.com", to: ["ada@example.com"],
///                                   subject: "Welcome", textBody: "Hello!\n"))
/// ```
///
/// A failure throws `SMTPError`; its `isTransient` tells a retrying caller whether to try again.
public struct SMTPClient: Sendable {
    private let configuration: SMTPConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger

    public init(
        configuration: SMTPConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
    }

    /// Sends `message` on a new connection: greeting, EHLO (HELO if EHLO is refused), STARTTLS and
    /// EHLO again when configured, AUTH when credentials are set, MAIL FROM, RCPT TO for each
    /// recipient, DATA, QUIT. The message is validated and rendered before connecting.
    ///
    /// A refused recipient fails the whole send (nothing is delivered); the connection is closed
    /// on every path.
    public func send(_ message: MailMessage) async throws {
        let configuration = self.configuration
        try Self.validate(configuration)
        let mail = try message.render(
            heloName: configuration.heloName,
            secondsSince1970: Int64(Date().timeIntervalSince1970.rounded(.down))
        )

        var logger = self.logger
        logger[metadataKey: "smtp.host"] = "\(configuration.host)"
        logger[metadataKey: "smtp.port"] = "\(configuration.port)"

        let tlsContext = try await self.makeTLSContext()
        let serverHostname = Self.isIPAddress(configuration.host) ? nil : configuration.host

        let channel: NIOAsyncChannel<SMTPReply, SMTPRequest>
        do {
            logger.debug("smtp connect")
            channel = try await ClientBootstrap(group: self.eventLoopGroup)
                .connectTimeout(TimeAmount(configuration.timeout))
                .connect(host: configuration.host, port: configuration.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let pipeline = channel.pipeline.syncOperations
                        if configuration.security == .tls, let tlsContext {
                            try pipeline.addHandler(
                                NIOSSLClientHandler(context: tlsContext, serverHostname: serverHostname)
                            )
                        }
                        let upgrade =
                            configuration.security == .startTLS
                            ? tlsContext.map {
                                SMTPClientHandler.TLSUpgrade(context: $0, serverHostname: serverHostname)
                            }
                            : nil
                        try pipeline.addHandler(SMTPClientHandler(timeout: configuration.timeout, tlsUpgrade: upgrade))
                        return try NIOAsyncChannel<SMTPReply, SMTPRequest>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw SMTPError.connection(error, command: "CONNECT")
        }

        try await channel.executeThenClose { inbound, outbound in
            var session = SMTPSession(
                replies: inbound.makeAsyncIterator(),
                outbound: outbound,
                configuration: configuration,
                logger: logger
            )
            try await session.run(mail)
        }
        logger.debug("smtp message accepted", metadata: ["smtp.recipients": "\(mail.forwardPaths.count)"])
    }

    /// The name given in EHLO goes on the command line: a line break there would inject commands.
    private static func validate(_ configuration: SMTPConfiguration) throws {
        let helo = configuration.heloName
        guard !helo.isEmpty, helo.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F }) else {
            throw SMTPError.invalid("heloName must be a non-empty name without spaces or line breaks")
        }
        guard (1...65535).contains(configuration.port) else { throw SMTPError.invalid("port must be 1-65535") }
        if let username = configuration.username, username.contains("\0") {
            throw SMTPError.invalid("username must not contain NUL")
        }
        // Credentials never cross a network in clear text: without TLS, AUTH only to this machine.
        if configuration.username != nil, configuration.security == .none, !isLoopback(configuration.host) {
            throw SMTPError.invalid("credentials would travel in clear text to \(configuration.host); use smtp+starttls:// or smtps://")
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased()
        return h == "localhost" || h.hasPrefix("127.") || h == "::1" || h == "[::1]"
    }

    /// Building a context reads trust roots from disk, so it runs on the blocking-I/O pool.
    private func makeTLSContext() async throws -> NIOSSLContext? {
        guard self.configuration.security != .none else { return nil }
        let tlsConfiguration = self.configuration.tlsConfiguration ?? TLSConfiguration.makeClientConfiguration()
        do {
            return try await NIOThreadPool.singleton.runIfActive { try NIOSSLContext(configuration: tlsConfiguration) }
        } catch {
            throw SMTPError(code: nil, message: "invalid TLS configuration", isTransient: false, underlying: error)
        }
    }

    /// SNI and certificate names are for host names only; an IP literal gets neither.
    static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}
