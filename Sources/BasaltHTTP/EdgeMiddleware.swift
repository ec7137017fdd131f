import HTTPTypes
import BasaltCore
import Foundation
public import Hummingbird
import Logging
import NIOCore

/// The outermost middleware, in one pass: assigns the request id and trace context, renders every
/// error below it as problem+json (the one mapping point), adds security and CORS headers, and
/// writes one JSON log line per request. One layer instead of four keeps the hot path short.
public struct EdgeMiddleware: RouterMiddleware {
    public typealias Context = BasaltRequestContext
    let settings: HTTPSettings
    let logger: Logger

    public init(settings: HTTPSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var context = context
        context.requestID = Self.requestID(request.headers[BasaltHeader.requestID])
        let trace = Self.traceparent(request.headers[BasaltHeader.traceparent])
        let origin = request.headers[.origin]

        var response: Response
        if request.method == .options, origin != nil, request.headers[.accessControlRequestMethod] != nil {
            response = Response(status: .noContent)  // CORS preflight
        } else {
            do {
                response = try await next(request, context)
            } catch {
                var e = Problem.normalize(error)
                if e.code == .notFound, error is HTTPError, let allow = MethodGuard.allowed(for: request.uri.path) {
                    // The path exists; the method does not.
                    e = BasaltError(.methodNotAllowed, "Use one of \(allow)", headers: [("Allow", allow)])
                }
                if e.code == .internalError {
                    logger.error("unhandled error", metadata: ["request.id": "\(context.requestID)", "error": "\(String(reflecting: error))"])
                } else if let u = e.underlying {
                    logger.debug("request failed", metadata: ["request.id": "\(context.requestID)", "error": "\(String(reflecting: u))"])
                }
                response = Problem.response(e, instance: request.uri.path, requestID: context.requestID)
            }
        }
        response.headers[BasaltHeader.requestID] = context.requestID
        response.headers[BasaltHeader.traceparent] = trace
        response.headers[BasaltHeader.contentTypeOptions] = "nosniff"
        response.headers[BasaltHeader.frameOptions] = "DENY"
        response.headers[BasaltHeader.referrerPolicy] = "no-referrer"
        if response.headers[BasaltHeader.csp] == nil {
            response.headers[BasaltHeader.csp] = "default-src 'none'; frame-ancestors 'none'"
        }
        if let origin { applyCORS(origin: origin, request: request, to: &response) }

        if settings.requestLogs {
            let elapsed = ContinuousClock.now - start
            let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            logger.info("request", metadata: [
                "request.id": "\(context.requestID)",
                "http.method": "\(request.method.rawValue)",
                "http.route": "\(context.endpointPath ?? "unmatched")",
                "http.status": "\(response.status.code)",
                "duration_ms": "\((ms * 1000).rounded() / 1000)",
            ])
        }
        return response
    }

    func applyCORS(origin: String, request: Request, to response: inout Response) {
        guard settings.corsOrigins.contains("*") || settings.corsOrigins.contains(origin) else { return }
        response.headers[.accessControlAllowOrigin] = settings.corsOrigins.contains("*") ? "*" : origin
        response.headers[.vary] = [response.headers[.vary], "Origin"].compactMap { $0 }.joined(separator: ", ")
        response.headers[.accessControlExposeHeaders] = "ETag, Location, Link, X-Request-Id, RateLimit, RateLimit-Policy, Retry-After, Idempotent-Replayed"
        if request.method == .options {
            response.headers[.accessControlAllowMethods] = "GET, HEAD, POST, PUT, PATCH, DELETE"
            response.headers[.accessControlAllowHeaders] = "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, X-Request-Id, traceparent"
            response.headers[.accessControlMaxAge] = "600"
        }
    }

    /// Echo an incoming id of 1–128 characters from `[A-Za-z0-9._:-]`, else make one.
    static func requestID(_ incoming: String?) -> String {
        if let s = incoming, (1...128).contains(s.utf8.count),
            s.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2E || $0 == 0x5F || $0 == 0x3A || $0 == 0x2D })
        {
            return s
        }
        return RecordID.make()
    }

    /// Continue an incoming W3C trace (same trace id, new span id), or start one.
    static func traceparent(_ incoming: String?) -> String {
        var rng = SystemRandomNumberGenerator()
        let span = hex16(rng.next())
        if let t = incoming {
            let parts = t.split(separator: "-")
            if parts.count == 4, parts[0] == "00", parts[1].count == 32, parts[2].count == 16, parts[3].count == 2,
                parts[1].allSatisfy(\.isHexDigit), parts[1] != String(repeating: "0", count: 32)
            {
                return "00-\(parts[1].lowercased())-\(span)-\(parts[3])"
            }
        }
        let trace = hex16(rng.next()) + hex16(rng.next())
        return "00-\(trace)-\(span)-01"
    }

    static func hex16(_ v: UInt64) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8](repeating: 0, count: 16)
        for i in 0..<16 { out[15 - i] = digits[Int((v >> (UInt64(i) * 4)) & 0xF)] }
        return String(decoding: out, as: UTF8.self)
    }
}
