public import AsyncHTTPClient
public import Foundation
import NIOCore
import NIOHTTP1

/// One HTTP request as the client sends it.
public struct TransportRequest: Sendable {
    public var method: String
    public var url: URL
    /// Header names in any case; each at most once.
    public var headers: [String: String]
    public var body: Data?
    public var timeout: Duration

    public init(method: String, url: URL, headers: [String: String] = [:], body: Data? = nil, timeout: Duration = .seconds(30)) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

/// One HTTP answer: header names lowercased.
public struct TransportResponse: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: Data

    public init(status: Int, headers: [String: String], body: Data) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// The seam between the client and the network. The default sends through AsyncHTTPClient (on
/// Linux and Apple platforms); an app can send through its own stack (URLSession, a proxying
/// layer, a test transport) by conforming to this protocol. A thrown error means the answer was
/// not received — the request may or may not have reached the server — and unsafe requests are
/// retried only under their `Idempotency-Key`.
public protocol BasaltTransport: Sendable {
    func send(_ request: TransportRequest) async throws -> TransportResponse
    /// Sends `request` and hands over the body as it arrives (Server-Sent Events); the response's
    /// `body` is empty.
    func stream(_ request: TransportRequest) async throws -> (TransportResponse, AsyncThrowingStream<Data, any Error>)
}

/// `BasaltTransport` over AsyncHTTPClient (its shared client unless one is given).
public struct AsyncHTTPClientTransport: BasaltTransport {
    let client: HTTPClient
    /// The largest body read into memory (a list page of 200 large records fits many times).
    public var maxBodyBytes = 64 << 20

    public init(client: HTTPClient = .shared) { self.client = client }

    func makeRequest(_ request: TransportRequest) -> HTTPClientRequest {
        var r = HTTPClientRequest(url: request.url.absoluteString)
        r.method = HTTPMethod(rawValue: request.method)
        for (name, value) in request.headers { r.headers.replaceOrAdd(name: name, value: value) }
        if let body = request.body { r.body = .bytes(ByteBuffer(bytes: body)) }
        return r
    }

    static func head(_ response: HTTPClientResponse) -> TransportResponse {
        var headers: [String: String] = [:]
        for (name, value) in response.headers { headers[name.lowercased()] = value }
        return TransportResponse(status: Int(response.status.code), headers: headers, body: Data())
    }

    public func send(_ request: TransportRequest) async throws -> TransportResponse {
        let response = try await client.execute(makeRequest(request), timeout: .nanoseconds(request.timeout.nanoseconds))
        var answer = Self.head(response)
        let body = try await response.body.collect(upTo: maxBodyBytes)
        answer.body = Data(body.readableBytesView)
        return answer
    }

    public func stream(_ request: TransportRequest) async throws -> (TransportResponse, AsyncThrowingStream<Data, any Error>) {
        let response = try await client.execute(makeRequest(request), timeout: .nanoseconds(request.timeout.nanoseconds))
        let (stream, continuation) = AsyncThrowingStream<Data, any Error>.makeStream()
        let reader = Task {
            do {
                for try await chunk in response.body { continuation.yield(Data(chunk.readableBytesView)) }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in reader.cancel() }
        return (Self.head(response), stream)
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (s, atto) = components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }
    var timeInterval: TimeInterval { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
