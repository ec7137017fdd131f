import Logging
import NIOCore

/// One conversation on an open connection. Not Sendable: it lives inside `executeThenClose`.
struct SMTPSession {
    var replies: NIOAsyncChannelInboundStream<SMTPReply>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<SMTPRequest>
    let configuration: SMTPConfiguration
    let logger: Logger

    mutating func run(_ mail: RenderedMail) async throws {
        do {
            try await self.converse(mail)
        } catch let error as SMTPError where error.code != nil || !error.isTransient {
            // A refusal, not a broken connection: the server still listens, so say goodbye.
            await self.quit()
            throw error
        }
        await self.quit()
    }

    private mutating func converse(_ mail: RenderedMail) async throws {
        try self.expect(await self.nextReply(after: "CONNECT"), [220], after: "CONNECT")
        var extensions = try await self.hello()

        if self.configuration.security == .startTLS {
            guard extensions["STARTTLS"] != nil else {
                throw SMTPError.invalid("the server does not offer STARTTLS, which the configuration requires")
            }
            try self.expect(await self.request(.startTLS, verb: "STARTTLS"), [220], after: "STARTTLS")
            extensions = try await self.hello()  // RFC 3207 §4.2: forget what was learned before TLS
        }

        if let username = self.configuration.username {
            try await self.authenticate(username: username, password: self.configuration.password ?? "", extensions)
        }

        var mailFrom = "MAIL FROM:<\(mail.reversePath)>"
        if mail.needsSMTPUTF8 {
            guard extensions["SMTPUTF8"] != nil else {
                throw SMTPError.invalid("an address is not ASCII and the server does not offer SMTPUTF8")
            }
            mailFrom += " SMTPUTF8"
        }
        try self.expect(await self.request(.command(mailFrom), verb: "MAIL"), [250], after: "MAIL")
        for recipient in mail.forwardPaths {
            try self.expect(
                await self.request(.command("RCPT TO:<\(recipient)>"), verb: "RCPT"),
                [250, 251],
                after: "RCPT"
            )
        }
        try self.expect(await self.request(.command("DATA"), verb: "DATA"), [354], after: "DATA")
        let payload = MIMEEncoding.dotStuffed(mail.content)
        try self.expect(await self.request(.message(payload), verb: "DATA-END"), [250], after: "DATA-END")
    }

    /// EHLO, or HELO when the server refuses EHLO (RFC 5321 §4.1.4). Returns the extensions.
    private mutating func hello() async throws -> [String: [String]] {
        let heloName = self.configuration.heloName
        let reply = try await self.request(.command("EHLO \(heloName)"), verb: "EHLO")
        if reply.code == 250 { return reply.extensions }
        guard (500..<600).contains(reply.code) else { throw SMTPError.unexpectedReply(reply, command: "EHLO") }
        try self.expect(await self.request(.command("HELO \(heloName)"), verb: "HELO"), [250], after: "HELO")
        return [:]
    }

    /// AUTH PLAIN with an initial response (RFC 4954, RFC 4616), or AUTH LOGIN when only that is
    /// offered. Credentials are never sent to a server that does not advertise AUTH.
    private mutating func authenticate(
        username: String,
        password: String,
        _ extensions: [String: [String]]
    )
        async throws
    {
        guard let offered = extensions["AUTH"].map({ Set($0.map { $0.uppercased() }) }) else {
            throw SMTPError.invalid("credentials are configured but the server does not offer AUTH")
        }
        if offered.contains("PLAIN") {
            let token = MIMEEncoding.base64([0] + Array(username.utf8) + [0] + Array(password.utf8))
            var reply = try await self.request(.command("AUTH PLAIN \(token)"), verb: "AUTH")
            if reply.code == 334 {  // a server that ignores initial responses asks again
                reply = try await self.request(.command(token), verb: "AUTH")
            }
            try self.expect(reply, [235], after: "AUTH")
        } else if offered.contains("LOGIN") {
            try self.expect(await self.request(.command("AUTH LOGIN"), verb: "AUTH"), [334], after: "AUTH")
            let user = MIMEEncoding.base64(Array(username.utf8))
            try self.expect(await self.request(.command(user), verb: "AUTH"), [334], after: "AUTH")
            let pass = MIMEEncoding.base64(Array(password.utf8))
            try self.expect(await self.request(.command(pass), verb: "AUTH"), [235], after: "AUTH")
        } else {
            throw SMTPError.invalid("the server offers neither AUTH PLAIN nor AUTH LOGIN")
        }
    }

    /// QUIT, best effort: the message is already accepted or the send already failed.
    private mutating func quit() async {
        _ = try? await self.request(.command("QUIT"), verb: "QUIT")
    }

    private mutating func request(_ request: SMTPRequest, verb: String) async throws -> SMTPReply {
        self.logger.debug("smtp command", metadata: ["smtp.command": "\(verb)"])
        do {
            try await self.outbound.write(request)
        } catch {
            // A write fails once the channel closed; the reason (a timeout, a protocol error) is
            // what the inbound stream ends with, so prefer that.
            do {
                _ = try await self.replies.next()
            } catch let reason as SMTPError {
                throw SMTPError.connection(reason, command: verb)
            } catch {}
            throw SMTPError.connection(error, command: verb)
        }
        return try await self.nextReply(after: verb)
    }

    private mutating func nextReply(after verb: String) async throws -> SMTPReply {
        let reply: SMTPReply?
        do {
            reply = try await self.replies.next()
        } catch {
            throw SMTPError.connection(error, command: verb)
        }
        guard let reply else {
            try Task.checkCancellation()  // a cancelled task ends the stream too
            var error = SMTPError.connectionClosed
            error.command = verb
            throw error
        }
        self.logger.trace("smtp reply", metadata: ["smtp.command": "\(verb)", "smtp.reply.code": "\(reply.code)"])
        return reply
    }

    private func expect(_ reply: SMTPReply, _ codes: [Int], after verb: String) throws {
        guard codes.contains(reply.code) else { throw SMTPError.unexpectedReply(reply, command: verb) }
    }
}
