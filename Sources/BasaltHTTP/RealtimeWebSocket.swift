import BasaltCore
import BasaltServices
import BasaltStorage
import Foundation
import HTTPTypes
public import Hummingbird
import HummingbirdWebSocket
import NIOCore
import NIOWebSocket
import ServiceLifecycle
import Synchronization

// `GET /v1/realtime` with `Upgrade: websocket` (API.md §10): the same subscriptions as the event
// stream, as JSON messages. The client's first message subscribes; the server answers
// `subscribed`, then one `event` message per event, or `error` with a problem document.
//
// The upgrade is decided by a router of its own. Every request to the path is upgraded: a
// refused credential or ticket is then told as an `error` message (status 401) and the server
// closes (1008) — a refused handshake would be a bare 400 that browsers cannot even read.

extension RealtimeRoutes {
    /// Adds the WebSocket route to the upgrade router. `rateLimit` is the HTTP router's own
    /// limiter: a handshake counts against the caller's quota like any request.
    public func registerWebSocket(on router: Router<BasaltRequestContext>, credentials: AuthMiddleware, rateLimit: RateLimitMiddleware) {
        router.add(middleware: Admission(credentials: credentials, rateLimit: rateLimit, routes: self))
        router.ws("/v1/realtime") { inbound, outbound, context in
            await self.serve(inbound, outbound, context.requestContext)
        }
    }

    /// Who connects: the credential (with the HTTP API's checks and throttling), or the one a
    /// `?ticket=` stands for, within the caller's rate limit; a refusal is kept for the
    /// connection to tell.
    struct Admission: RouterMiddleware {
        let credentials: AuthMiddleware
        let rateLimit: RateLimitMiddleware
        let routes: RealtimeRoutes
        func handle(
            _ request: Request,
            context: BasaltRequestContext,
            next: (Request, BasaltRequestContext) async throws -> Response
        ) async throws -> Response {
            var admitted = context
            do {
                _ = try await credentials.handle(request, context: context) { _, checked in
                    admitted = checked
                    return Response(status: .ok)
                }
                (admitted.principal, admitted.streamCredential) = try await routes.caller(request, admitted)
                _ = try await rateLimit.handle(request, context: admitted) { _, _ in Response(status: .ok) }
            } catch let e as BasaltError {
                admitted.webSocketRefusal = e
            }
            return try await next(request, admitted)
        }
    }

    func serve(_ inbound: WebSocketInboundStream, _ outbound: WebSocketOutboundWriter, _ ctx: BasaltRequestContext) async {
        let requestID = ctx.requestID.isEmpty ? UUID().uuidString.lowercased() : ctx.requestID
        let socket = Socket(outbound: outbound, requestID: requestID)
        let hub = realtime.hub
        if let refusal = ctx.webSocketRefusal {
            try? await socket.send(socket.error(refusal))
            try? await outbound.close(.policyViolation, reason: "refused")
            return
        }
        do {
            try await withGracefulShutdownHandler {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    let waiting = Mutex(true)
                    group.addTask {
                        // No subscription in time: say so and close (the loop below then ends).
                        try? await Task.sleep(for: subscribeWithin)
                        guard !Task.isCancelled, waiting.withLock({ $0 }) else { return }
                        let late = BasaltError.badRequest("No subscribe message arrived within \(subscribeWithin.components.seconds) seconds")
                        try? await socket.send(socket.error(late))
                        try? await socket.outbound.close(.policyViolation, reason: "no subscription")
                    }
                    var subscribed = false
                    // The client's messages, until it closes: the first valid `subscribe` starts
                    // the events; anything else is answered with an error and changes nothing.
                    for try await message in inbound.messages(maxSize: 64 * 1024) {
                        do {
                            guard !subscribed else {
                                throw BasaltError(.conflict, "This connection has its subscription: open another one for another")
                            }
                            let opened = try await realtime.subscribe(try Self.subscribeQuery(message), principal: ctx.principal)
                            subscribed = true
                            waiting.withLock { $0 = false }
                            try await socket.send(.object(JSONObject([("type", .string("subscribed"))])))
                            group.addTask {
                                await self.pump(opened, credential: ctx.streamCredential, ctx: ctx, socket: socket)
                            }
                        } catch let e as BasaltError {
                            try await socket.send(socket.error(e))
                        }
                    }
                    group.cancelAll()
                }
            } onGracefulShutdown: {
                hub.head.close()
            }
        } catch {
            // The connection went away; nothing is left to tell.
        }
    }

    /// Sends the subscription's events until it must end, then says why and closes.
    func pump(_ opened: RealtimeSubscription, credential: String?, ctx: BasaltRequestContext, socket: Socket) async {
        var subscription = opened
        defer { subscription.release() }
        var checked = ContinuousClock.now
        do {
            while !Task.isCancelled {
                if let credential, checked.duration(to: .now) >= recheckEvery {
                    checked = .now
                    do {
                        subscription.principal = try await credentials.principal(
                            credential,
                            address: ctx.principal.clientAddress,
                            requestID: socket.requestID
                        )
                    } catch let e as BasaltError {
                        try await socket.send(socket.error(e))
                        try await socket.outbound.close(.policyViolation, reason: "credential no longer valid")
                        return
                    }
                }
                let batch: [RealtimeDelivery]
                do {
                    batch = try await subscription.next(timeout: recheckEvery)
                } catch RealtimeSubscription.End.tooSlow {
                    try await socket.send(socket.error(Self.tooSlow))
                    try await socket.outbound.close(.policyViolation, reason: "too slow")
                    return
                } catch RealtimeSubscription.End.shutdown {
                    try await socket.outbound.close(.goingAway, reason: "server shutting down")
                    return
                }
                for d in batch {
                    try await socket.send(.object(JSONObject([("type", .string("event")), ("event", .object(d.event))])))
                }
            }
        } catch {
            // Writing failed: the client is gone.
        }
    }

    /// The one writer of a connection's messages.
    struct Socket: Sendable {
        let outbound: WebSocketOutboundWriter
        let requestID: String
        func send(_ value: JSONValue) async throws {
            try await outbound.write(.text(String(decoding: value.serializedBytes(), as: UTF8.self)))
        }
        func error(_ e: BasaltError) -> JSONValue {
            .object(JSONObject([("type", .string("error")), ("problem", Problem.body(e, instance: "/v1/realtime", requestID: requestID))]))
        }
    }

    /// `{"type": "subscribe", "collections": […], "filter": "…", "after": "<sequence>"}`.
    static func subscribeQuery(_ message: WebSocketMessage) throws -> RealtimeQuery {
        guard case .text(let text) = message, let value = try? JSONValue.parse(text), let o = value.objectValue,
            o["type"]?.stringValue == "subscribe"
        else {
            throw BasaltError.badRequest(#"Send {"type": "subscribe", "collections": […], "filter": "…", "after": "<sequence>"} as a text message"#)
        }
        var query = RealtimeQuery()
        if let cs = o["collections"], cs != .null {
            guard let list = cs.arrayValue, !list.isEmpty, list.count <= 1000 else {
                throw BasaltError.badRequest("collections is a list of collection names")
            }
            query.collections = try list.map { v in
                guard let name = v.stringValue else { throw BasaltError.badRequest("collections is a list of collection names") }
                return name
            }
        }
        if let f = o["filter"], f != .null {
            guard let filter = f.stringValue else { throw BasaltError.badRequest("filter is a string") }
            query.filter = filter
        }
        if let a = o["after"], a != .null {
            guard let s = a.stringValue else { throw BasaltError.badRequest("after is an event sequence, as a string of up to 20 digits") }
            query.after = try Self.sequence(s)
        }
        return query
    }
}
