import BasaltCore
public import BasaltServices
public import BasaltTelemetry
import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /metrics` (API.md §1): the Prometheus text exposition, for an admin credential or the
/// configured metrics token (`BASALT_METRICS_TOKEN`, so a scraper needs no admin key).
public struct MetricsRoutes: Sendable {
    let metrics: Metrics
    let token: String?
    let apiKeys: ApiKeyService
    let auth: AuthService
    /// Values read when scraped: queue depth, outbox lag, process memory.
    let samples: @Sendable () async -> [Metrics.Sample]

    public init(
        metrics: Metrics,
        token: String?,
        apiKeys: ApiKeyService,
        auth: AuthService,
        samples: @escaping @Sendable () async -> [Metrics.Sample]
    ) {
        self.metrics = metrics
        self.token = token.flatMap { $0.isEmpty ? nil : $0 }
        self.apiKeys = apiKeys
        self.auth = auth
        self.samples = samples
    }

    public var endpoints: [Endpoint] {
        [
            // `.open`: the edge ignores credentials here, because the metrics token is none of
            // ours; this handler checks the token or an admin credential itself.
            Endpoint(.get, "/metrics", .open, inOpenAPI: false) { req, ctx in
                try await authorize(req.headers[.authorization], ctx)
                var buffer = ByteBuffer()
                buffer.writeBytes(metrics.exposition(await samples()))
                return Response(
                    status: .ok,
                    headers: [.contentType: Metrics.contentType, .cacheControl: "no-store"],
                    body: .init(byteBuffer: buffer)
                )
            }
        ]
    }

    func authorize(_ header: String?, _ ctx: BasaltRequestContext) async throws {
        let required = "An admin credential or the metrics token is required"
        guard let header else { throw BasaltError(.unauthenticated, required) }
        // Digests first: equal lengths, so the time taken says nothing about the token's length.
        if let token, Digest.constantTimeEqual(Digest.sha256Hex(header).utf8, Digest.sha256Hex("Bearer " + token).utf8) { return }
        let p = try await CredentialCheck(apiKeys: apiKeys, auth: auth)
            .principal(header, address: ctx.principal.clientAddress, requestID: ctx.requestID)
        guard p.isAdmin else { throw BasaltError(.forbidden, required) }
    }

}
