import Foundation

/// A change as the server publishes it: a CloudEvents 1.0 object (API.md §10).
public struct RealtimeEvent: Sendable, Decodable {
    public var id: String
    /// `basalt.record.created`, `basalt.record.updated` or `basalt.record.deleted`.
    public var type: String
    /// `/v1/{collection}`.
    public var source: String
    /// The record's id.
    public var subject: String
    public var time: String?
    /// 20 digits, increasing with commit order: where a subscription resumes.
    public var sequence: String
    /// The record (as it is after the change; for a delete, as it was).
    public var data: JSONValue

    /// The collection the record belongs to.
    public var collection: String { String(source.split(separator: "/").last ?? "") }

    /// The record, decoded as the app's type.
    public func record<Fields: Decodable & Sendable>(as type: Fields.Type = Fields.self) throws -> Record<Fields> {
        try data.decode(Record<Fields>.self)
    }
}

/// Realtime subscriptions over Server-Sent Events.
public struct Realtime: Sendable {
    let client: BasaltClient

    /// Events of `collections` (every collection the caller may list when empty), optionally
    /// narrowed by `filter` (with exactly one collection), from after `sequence` if given.
    /// A dropped connection is reconnected with `Last-Event-ID`: nothing committed meanwhile is
    /// missed, nothing is delivered twice. The sequence ends by cancelling its task; it throws
    /// on an answer that retrying cannot change (an unknown collection, a resume point past
    /// retention: `410`, a session that ended).
    public func subscribe(collections: [String] = [], filter: Filter? = nil, after sequence: String? = nil) -> RealtimeSubscription {
        RealtimeSubscription(client: client, collections: collections, filter: filter, after: sequence)
    }
}

/// The events of one subscription, resumed across dropped connections.
public struct RealtimeSubscription: AsyncSequence, Sendable {
    public typealias Element = RealtimeEvent
    let client: BasaltClient
    let collections: [String]
    let filter: Filter?
    let after: String?
    /// No byte for this long (the server sends a comment every 15 s) counts as a drop.
    public var idleTimeout: Duration = .seconds(45)

    public func makeAsyncIterator() -> AsyncThrowingStream<RealtimeEvent, any Error>.AsyncIterator {
        let (stream, continuation) = AsyncThrowingStream<RealtimeEvent, any Error>.makeStream()
        let task = Task { await run(continuation) }
        continuation.onTermination = { _ in task.cancel() }
        return stream.makeAsyncIterator()
    }

    /// Progress shared by the reading task and the idle watchdog.
    actor Progress {
        var last: String?
        var lastActivity = ContinuousClock.now
        /// Whether this connection brought anything (a frame or a ping): only then does the
        /// backoff start again from its first step.
        var heard = false
        init(_ last: String?) { self.last = last }
        func connected() {
            lastActivity = .now
            heard = false
        }
        func touch() {
            lastActivity = .now
            heard = true
        }
        func delivered(_ sequence: String) { last = sequence }
    }

    struct IdleTimeout: Error {}
    /// The server ended the stream with an `error` frame (a problem document).
    struct EndedByServer: Error { var problem: Problem }

    func run(_ continuation: AsyncThrowingStream<RealtimeEvent, any Error>.Continuation) async {
        let progress = Progress(after)
        var failures = 0
        var refreshed = false
        while !Task.isCancelled {
            await progress.connected()
            do {
                var query: [URLQueryItem] = []
                if !collections.isEmpty { query.append(URLQueryItem(name: "collections", value: collections.joined(separator: ","))) }
                if let filter { query.append(URLQueryItem(name: "filter", value: try filter.validated())) }
                var headers = ["Accept": "text/event-stream"]
                if let last = await progress.last { headers["Last-Event-ID"] = last }
                let token = try await client.bearer(.automatic)
                if let token { headers["Authorization"] = "Bearer \(token)" }
                let request = TransportRequest(
                    method: "GET",
                    url: client.url("/v1/realtime", query: query),
                    headers: headers,
                    body: nil,
                    timeout: .seconds(365 * 86_400)
                )
                let (head, body) = try await client.transport.stream(request)
                if head.status != 200 {
                    var data = Data()
                    for try await chunk in body { data.append(chunk) }
                    throw EndedByServer(problem: BasaltClient.problem(.init(status: head.status, headers: head.headers, body: data)))
                }
                // A 200 that is not an event stream (a captive portal, a misrouted proxy) is a failure to retry.
                guard head.headers["content-type"]?.hasPrefix("text/event-stream") == true else { throw TransientFailure() }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        var parser = EventStreamParser()
                        for try await chunk in body {
                            await progress.touch()
                            for frame in parser.feed(chunk) {
                                guard let data = frame.data.data(using: .utf8) else { continue }
                                if frame.event == "error" {
                                    let problem = BasaltClient.problem(.init(status: 0, headers: [:], body: data))
                                    throw EndedByServer(problem: problem)
                                }
                                let event: RealtimeEvent
                                do {
                                    event = try Coding.decoder().decode(RealtimeEvent.self, from: data)
                                } catch {
                                    throw BasaltClientError.unexpectedResponse(status: 200, detail: "an event that is not a CloudEvent: \(error)")
                                }
                                continuation.yield(event)
                                await progress.delivered(event.sequence)
                            }
                        }
                    }
                    group.addTask {
                        while true {
                            try await Task.sleep(for: idleTimeout / 3)
                            if ContinuousClock.now - (await progress.lastActivity) > idleTimeout { throw IdleTimeout() }
                        }
                    }
                    // Either the stream ended (the server closed it) or the watchdog fired.
                    _ = try await group.next()
                    group.cancelAll()
                }
            } catch is CancellationError {
                break
            } catch let ended as EndedByServer {
                let problem = ended.problem
                switch problem.status {
                case 401 where client.apiKey == nil && !refreshed:
                    // The token was refused (or its session re-judged): refresh once and resume.
                    refreshed = true
                    if let token = try? await client.bearer(.automatic),
                        (try? await client.session.accessToken(replacing: token)) != nil
                    {
                        continue
                    }
                    continuation.finish(throwing: problem)
                    return
                case 409, 429, 500...:
                    // Too slow a consumer (cut off), rate limited, or the server in trouble: resume later.
                    break
                default:
                    continuation.finish(throwing: problem)
                    return
                }
            } catch let problem as Problem where problem.status == 429 || problem.status >= 500 {
                // A refresh that failed for a passing reason: try again later.
            } catch let problem as Problem {
                continuation.finish(throwing: problem)
                return
            } catch let error as BasaltClientError {
                continuation.finish(throwing: error)
                return
            } catch {
                if Task.isCancelled { break }
            }
            // Reconnect, waiting longer after each connection in a row that brought nothing.
            if await progress.heard {
                failures = 0
                refreshed = false
            } else {
                failures += 1
            }
            do { try await client.backoff(Swift.min(Swift.max(failures, 1), 6)) } catch { break }
        }
        continuation.finish()
    }

    struct TransientFailure: Error {}
}

/// The `text/event-stream` format (WHATWG HTML, Server-sent events): frames of `field: value`
/// lines ended by a blank line; `:` starts a comment.
struct EventStreamParser {
    /// The resume point is the event's own `sequence` (the server's `id:` line repeats it), so
    /// `id:` lines are not tracked.
    struct Frame {
        var event: String?
        var data: String
    }

    var pending = Data()
    var event: String?
    var data: [String] = []

    mutating func feed(_ chunk: Data) -> [Frame] {
        pending.append(chunk)
        var frames: [Frame] = []
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            var line = pending[pending.startIndex..<newline]
            pending = pending[(newline + 1)...]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            let text = String(decoding: line, as: UTF8.self)
            if text.isEmpty {
                if !data.isEmpty { frames.append(Frame(event: event, data: data.joined(separator: "\n"))) }
                event = nil
                data = []
                continue
            }
            if text.hasPrefix(":") { continue }
            let (field, value): (Substring, Substring)
            if let colon = text.firstIndex(of: ":") {
                field = text[..<colon]
                var v = text[text.index(after: colon)...]
                if v.first == " " { v = v.dropFirst() }
                value = v
            } else {
                (field, value) = (text[...], "")
            }
            switch field {
            case "event": event = String(value)
            case "data": data.append(String(value))
            default: break
            }
        }
        pending = Data(pending)
        return frames
    }
}
