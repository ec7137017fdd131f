import BasaltCore
import BasaltServices
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Health, the OpenAPI document, the HTML reference and the problem pages.
public struct MetaRoutes: Sendable {
    let openAPI: OpenAPIPublisher
    let isReady: @Sendable () async -> Bool

    public init(openAPI: OpenAPIPublisher, isReady: @escaping @Sendable () async -> Bool) {
        self.openAPI = openAPI
        self.isReady = isReady
    }

    public var endpoints: [Endpoint] {
        [
            Endpoint(.get, "/health/live", .open) { _, _ in
                HTTPSupport.json(.ok, .object(JSONObject([("status", "ok")])), headers: [.cacheControl: "no-store"])
            },
            Endpoint(.get, "/health/ready", .open) { _, _ in
                guard await isReady() else { throw BasaltError(.unavailable, "The database is not reachable", retryAfter: 5) }
                return HTTPSupport.json(.ok, .object(JSONObject([("status", "ok")])), headers: [.cacheControl: "no-store"])
            },
            Endpoint(.get, "/v1/openapi.json", .caller) { req, ctx in
                try HTTPSupport.requireJSONAccept(req)
                let bytes = openAPI.json(for: ctx.principal)
                return Response(
                    status: .ok,
                    headers: [.contentType: "application/json", .cacheControl: "private, no-cache", .vary: "Authorization"],
                    body: .init(byteBuffer: ByteBuffer(bytes: bytes))
                )
            },
            // HTML pages for people, outside the OpenAPI document.
            Endpoint(.get, "/docs", .caller, inOpenAPI: false) { _, ctx in Self.html(openAPI.html(for: ctx.principal)) },
            Endpoint(.get, "/problems/:code", .open, inOpenAPI: false) { _, ctx in
                let code = try ctx.parameters.require("code")
                guard let page = ProblemPages.html(slug: code) else { throw BasaltError.notFound("There is no problem type \(code)") }
                return Self.html(page)
            },
        ]
    }

    static func html(_ s: String) -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-cache",
                BasaltHeader.csp: "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
            ],
            body: .init(byteBuffer: ByteBuffer(string: s))
        )
    }
}
