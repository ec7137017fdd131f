/// Edge settings, from configuration.
public struct HTTPSettings: Sendable {
    public var bodyLimitBytes: Int = 1 << 20
    public var jsonMaxDepth: Int = 64
    /// Allowed CORS origins; `*` allows any. Empty: no CORS headers.
    public var corsOrigins: [String] = []
    /// Requests per minute; 0 disables the limiter.
    public var anonymousPerMinute: Int = 600
    public var subjectPerMinute: Int = 3000
    /// Requests per minute per client address on `/v1/auth/*` (stricter than the rest).
    public var authPerMinute: Int = 60
    /// Proxies whose `X-Forwarded-For` is believed (exact addresses).
    public var trustedProxies: Set<String> = []
    /// Issuer and absolute links, e.g. `http://127.0.0.1:8080`.
    public var publicURL: String = "http://127.0.0.1:8080"
    /// Whether request log lines are written.
    public var requestLogs: Bool = true
    /// How long a realtime WebSocket may stay open without subscribing.
    public var webSocketSubscribeWithin: Duration = .seconds(10)
    public init() {}
}
