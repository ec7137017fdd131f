import BasaltCore
public import BasaltTelemetry
import Foundation
import HTTPTypes
public import Hummingbird
public import Logging
import NIOCore
import Tracing

/// The outermost middleware, in one pass: assigns the request id and trace context, renders every
/// error below it as problem+json (the one mapping point), adds security and CORS headers, and
/// writes one JSON log line per request and counts it in the metrics. One layer instead of four
/// keeps the hot path short.
public struct EdgeMiddleware: RouterMiddleware {
    public typealias Context = BasaltRequestContext
    let settings: HTTPSettings
    let logger: Logger
    let surface: HTTPSurface
    let metrics: Metrics?
    let traffic: TrafficObservations?

    public init(settings: HTTPSettings, logger: Logger, surface: HTTPSurface, metrics: Metrics? = nil, traffic: TrafficObservations? = nil) {
        self.settings = settings
        self.logger = logger
        self.surface = surface
        self.metrics = metrics
        self.traffic = traffic
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let incoming = request.headers[BasaltHeader.traceparent]
        let valid = incoming.flatMap(Self.parseTraceparent)
        // Recorded: as the caller's trace says, else as the sampling ratio draws.
        guard Trace.isOn, valid.map({ Self.sampledFlag($0.1) }) ?? Trace.sampleRoot() else {
            return try await answer(request, context: context, next: next, trace: Self.traceparent(incoming, sampled: !Trace.isOn))
        }
        // A server span that continues a valid incoming trace (API.md §1: an invalid one is
        // ignored), named by the route template once routing has found it.
        // Only the header as we parsed it, rebuilt as version 00, reaches the propagator: given the
        // request's headers, a `tracestate` or a later version it rejects made it log them all,
        // credentials included, and start another trace.
        var parent = ServiceContext.topLevel
        if let incoming, let (trace, flags) = valid {
            let parentSpan = incoming.utf8.dropFirst(36).prefix(16)
            var canonical = HTTPFields()
            canonical[BasaltHeader.traceparent] = "00-\(trace)-\(String(decoding: parentSpan, as: UTF8.self))-\(flags)"
            InstrumentationSystem.instrument.extract(canonical, into: &parent, using: HTTPFieldsCarrier())
        }
        return try await withSpan(request.method.rawValue, context: parent, ofKind: .server) { span in
            var carried = HTTPFields()
            InstrumentationSystem.instrument.inject(span.context, into: &carried, using: HTTPFieldsCarrier())
            let response = try await answer(
                request,
                context: context,
                next: next,
                trace: carried[BasaltHeader.traceparent] ?? Self.traceparent(nil, sampled: true)
            )
            let route = context.endpointPath ?? "unmatched"
            span.operationName = "\(request.method.rawValue) \(route)"
            span.updateAttributes {
                $0["http.request.method"] = request.method.rawValue
                $0["http.route"] = route
                $0["http.response.status_code"] = Int(response.status.code)
            }
            if response.status.code >= 500 { span.setStatus(SpanStatus(code: .error)) }
            return response
        }
    }

    func answer(_ request: Request, context: Context, next: (Request, Context) async throws -> Response, trace: String) async throws -> Response {
        let start = ContinuousClock.now
        metrics?.requestStarted()
        traffic?.note(request.headers)
        var context = context
        context.requestID = Self.requestID(request.headers[BasaltHeader.requestID])
        let origin = request.headers[.origin]

        var response: Response
        if request.method == .options, origin != nil, request.headers[.accessControlRequestMethod] != nil {
            response = Response(status: .noContent)  // CORS preflight
        } else {
            do {
                response = try await next(request, context)
            } catch {
                var e = Problem.normalize(error)
                if e.code == .notFound, error is HTTPError, let allow = surface.allowedMethods(for: request.uri.path) {
                    // The path exists; the method does not.
                    e = BasaltError(.methodNotAllowed, "Use one of \(allow.joined(separator: ", "))", allowedMethods: allow)
                }
                if e.code == .internalError {
                    logger.error("unhandled error", metadata: ["request.id": "\(context.requestID)", "error": "\(String(reflecting: error))"])
                } else if let u = e.underlying {
                    logger.debug("request failed", metadata: ["request.id": "\(context.requestID)", "error": "\(String(reflecting: u))"])
                }
                response = Problem.response(e, instance: request.uri.path, requestID: context.requestID)
            }
        }
        context.responseHeaders.apply(to: &response)
        response.headers[BasaltHeader.requestID] = context.requestID
        response.headers[BasaltHeader.traceparent] = trace
        response.headers[BasaltHeader.contentTypeOptions] = "nosniff"
        response.headers[BasaltHeader.frameOptions] = "DENY"
        response.headers[BasaltHeader.referrerPolicy] = "no-referrer"
        if response.headers[BasaltHeader.csp] == nil {
            response.headers[BasaltHeader.csp] = "default-src 'none'; frame-ancestors 'none'"
        }
        if let origin { applyCORS(origin: origin, request: request, to: &response) }

        let elapsed = ContinuousClock.now - start
        metrics?.requestFinished(method: request.method.rawValue, route: context.endpointPath, status: response.status.code, duration: elapsed)
        if settings.requestLogs {
            let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            logger.info(
                "request",
                metadata: [
                    "request.id": "\(context.requestID)",
                    "http.method": "\(request.method.rawValue)",
                    "http.route": "\(context.endpointPath ?? "unmatched")",
                    "http.status": "\(response.status.code)",
                    "duration_ms": "\((ms * 1000).rounded() / 1000)",
                ]
            )
        }
        return response
    }

    func applyCORS(origin: String, request: Request, to response: inout Response) {
        guard settings.corsOrigins.contains("*") || settings.corsOrigins.contains(origin) else { return }
        response.headers[.accessControlAllowOrigin] = settings.corsOrigins.contains("*") ? "*" : origin
        response.headers[.vary] = [response.headers[.vary], "Origin"].compactMap { $0 }.joined(separator: ", ")
        response.headers[.accessControlExposeHeaders] =
            "ETag, Location, Link, X-Request-Id, RateLimit, RateLimit-Policy, Retry-After, Idempotent-Replayed"
        if request.method == .options {
            response.headers[.accessControlAllowMethods] = "GET, HEAD, POST, PUT, PATCH, DELETE"
            response.headers[.accessControlAllowHeaders] =
                "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, X-Request-Id, traceparent"
            response.headers[.accessControlMaxAge] = "600"
        }
    }

    /// Echo an incoming id of 1–128 characters from `[A-Za-z0-9._:-]`, else make one.
    static func requestID(_ incoming: String?) -> String {
        if let s = incoming, (1...128).contains(s.utf8.count),
            s.utf8.allSatisfy({
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2E || $0 == 0x5F || $0 == 0x3A
                    || $0 == 0x2D
            })
        {
            return s
        }
        return RecordID.make()
    }

    /// Continue an incoming W3C trace (same trace id, new span id), or start one. Anything but
    /// exactly the W3C syntax — lowercase hex, the right lengths, non-zero ids, version `ff`
    /// excluded — is ignored (API.md §1): nothing of an invalid header is copied into the answer.
    /// `sampled` is the flag of a trace that starts here (tracing off: `01`, as a recorder
    /// further on may record it; on and not drawn: `00`).
    static func traceparent(_ incoming: String?, sampled: Bool = true) -> String {
        var rng = IdentifierRandom()
        let span = Digest.hex(rng.next())
        if let t = incoming, let (trace, flags) = parseTraceparent(t) {
            return "00-\(trace)-\(span)-\(flags)"
        }
        let trace = Digest.hex(rng.next()) + Digest.hex(rng.next())
        return "00-\(trace)-\(span)-\(sampled ? "01" : "00")"
    }

    /// The `sampled` bit of trace flags (two hex digits).
    static func sampledFlag(_ flags: String) -> Bool {
        guard let last = flags.utf8.last else { return false }
        let value = last >= 0x61 ? last - 0x61 + 10 : last - 0x30
        return value & 1 == 1
    }

    /// `version-traceid-parentid-flags`: the trace id and flags of a valid header.
    static func parseTraceparent(_ t: String) -> (String, String)? {
        let b = Array(t.utf8)
        func hex(_ r: Range<Int>) -> Bool { b[r].allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) } }
        func zero(_ r: Range<Int>) -> Bool { b[r].allSatisfy { $0 == 0x30 } }
        // Version 00 is exactly 55 characters; a later version may append `-…` fields (W3C §3.2.4).
        guard b.count >= 55, hex(0..<2), !(b[0] == 0x66 && b[1] == 0x66), b[2] == 0x2D, b[35] == 0x2D, b[52] == 0x2D,
            hex(3..<35), hex(36..<52), hex(53..<55), !zero(3..<35), !zero(36..<52)
        else { return nil }
        let isVersion00 = b[0] == 0x30 && b[1] == 0x30
        if isVersion00 ? b.count != 55 : (b.count > 55 && b[55] != 0x2D) { return nil }
        return (String(decoding: b[3..<35], as: UTF8.self), String(decoding: b[53..<55], as: UTF8.self))
    }
}

/// Reads and writes trace context headers (`traceparent`, `tracestate`) in HTTP fields.
struct HTTPFieldsCarrier: Extractor, Injector {
    func extract(key: String, from carrier: HTTPFields) -> String? {
        HTTPField.Name(key).flatMap { carrier[$0] }
    }
    func inject(_ value: String, forKey key: String, into carrier: inout HTTPFields) {
        if let name = HTTPField.Name(key) { carrier[name] = value }
    }
}
