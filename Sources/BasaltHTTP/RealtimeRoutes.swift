import BasaltCore
public import BasaltServices
import BasaltStorage
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle

/// `GET /v1/realtime`: Server-Sent Events (API.md §10).
public struct RealtimeRoutes: Sendable {
    let realtime: RealtimeService
    let tickets: RealtimeTickets
    let credentials: CredentialCheck
    /// How often an open stream checks its credential again (roles changed, user disabled,
    /// session ended, key revoked) and sends `: ping` when it has nothing else to send.
    let recheckEvery: Duration
    let pingEvery: Duration
    /// How long a WebSocket may stay open without a subscription (an idle socket costs the
    /// server a connection and a task; the HTTP idle timeout does not reach upgraded ones).
    let subscribeWithin: Duration

    public init(
        realtime: RealtimeService,
        tickets: RealtimeTickets,
        apiKeys: ApiKeyService,
        auth: AuthService,
        recheckEvery: Duration = .seconds(2),
        pingEvery: Duration = .seconds(15),
        subscribeWithin: Duration = .seconds(10)
    ) {
        self.realtime = realtime
        self.tickets = tickets
        self.credentials = CredentialCheck(apiKeys: apiKeys, auth: auth)
        self.recheckEvery = recheckEvery
        self.pingEvery = pingEvery
        self.subscribeWithin = subscribeWithin
    }

    public var endpoints: [Endpoint] {
        [
            Endpoint(.get, "/v1/realtime", .caller) { req, ctx in try await stream(req, ctx) },
            Endpoint(.post, "/v1/realtime/tickets", .caller) { req, ctx in
                // Only a credential can be traded for a ticket: an anonymous stream needs none.
                guard let credential = req.headers[.authorization], !ctx.principal.isAnonymous else {
                    throw BasaltError(.unauthenticated, "A ticket stands for a credential: send one")
                }
                let ticket = try await tickets.issue(credential: credential)
                let body = JSONObject([("ticket", .string(ticket)), ("expires_in", .int(RealtimeTickets.lifetimeSeconds))])
                return HTTPSupport.json(.created, .object(body), headers: [.cacheControl: "no-store"])
            },
        ]
    }

    func stream(_ req: Request, _ ctx: BasaltRequestContext) async throws -> Response {
        if let accept = req.headers[.accept], !accept.contains("text/event-stream"), !accept.contains("*/*") {
            throw BasaltError(.notAcceptable, "This endpoint answers text/event-stream")
        }
        let q = try QueryParameters(req.uri.query)
        var query = RealtimeQuery()
        if let cs = q.get("collections") {
            let names = cs.split(separator: ",", omittingEmptySubsequences: true).map { String($0.trimmingOWS()) }
            guard !names.isEmpty, names.count <= 1000 else {
                throw BasaltError.badRequest("collections is a comma-separated list of collection names")
            }
            query.collections = names
        }
        query.filter = q.get("filter")
        if let resume = req.headers[BasaltHeader.lastEventID] ?? q.get("after") { query.after = try Self.sequence(resume) }
        let address = ctx.principal.clientAddress
        let (principal, authorization) = try await caller(req, ctx)
        let opened = try await realtime.subscribe(query, principal: principal)
        let recheck = authorization
        let requestID = ctx.requestID
        let credentials = self.credentials
        let recheckEvery = self.recheckEvery
        let pingEvery = self.pingEvery
        let hub = realtime.hub
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-store", BasaltHeader.accelBuffering: "no"],
            body: ResponseBody { writer in
                // Streams never end on their own: a graceful shutdown ends them all (the server
                // stops first and waits for its requests).
                try await withGracefulShutdownHandler {
                    var subscription = opened
                    defer { subscription.release() }
                    // A comment first, so clients and proxies see the stream open at once.
                    try await writer.write(ByteBuffer(string: ": subscribed\n\n"))
                    var checked = ContinuousClock.now
                    var lastWrite = ContinuousClock.now
                    while true {
                        if let authorization = recheck, checked.duration(to: .now) >= recheckEvery {
                            checked = .now
                            do {
                                subscription.principal = try await credentials.principal(authorization, address: address, requestID: requestID)
                            } catch let e as BasaltError {
                                try await writer.write(Self.errorFrame(e, requestID: requestID))
                                break
                            }
                        }
                        let batch: [RealtimeDelivery]
                        do {
                            batch = try await subscription.next(timeout: min(recheckEvery, pingEvery))
                        } catch RealtimeSubscription.End.tooSlow {
                            try await writer.write(Self.errorFrame(Self.tooSlow, requestID: requestID))
                            break
                        } catch RealtimeSubscription.End.shutdown {
                            break
                        }
                        if batch.isEmpty {
                            guard lastWrite.duration(to: .now) >= pingEvery else { continue }
                            try await writer.write(ByteBuffer(string: ": ping\n\n"))
                        } else {
                            var buffer = ByteBuffer()
                            for d in batch {
                                buffer.writeString("id: \(StoredEvent.sequenceText(d.sequence))\nevent: \(d.type)\ndata: ")
                                buffer.writeBytes(JSONValue.object(d.event).serializedBytes())
                                buffer.writeString("\n\n")
                            }
                            try await writer.write(buffer)
                        }
                        lastWrite = .now
                    }
                } onGracefulShutdown: {
                    hub.head.close()
                }
                try await writer.finish(nil)
            }
        )
    }

    /// Who subscribes, and the credential to check again while the stream runs: a browser's
    /// `?ticket=` stands for the credential it was issued for (single use).
    func caller(_ req: Request, _ ctx: BasaltRequestContext) async throws -> (Principal, String?) {
        guard let ticket = try QueryParameters(req.uri.query).get("ticket") else { return (ctx.principal, req.headers[.authorization]) }
        let credential = try await tickets.redeem(ticket)
        return (try await credentials.principal(credential, address: ctx.principal.clientAddress, requestID: ctx.requestID), credential)
    }

    /// A resume point: an event sequence, up to 20 decimal digits.
    static func sequence(_ text: String) throws -> Int64 {
        guard text.utf8.count <= 20, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let n = Int64(text) else {
            throw BasaltError.badRequest("Last-Event-ID and after are event sequences: up to 20 decimal digits")
        }
        return n
    }

    static let tooSlow = BasaltError(.conflict, "The subscriber fell too far behind the event stream; resume from the last sequence it received")

    /// `event: error` with the problem document: why the stream ends.
    static func errorFrame(_ e: BasaltError, requestID: String) -> ByteBuffer {
        var buffer = ByteBuffer(string: "event: error\ndata: ")
        buffer.writeBytes(Problem.body(e, instance: "/v1/realtime", requestID: requestID).serializedBytes())
        buffer.writeString("\n\n")
        return buffer
    }
}
