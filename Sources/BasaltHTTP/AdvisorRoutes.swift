import BasaltCore
public import BasaltServices
import HTTPTypes
import Hummingbird
import Synchronization

/// `GET /v1/admin/advisors` (API.md §12): the advisors' findings, most severe first — the same
/// review as `basalt doctor`, plus what this process observed of its traffic.
public struct AdvisorRoutes: Sendable {
    let review: @Sendable () async throws -> [Finding]

    public init(review: @escaping @Sendable () async throws -> [Finding]) { self.review = review }

    public var endpoints: [Endpoint] {
        [
            Endpoint(.get, "/v1/admin/advisors", .admin) { _, _ in
                let findings = try await review()
                return HTTPSupport.json(.ok, .object(JSONObject([("items", .array(findings.map(\.json)))])), headers: [.cacheControl: "no-store"])
            }
        ]
    }
}

/// What the edge saw of the traffic that the advisors ask about: how many requests, and how
/// many a proxy said arrived over TLS (`X-Forwarded-Proto: https`).
public final class TrafficObservations: Sendable {
    let requests = Atomic<Int>(0)
    let httpsForwarded = Atomic<Int>(0)
    static let forwardedProto = HTTPField.Name("X-Forwarded-Proto")!

    public init() {}

    public var requestsSeen: Int { requests.load(ordering: .relaxed) }
    public var httpsForwardedSeen: Int { httpsForwarded.load(ordering: .relaxed) }

    func note(_ headers: HTTPFields) {
        requests.add(1, ordering: .relaxed)
        if let proto = headers[Self.forwardedProto], proto.lowercased().hasPrefix("https") { httpsForwarded.add(1, ordering: .relaxed) }
    }
}
