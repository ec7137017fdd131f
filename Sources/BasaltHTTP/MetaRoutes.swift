import HTTPTypes
import BasaltCore
public import BasaltServices
import Foundation
import Hummingbird
import NIOCore

/// Health, the OpenAPI document, the HTML reference and the problem pages.
public struct MetaRoutes: Sendable {
    let schemas: SchemaService
    let settings: HTTPSettings
    let isReady: @Sendable () async -> Bool

    public init(schemas: SchemaService, settings: HTTPSettings, isReady: @escaping @Sendable () async -> Bool) {
        self.schemas = schemas
        self.settings = settings
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
                let bytes = OpenAPIGenerator.json(schema: schemas.current, principal: ctx.principal, serverURL: settings.publicURL)
                return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "private, no-cache", .vary: "Authorization"],
                                body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
            },
            Endpoint(.get, "/docs", .caller) { _, ctx in
                let doc = OpenAPIGenerator.document(schema: schemas.current, principal: ctx.principal, serverURL: settings.publicURL)
                return Self.html(DocsPage.html(document: doc))
            },
            Endpoint(.get, "/problems/:code", .open) { _, ctx in
                let code = try ctx.parameters.require("code")
                guard let page = ProblemPages.html(slug: code) else { throw BasaltError.notFound("There is no problem type \(code)") }
                return Self.html(page)
            },
        ]
    }

    static func html(_ s: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-cache",
                                        BasaltHeader.csp: "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"],
                 body: .init(byteBuffer: ByteBuffer(string: s)))
    }
}
