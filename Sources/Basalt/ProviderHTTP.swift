import AsyncHTTPClient
import BasaltServices
import BasaltTelemetry
import NIOCore
import NIOHTTP1
import Tracing

/// Calls to identity providers (discovery, keys, token exchange, userinfo) over AsyncHTTPClient:
/// ten seconds at most, a bounded answer. Provider URLs come from the operator's configuration,
/// not from callers, so no address policy applies (unlike webhooks).
struct ProviderHTTP: OutboundHTTP {
    static let responseCap = 1 << 20
    static let timeout: TimeAmount = .seconds(10)

    func send(_ method: String, _ url: String, headers: [(String, String)], body: [UInt8]?) async throws -> (status: Int, body: [UInt8]) {
        try await Trace.span("oauth provider \(method)", kind: .client, attributes: { _ in }) {
            var request = HTTPClientRequest(url: url)
            request.method = HTTPMethod(rawValue: method)
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
            let response = try await HTTPClient.shared.execute(request, timeout: Self.timeout)
            let bytes = try await response.body.collect(upTo: Self.responseCap)
            return (Int(response.status.code), Array(bytes.readableBytesView))
        }
    }
}
