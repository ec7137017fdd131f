public import BasaltCore
import BasaltServices
import Foundation
import HTTPTypes
public import Hummingbird
import Synchronization

/// In-memory per-client rate limiting (fixed 60 s windows per key), with IETF RateLimit headers.
/// Anonymous callers are keyed by address, authenticated ones by subject. A cluster shares
/// these counters through Redis (a later backend of the same shape).
public struct RateLimitMiddleware: RouterMiddleware {
    public typealias Context = BasaltRequestContext
    let settings: HTTPSettings
    let windows = Windows()

    final class Windows: Sendable {
        let state = Mutex<[String: (start: Int64, count: Int)]>([:])
        func withLock<T>(_ body: (inout [String: (start: Int64, count: Int)]) -> T) -> T { state.withLock { body(&$0) } }
    }
    let clock: @Sendable () -> Int64

    public init(settings: HTTPSettings, clock: @escaping @Sendable () -> Int64 = { Timestamp.now().millisecondsSinceEpoch / 1000 }) {
        self.settings = settings
        self.clock = clock
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let p = context.principal
        // Sign-in and the other auth endpoints have their own, stricter quota per address. Judged
        // by path segments, as the router matches them (`//v1/auth/…` is the same route).
        let segments = request.uri.path.split(separator: "/")
        let isAuth = (segments.count >= 2 && segments[0] == "v1" && segments[1] == "auth") || segments.first == "oauth"
        let quota = isAuth ? settings.authPerMinute : p.isAnonymous ? settings.anonymousPerMinute : settings.subjectPerMinute
        if quota <= 0 || p.isAdmin || segments.first == "health" { return try await next(request, context) }
        let name = isAuth ? "auth" : "default"
        let key = isAuth ? "auth:" + p.clientAddress : p.isAnonymous ? "a:" + p.clientAddress : "s:" + (p.id ?? "")
        let now = clock()
        let (count, reset) = windows.withLock { w -> (Int, Int64) in
            w.trim(to: 100_000) { now - $0.start >= 60 }  // bounded memory and work
            var e = w[key] ?? (now, 0)
            if now - e.start >= 60 { e = (now, 0) }
            e.count += 1
            w[key] = e
            return (e.count, 60 - (now - e.start))
        }
        // Every answer of a rate-limited route carries these, an error answer too (API.md §11).
        context.responseHeaders.set(BasaltHeader.rateLimitPolicy, "\"\(name)\";q=\(quota);w=60")
        context.responseHeaders.set(BasaltHeader.rateLimit, "\"\(name)\";r=\(max(0, quota - count));t=\(reset)")
        if count > quota {
            throw BasaltError(.rateLimited, "Too many requests; retry after \(reset) seconds", retryAfter: Int(reset))
        }
        return try await next(request, context)
    }
}
