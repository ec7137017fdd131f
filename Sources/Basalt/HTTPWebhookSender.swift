import AsyncHTTPClient
import BasaltServices
import BasaltTelemetry
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Tracing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Webhook calls over AsyncHTTPClient. Each (host, checked address) pair gets a client of its own
/// whose DNS is overridden with that address, so the connection goes exactly where
/// `WebhookService` checked (a name that resolves elsewhere a moment later — DNS rebinding —
/// cannot redirect it) while TLS still verifies the certificate for the name. Clients are kept
/// (connections are reused between deliveries to one endpoint) and shut down with the runtime.
final class HTTPWebhookSender: WebhookSender {
    /// The most of a response body read (receivers answer with a status; the body is ignored).
    static let responseCap = 64 * 1024

    struct ResolutionFailure: Error, CustomStringConvertible {
        var host: String
        var code: Int32
        var description: String { "cannot resolve \(host) (getaddrinfo \(code))" }
    }

    let resolver: (@Sendable (String) async throws -> [String])?
    let clients = Mutex<[String: HTTPClient]>([:])

    init(resolver: (@Sendable (String) async throws -> [String])?) {
        self.resolver = resolver
    }

    func resolve(_ host: String) async throws -> [String] {
        if let resolver { return try await resolver(host) }
        return try await NIOThreadPool.singleton.runIfActive { try Self.addresses(of: host) }
    }

    static func addresses(of host: String) throws -> [String] {
        var hints = addrinfo()
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &list)
        guard rc == 0 else { throw ResolutionFailure(host: host, code: rc) }
        defer { freeaddrinfo(list) }
        var out: [String] = []
        var p = list
        while let info = p?.pointee {
            defer { p = info.ai_next }
            guard let sa = info.ai_addr else { continue }
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            switch info.ai_family {
            case AF_INET:
                var a = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                guard inet_ntop(AF_INET, &a, &text, socklen_t(text.count)) != nil else { continue }
            case AF_INET6:
                var a = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                guard inet_ntop(AF_INET6, &a, &text, socklen_t(text.count)) != nil else { continue }
            default:
                continue
            }
            let s = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if !out.contains(s) { out.append(s) }
        }
        return out
    }

    func post(_ target: WebhookTarget, address: String, headers: [(String, String)], body: [UInt8], timeout: Duration) async throws -> Int {
        try await send(client(for: target.host, address: address, timeout: timeout), target, headers: headers, body: body, timeout: timeout)
    }

    func client(for host: String, address: String, timeout: Duration) -> HTTPClient {
        clients.withLock { clients in
            let key = host + " " + address
            if let c = clients[key] { return c }
            var configuration = HTTPClient.Configuration()
            configuration.redirectConfiguration = .disallow
            configuration.timeout = .init(connect: .seconds(5), read: .seconds(Int64(timeout.components.seconds)))
            configuration.dnsOverride = [host: address]
            configuration.decompression = .disabled
            let c = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
            clients[key] = c
            return c
        }
    }

    func shutdown() async {
        for c in clients.withLock({ c in
            defer { c = [:] }
            return Array(c.values)
        }) { try? await c.shutdown() }
    }

    func send(_ client: HTTPClient, _ target: WebhookTarget, headers: [(String, String)], body: [UInt8], timeout: Duration) async throws -> Int {
        try await Trace.span("webhook POST", kind: .client, startsTrace: true, attributes: { $0["server.address"] = target.host }) {
            var request = HTTPClientRequest(url: target.url)
            request.method = .POST
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            request.body = .bytes(ByteBuffer(bytes: body))
            let response = try await client.execute(request, timeout: .seconds(Int64(timeout.components.seconds)))
            var read = 0
            for try await chunk in response.body {
                read += chunk.readableBytes
                if read >= Self.responseCap { break }
            }
            return Int(response.status.code)
        }
    }
}
