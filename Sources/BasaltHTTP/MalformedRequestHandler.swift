import BasaltCore
import HTTPTypes
public import NIOCore
public import NIOHTTP1
public import NIOHTTPTypes

/// Answers a request the HTTP parser rejects — a URI or header over the limits, a malformed
/// request line — with a problem document (API.md §1: every error is one) instead of the empty
/// `400` the server would send, then closes the connection as that answer requires.
///
/// It sits right after HTTP decoding. When a request is still being answered on the connection
/// (a bad request pipelined behind a good one) it steps aside: the server's own answer follows
/// the one in flight, and two answers must never interleave.
public final class MalformedRequestHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    /// Requests read and not yet fully answered.
    var open = 0
    /// Whether this handler answered already: what the client still sends is read and dropped.
    var answered = false

    public init() {}

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if answered { return }
        if case .head = unwrapInboundIn(data) { open += 1 }
        context.fireChannelRead(data)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { open = max(0, open - 1) }
        context.write(data, promise: promise)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if answered { return }
        guard error is HTTPParserError, open == 0 else {
            context.fireErrorCaught(error)
            return
        }
        let (fields, body) = Self.problem()
        context.write(wrapOutboundOut(.head(HTTPResponse(status: .badRequest, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        answered = true
        // Close the output only: a client still sending the rest of its request would otherwise
        // get a reset before it reads this answer. It closes its side once it has read it (and
        // the idle timeout closes a client that does not).
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(mode: .output, promise: nil) }
    }

    /// The answer to a request the parser rejected: its headers and problem document.
    static func problem() -> (HTTPFields, ByteBuffer) {
        let requestID = RecordID.make()
        let problem = BasaltError(.badRequest, "The request line or its headers are malformed or over the size limits")
        let body = ByteBuffer(bytes: Problem.body(problem, instance: "/", requestID: requestID).serializedBytes())
        var fields: HTTPFields = [.contentType: "application/problem+json", .cacheControl: "no-store", .connection: "close"]
        fields[.contentLength] = String(body.readableBytes)
        fields[BasaltHeader.requestID] = requestID
        return (fields, body)
    }
}

/// `MalformedRequestHandler` for a connection's first request, which the WebSocket upgrade
/// pipeline parses before the HTTP handlers exist (the upgrade handler would drop the parser's
/// error and close without an answer). It sits right after the HTTP decoder and steps aside for
/// good once anything is read: what follows is upgraded, or answered by the HTTP handlers,
/// `MalformedRequestHandler` among them. It never unwraps what passes (after an upgrade that is
/// WebSocket frames) and stays in the pipeline: removing itself from inside `channelRead` stalled
/// the whole test suite.
public final class MalformedFirstRequestHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias InboundOut = HTTPServerRequestPart
    public typealias OutboundIn = HTTPServerResponsePart
    public typealias OutboundOut = HTTPServerResponsePart

    /// Whether anything was read: from then on this handler only passes things on.
    var read = false
    var answered = false

    public init() {}

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if answered { return }
        read = true
        context.fireChannelRead(data)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !read, !answered, error is HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        answered = true
        let (fields, body) = MalformedRequestHandler.problem()
        var headers = HTTPHeaders()
        for f in fields { headers.add(name: f.name.rawName, value: f.value) }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .badRequest, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        // As MalformedRequestHandler: close the output only, so the client reads the answer.
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(mode: .output, promise: nil) }
    }
}
