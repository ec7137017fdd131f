import NIOCore
import NIOSSL

/// Bounds on what a server may send, so a hostile or broken server cannot grow our memory.
struct SMTPReplyLimits: Sendable {
    /// Longest reply line, without its line ending. RFC 5321 §4.5.3.1.5 allows 512 with CRLF.
    var maxLineBytes = 4096
    /// Most lines in one (multi-line) reply; EHLO replies are the longest, typically under 20.
    var maxLinesPerReply = 128
}

/// Turns the byte stream into complete `SMTPReply` values and `SMTPRequest`s into bytes.
///
/// It also owns the two things that must happen on the event loop, between two reads:
/// - the per-reply timeout: armed while a reply is awaited (the greeting, then after each
///   request), cancelled when the reply is complete;
/// - the STARTTLS upgrade: on the `220` reply to STARTTLS it inserts `NIOSSLClientHandler` at the
///   front of the pipeline before any further byte is read, and refuses plaintext that arrived
///   after that reply (it would otherwise be read as if it came over TLS; CVE-2011-0411).
final class SMTPClientHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = SMTPReply
    typealias OutboundIn = SMTPRequest
    typealias OutboundOut = ByteBuffer

    struct TLSUpgrade {
        var context: NIOSSLContext
        var serverHostname: String?
    }

    private let timeout: Duration
    private let limits: SMTPReplyLimits
    private let tlsUpgrade: TLSUpgrade?

    private var buffer = ByteBuffer()
    private var partialCode: Int?
    private var partialLines: [String] = []
    /// Replies requested but not yet complete; the greeting is the first.
    private var awaitingReplies = 1
    private var upgradeOnNextReply = false
    private var timeoutTask: Scheduled<Void>?
    private var failed = false

    init(timeout: Duration, limits: SMTPReplyLimits = SMTPReplyLimits(), tlsUpgrade: TLSUpgrade?) {
        self.timeout = timeout
        self.limits = limits
        self.tlsUpgrade = tlsUpgrade
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.armTimeout(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.cancelTimeout()
    }

    func channelActive(context: ChannelHandlerContext) {
        self.armTimeout(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.cancelTimeout()
        context.fireChannelInactive()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.failed else { return }
        var incoming = Self.unwrapInboundIn(data)
        self.buffer.writeBuffer(&incoming)
        do {
            try self.decodeReplies(context: context)
        } catch {
            self.fail(context: context, error: error)
        }
    }

    private func decodeReplies(context: ChannelHandlerContext) throws {
        while !self.failed {
            let view = self.buffer.readableBytesView
            guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else { break }
            let length = view.distance(from: view.startIndex, to: newline)
            guard length <= self.limits.maxLineBytes + 1 else {  // + 1: the CR before LF
                throw SMTPError.protocolViolation("reply line longer than \(self.limits.maxLineBytes) bytes")
            }
            var line = self.buffer.readBytes(length: length) ?? []
            self.buffer.moveReaderIndex(forwardBy: 1)
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            guard let reply = try self.appendLine(line) else { continue }
            self.replyCompleted(context: context)
            context.fireChannelRead(Self.wrapInboundOut(reply))
            if self.upgradeOnNextReply {
                self.upgradeOnNextReply = false
                if reply.code == 220 {
                    try self.startTLS(context: context)
                    return
                }
            }
        }
        guard self.buffer.readableBytes <= self.limits.maxLineBytes + 1 else {
            throw SMTPError.protocolViolation("reply line longer than \(self.limits.maxLineBytes) bytes")
        }
        self.buffer.discardReadBytes()
    }

    /// Adds one line to the reply being read; returns the reply once its last line arrived.
    private func appendLine(_ line: [UInt8]) throws -> SMTPReply? {
        guard let parsed = Self.parseLine(line) else {
            throw SMTPError.protocolViolation("malformed reply line")
        }
        if let partialCode = self.partialCode, partialCode != parsed.code {
            throw SMTPError.protocolViolation("reply code changed within a multi-line reply")
        }
        self.partialCode = parsed.code
        self.partialLines.append(parsed.text)
        guard self.partialLines.count <= self.limits.maxLinesPerReply else {
            throw SMTPError.protocolViolation("reply longer than \(self.limits.maxLinesPerReply) lines")
        }
        guard parsed.isLast else { return nil }
        let reply = SMTPReply(code: parsed.code, lines: self.partialLines)
        self.partialCode = nil
        self.partialLines = []
        return reply
    }

    /// `Reply-code [ SP textstring ] CRLF`, or `Reply-code "-" textstring CRLF` for all lines of a
    /// multi-line reply but the last (RFC 5321 §4.2). Codes are 2xx–5xx.
    static func parseLine(_ line: [UInt8]) -> (code: Int, isLast: Bool, text: String)? {
        guard line.count >= 3 else { return nil }
        let digits = line[0..<3].map { Int($0) - Int(UInt8(ascii: "0")) }
        guard (2...5).contains(digits[0]), (0...9).contains(digits[1]), (0...9).contains(digits[2]) else {
            return nil
        }
        let code = digits[0] * 100 + digits[1] * 10 + digits[2]
        guard line.count > 3 else { return (code, true, "") }
        let separator = line[3]
        guard separator == UInt8(ascii: " ") || separator == UInt8(ascii: "-") else { return nil }
        let text = String(decoding: line[4...], as: UTF8.self)
        return (code, separator == UInt8(ascii: " "), text)
    }

    private func replyCompleted(context: ChannelHandlerContext) {
        // An unsolicited reply (a 421 before closing) is passed on; the next step reads it.
        self.awaitingReplies = max(0, self.awaitingReplies - 1)
        if self.awaitingReplies > 0 {
            self.armTimeout(context: context)
        } else {
            self.cancelTimeout()
        }
    }

    private func startTLS(context: ChannelHandlerContext) throws {
        guard let upgrade = self.tlsUpgrade else {
            throw SMTPError.invalid("STARTTLS accepted but no TLS configuration is present")
        }
        guard self.buffer.readableBytes == 0, self.partialLines.isEmpty else {
            throw SMTPError.protocolViolation("server sent data after the STARTTLS reply, before the TLS handshake")
        }
        let handler = try NIOSSLClientHandler(context: upgrade.context, serverHostname: upgrade.serverHostname)
        try context.pipeline.syncOperations.addHandler(handler, position: .first)
        self.buffer.discardReadBytes()
        // The read-complete of this read now passes the TLS handler, which only forwards it after
        // delivering plaintext; without our own, the 220 would wait in NIOAsyncChannel's buffer.
        context.fireChannelReadComplete()
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var out = context.channel.allocator.buffer(capacity: 64)
        switch Self.unwrapOutboundIn(data) {
        case .command(let line):
            out.writeString(line)
            out.writeStaticString("\r\n")
        case .startTLS:
            // The reply to STARTTLS must be the next one read, so nothing may be outstanding.
            guard self.tlsUpgrade != nil, self.awaitingReplies == 0 else {
                promise?.fail(SMTPError.invalid("STARTTLS cannot be sent now"))
                return
            }
            self.upgradeOnNextReply = true
            out.writeStaticString("STARTTLS\r\n")
        case .message(let bytes):
            out.writeBytes(bytes)
        }
        self.awaitingReplies += 1
        if self.awaitingReplies == 1 { self.armTimeout(context: context) }
        context.write(Self.wrapOutboundOut(out), promise: promise)
    }

    // MARK: Failure and timeout

    private func fail(context: ChannelHandlerContext, error: any Error) {
        guard !self.failed else { return }
        self.failed = true
        self.cancelTimeout()
        self.buffer.clear()
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    private func armTimeout(context: ChannelHandlerContext) {
        self.timeoutTask?.cancel()
        let timeout = self.timeout
        self.timeoutTask = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) {
            self.timeoutTask = nil
            self.fail(context: context, error: SMTPError.timeout(timeout))
        }
    }

    private func cancelTimeout() {
        self.timeoutTask?.cancel()
        self.timeoutTask = nil
    }
}
