public import BasaltCore
public import BasaltServices
import Foundation
public import HTTPTypes
public import Hummingbird
public import HummingbirdWebSocket
import Logging
import NIOCore
import Synchronization

/// Per-request state carried between middleware and handlers.
public struct BasaltRequestContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public var requestID: String = ""
    /// Set by `AuthMiddleware`; anonymous until then.
    public var principal: Principal
    /// Whether the request carried credentials (drives `Cache-Control: private`).
    public var hasCredentials = false
    public var peerAddress: String
    /// Headers every answer to this request carries, an error answer included: middleware below
    /// the edge adds them (`RateLimit`), and the edge applies them after mapping any error.
    public let responseHeaders = ResponseHeaders()
    /// The credential a realtime stream checks again while it runs: the `Authorization` header's,
    /// or the one a browser's ticket stood for.
    public var streamCredential: String?
    /// Why a WebSocket caller is refused: told in-band after the upgrade, since a browser cannot
    /// read the status of a refused handshake.
    public var webSocketRefusal: BasaltError?
    /// The handler a WebSocket upgrade hands the connection to (the upgrade router sets it).
    public let webSocket = WebSocketHandlerReference<Self>()

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        let address = source.channel.remoteAddress?.ipAddress ?? "unknown"
        peerAddress = address
        principal = .anonymous(address)
    }

    public var maxUploadSize: Int { 1 << 20 }
}

/// Response headers set below the edge for whatever answer the request ends with. A reference
/// type, so that the copy of the context the edge holds sees what inner middleware added.
public final class ResponseHeaders: Sendable {
    let fields = Mutex<HTTPFields>([:])
    public func set(_ name: HTTPField.Name, _ value: String) { fields.withLock { $0[name] = value } }
    func apply(to response: inout Response) {
        fields.withLock { f in
            for field in f { response.headers[field.name] = field.value }
        }
    }
}

/// Header names Basalt uses beyond the standard set.
public enum BasaltHeader {
    public static let requestID = HTTPField.Name("X-Request-Id")!
    public static let traceparent = HTTPField.Name("traceparent")!
    public static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    public static let idempotentReplayed = HTTPField.Name("Idempotent-Replayed")!
    public static let rateLimit = HTTPField.Name("RateLimit")!
    public static let rateLimitPolicy = HTTPField.Name("RateLimit-Policy")!
    public static let forwardedFor = HTTPField.Name("X-Forwarded-For")!
    public static let contentTypeOptions = HTTPField.Name("X-Content-Type-Options")!
    public static let frameOptions = HTTPField.Name("X-Frame-Options")!
    public static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
    public static let csp = HTTPField.Name("Content-Security-Policy")!
    public static let link = HTTPField.Name("Link")!
    public static let lastEventID = HTTPField.Name("Last-Event-ID")!
    /// Tells nginx not to buffer an event stream.
    public static let accelBuffering = HTTPField.Name("X-Accel-Buffering")!
}
