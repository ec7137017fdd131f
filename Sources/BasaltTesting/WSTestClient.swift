public import BasaltCore
import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOWebSocket
import Synchronization

/// A WebSocket client for tests: connects to a live test server, sends text messages, and
/// collects the server's messages (each parsed as JSON) in order.
public final class WSTestClient: Sendable {
    final class Inbox: Sendable {
        struct State {
            var messages: [JSONValue] = []
            var taken = 0
            var ended = false
        }
        let state = Mutex(State())
        func withLock<T>(_ body: (inout State) -> T) -> T { state.withLock { body(&$0) } }
    }
    let inbox: Inbox
    let outgoing: AsyncStream<String>.Continuation
    let connection: Task<Void, any Error>

    /// Connects to `ws://127.0.0.1:<port><path>`; throws when the server refuses the upgrade.
    public static func open(port: Int, path: String, headers: [String: String] = [:]) async throws -> WSTestClient {
        var fields = HTTPFields()
        for (k, v) in headers { if let name = HTTPField.Name(k) { fields[name] = v } }
        let inbox = Inbox()
        let (toSend, outgoing) = AsyncStream<String>.makeStream()
        let (opened, openedContinuation) = AsyncStream<Void>.makeStream()
        let logger = Logger(label: "ws-test", factory: { _ in SwiftLogNoOpLogHandler() })
        let connection = Task {
            defer {
                inbox.withLock { $0.ended = true }
                openedContinuation.finish()
            }
            _ = try await WebSocketClient.connect(
                url: "ws://127.0.0.1:\(port)\(path)",
                configuration: .init(maxFrameSize: 1 << 20, additionalHeaders: fields),
                logger: logger
            ) { inbound, outbound, _ in
                openedContinuation.yield()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await text in toSend { try await outbound.write(.text(text)) }
                        // Cancelled: the server closed first, and a close now would wait for an
                        // answer that never comes.
                        if !Task.isCancelled { try await outbound.close(.normalClosure, reason: nil) }
                    }
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        if case .text(let text) = message, let value = try? JSONValue.parse(text) {
                            inbox.withLock { $0.messages.append(value) }
                        }
                    }
                    group.cancelAll()
                }
            }
        }
        var waitOpen = opened.makeAsyncIterator()
        if await waitOpen.next() == nil {
            // The upgrade failed: the task's error says why.
            try await connection.value
            throw TestSetupError("the WebSocket closed before it opened")
        }
        return WSTestClient(inbox: inbox, outgoing: outgoing, connection: connection)
    }

    init(inbox: Inbox, outgoing: AsyncStream<String>.Continuation, connection: Task<Void, any Error>) {
        self.inbox = inbox
        self.outgoing = outgoing
        self.connection = connection
    }

    /// Sends one text message.
    public func send(_ text: String) { outgoing.yield(text) }

    /// The next `count` messages not yet taken, or fewer if `timeout` passes or the connection
    /// ends first.
    public func next(_ count: Int, timeout: Duration = .seconds(10)) async -> [JSONValue] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (ready, ended) = inbox.withLock { ($0.messages.count - $0.taken >= count, $0.ended) }
            if ready || ended || ContinuousClock.now >= deadline {
                return inbox.withLock { box in
                    let end = min(box.messages.count, box.taken + count)
                    defer { box.taken = end }
                    return Array(box.messages[box.taken..<end])
                }
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Closes the connection (the close handshake) and waits up to `timeout` for it to end;
    /// returns whether it did (else the connection is dropped).
    @discardableResult
    public func close(timeout: Duration = .seconds(5)) async -> Bool {
        outgoing.finish()
        let deadline = ContinuousClock.now + timeout
        while !inbox.withLock({ $0.ended }) {
            guard ContinuousClock.now < deadline else {
                FileHandle.standardError.write(Data("WSTestClient: no close handshake within \(timeout)\n".utf8))
                connection.cancel()
                return false
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }
}
