import HTTPTypes
import BasaltCore
public import BasaltServices
import Foundation
public import Hummingbird
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

    public func register(on router: Router<BasaltRequestContext>) {
        router.get("/health/live") { _, _ in
            HTTPSupport.json(.ok, .object(JSONObject([("status", "ok")])), headers: [.cacheControl: "no-store"])
        }
        router.get("/health/ready") { _, _ in
            if await isReady() {
                return HTTPSupport.json(.ok, .object(JSONObject([("status", "ok")])), headers: [.cacheControl: "no-store"])
            }
            throw BasaltError(.unavailable, "The database is not reachable", headers: [("Retry-After", "5")])
        }
        router.get("/v1/openapi.json") { req, ctx in
            try HTTPSupport.requireJSONAccept(req)
            let bytes = OpenAPIGenerator.json(schema: schemas.current, principal: ctx.principal, serverURL: settings.publicURL)
            return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "private, no-cache", .vary: "Authorization"],
                            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        router.get("/docs") { _, ctx in
            let doc = OpenAPIGenerator.document(schema: schemas.current, principal: ctx.principal, serverURL: settings.publicURL)
            return Self.html(DocsPage.html(document: doc))
        }
        router.get("/problems/:code") { _, ctx in
            let code = try ctx.parameters.require("code")
            guard let page = ProblemPages.html(slug: code) else { throw BasaltError.notFound("There is no problem type \(code)") }
            return Self.html(page)
        }
        for path in ["/health/live", "/health/ready", "/v1/openapi.json", "/docs", "/problems/:code"] {
            MethodGuard.allow(["GET", "HEAD"], path: RouterPath(path))
        }
    }

    static func html(_ s: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-cache",
                                        BasaltHeader.csp: "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"],
                 body: .init(byteBuffer: ByteBuffer(string: s)))
    }
}
