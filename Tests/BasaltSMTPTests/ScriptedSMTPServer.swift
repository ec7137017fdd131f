import NIOCore
import NIOPosix
import Synchronization

/// A fake server for what a well-behaved server never does (silence, endless lines, plaintext
/// after STARTTLS) and for exact wire checks. It answers each client line with what `script`
/// returns; lines between DATA's 354 and the lone "." are recorded but not answered.
final class ScriptedSMTPServer: Sendable {
    enum Action: Sendable {
        /// Raw bytes to send, CRLFs included.
        case reply(String)
        case silence
        case close
    }

    let port: Int
    private let recorder: Recorder

    /// Every line the client sent, DATA content included (still dot-stuffed).
    var receivedLines: [String] { self.recorder.lines.withLock { $0 } }

    private init(port: Int, recorder: Recorder) {
        self.port = port
        self.recorder = recorder
    }

    /// Starts a server on a free loopback port, runs `body`, closes the server.
    static func with<T>(
        greeting: Action,
        script: @escaping @Sendable (String) -> Action,
        _ body: (ScriptedSMTPServer) async throws -> T
    ) async throws -> T {
        let recorder = Recorder()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ScriptHandler(greeting: greeting, script: script, recorder: recorder)
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let server = ScriptedSMTPServer(port: channel.localAddress?.port ?? 0, recorder: recorder)
        do {
            let result = try await body(server)
            try? await channel.close().get()
            return result
        } catch {
            try? await channel.close().get()
            throw error
        }
    }

    private final class Recorder: Sendable {
        let lines = Mutex<[String]>([])
        func record(_ line: String) { self.lines.withLock { $0.append(line) } }
    }

    private final class ScriptHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        private let greeting: Action
        private let script: @Sendable (String) -> Action
        private let recorder: Recorder
        private var pending: [UInt8] = []
        private var inData = false

        init(greeting: Action, script: @escaping @Sendable (String) -> Action, recorder: Recorder) {
            self.greeting = greeting
            self.script = script
            self.recorder = recorder
        }

        func channelActive(context: ChannelHandlerContext) {
            self.perform(self.greeting, context: context)
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = Self.unwrapInboundIn(data)
            self.pending += buffer.readBytes(length: buffer.readableBytes) ?? []
            while let newline = self.pending.firstIndex(of: UInt8(ascii: "\n")) {
                var lineBytes = Array(self.pending[..<newline])
                self.pending.removeSubrange(...newline)
                if lineBytes.last == UInt8(ascii: "\r") { lineBytes.removeLast() }
                let line = String(decoding: lineBytes, as: UTF8.self)
                self.recorder.record(line)
                if self.inData {
                    guard line == "." else { continue }
                    self.inData = false
                }
                let action = self.script(line)
                if line.uppercased() == "DATA", case .reply(let text) = action, text.hasPrefix("354") {
                    self.inData = true
                }
                self.perform(action, context: context)
            }
        }

        private func perform(_ action: Action, context: ChannelHandlerContext) {
            switch action {
            case .reply(let text):
                context.writeAndFlush(Self.wrapOutboundOut(ByteBuffer(string: text)), promise: nil)
            case .silence:
                break
            case .close:
                context.close(promise: nil)
            }
        }
    }
}

extension ScriptedSMTPServer.Action {
    /// A well-behaved server's answers; `overrides` replace them by command verb (upper-cased
    /// first word, "." for the end of DATA).
    static func standard(
        _ overrides: [String: ScriptedSMTPServer.Action] = [:]
    )
        -> @Sendable (String) -> ScriptedSMTPServer.Action
    {
        { line in
            let verb = line.split(separator: " ").first.map { $0.uppercased() } ?? ""
            if let override = overrides[verb] { return override }
            switch verb {
            case "EHLO": return .reply("250-mail.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
            case "HELO": return .reply("250 mail.test\r\n")
            case "MAIL", "RCPT": return .reply("250 2.1.0 OK\r\n")
            case "DATA": return .reply("354 End data with <CR><LF>.<CR><LF>\r\n")
            case ".": return .reply("250 2.0.0 queued\r\n")
            case "QUIT": return .reply("221 2.0.0 bye\r\n")
            case "RSET", "NOOP": return .reply("250 OK\r\n")
            default: return .reply("502 5.5.2 not implemented\r\n")
            }
        }
    }
}
