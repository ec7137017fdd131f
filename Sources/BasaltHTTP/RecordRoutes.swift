import HTTPTypes
import BasaltCore
public import BasaltServices
import BasaltStorage
import Foundation
public import Hummingbird
import NIOCore
import Synchronization

/// `/v1/{collection}` and `/v1/{collection}/{id}` (API.md §1–6), and `POST /v1/batch` (§7).
public struct RecordRoutes: Sendable {
    let records: RecordService
    let idempotency: IdempotencyService
    let settings: HTTPSettings

    public init(records: RecordService, idempotency: IdempotencyService, settings: HTTPSettings) {
        self.records = records
        self.idempotency = idempotency
        self.settings = settings
    }

    public func register(on router: Router<BasaltRequestContext>) {
        router.post("/v1/batch") { req, ctx in try await batch(req, ctx) }
        MethodGuard.allow(["POST"], path: "/v1/batch")
        router.get("/v1/:collection") { req, ctx in try await list(req, ctx) }
        router.head("/v1/:collection") { req, ctx in try Self.head(await list(req, ctx)) }
        router.post("/v1/:collection") { req, ctx in try await create(req, ctx) }
        MethodGuard.allow(["GET", "HEAD", "POST"], path: "/v1/:collection")
        router.get("/v1/:collection/:id") { req, ctx in try await get(req, ctx) }
        router.head("/v1/:collection/:id") { req, ctx in try Self.head(await get(req, ctx)) }
        router.put("/v1/:collection/:id") { req, ctx in try await update(req, ctx, merge: false) }
        router.patch("/v1/:collection/:id") { req, ctx in try await update(req, ctx, merge: true) }
        router.delete("/v1/:collection/:id") { req, ctx in try await delete(req, ctx) }
        MethodGuard.allow(["GET", "HEAD", "PUT", "PATCH", "DELETE"], path: "/v1/:collection/:id")
    }

    static func head(_ r: Response) -> Response {
        var r = r
        r.body = .init()
        return r
    }

    func cacheHeaders(_ ctx: BasaltRequestContext, collection: String, action: AccessAction, into h: inout HTTPFields) {
        let shared = !ctx.hasCredentials && records.schemaPublic(action, collection)
        h[.cacheControl] = shared ? "no-cache" : "private, no-cache"
        h[.vary] = "Authorization, Accept"
    }

    func list(_ req: Request, _ ctx: BasaltRequestContext, collection: String? = nil) async throws -> Response {
        try HTTPSupport.requireJSONAccept(req)
        let c = try collection ?? ctx.parameters.require("collection")
        let q = try QueryParameters(req.uri.query)
        let totalParam = q.get("total")
        if let t = totalParam, t != "true", t != "false" { throw BasaltError.badRequest("total must be true or false") }
        let query = ListQuery(filter: q.get("filter"), sort: q.get("sort"), limit: q.get("limit"), cursor: q.get("cursor"),
                              fields: q.get("fields"), expand: q.get("expand"), total: totalParam == "true")
        let page = try await records.list(c, query: query, principal: ctx.principal)
        var o = JSONObject(minimumCapacity: 3)
        o.append("items", .array(page.items))
        o.append("next_cursor", page.nextCursor.map { .string($0) } ?? .null)
        if let t = page.total { o.append("total", .int(t)) }
        let bytes = JSONValue.object(o).serializedBytes()
        var h: HTTPFields = [.contentType: "application/json"]
        cacheHeaders(ctx, collection: c, action: .list, into: &h)
        let etag = HTTPSupport.weakETag(bytes)
        h[.eTag] = etag
        if let next = page.nextCursor {
            h[BasaltHeader.link] = "<\(Self.nextLink(req, cursor: next))>; rel=\"next\""
        }
        if HTTPSupport.noneMatch(req.headers[.ifNoneMatch], etag) {
            h[.contentType] = nil
            return Response(status: .notModified, headers: h)
        }
        return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// The same query with `cursor` replaced, every value percent-encoded.
    static func nextLink(_ req: Request, cursor: String) -> String {
        var parts: [String] = []
        for (k, v) in ((try? QueryParameters(req.uri.query))?.pairs ?? []) where k != "cursor" {
            parts.append("\(encode(k))=\(encode(v))")
        }
        parts.append("cursor=\(encode(cursor))")
        return req.uri.path + "?" + parts.joined(separator: "&")
    }

    static func encode(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }

    func get(_ req: Request, _ ctx: BasaltRequestContext) async throws -> Response {
        try HTTPSupport.requireJSONAccept(req)
        let c = try ctx.parameters.require("collection")
        let id = try ctx.parameters.require("id")
        let out = try await records.get(c, id: id, principal: ctx.principal)
        var h: HTTPFields = [:]
        cacheHeaders(ctx, collection: c, action: .view, into: &h)
        let etag = "\"\(out.version ?? 0)\""
        h[.eTag] = etag
        if HTTPSupport.noneMatch(req.headers[.ifNoneMatch], etag) {
            return Response(status: .notModified, headers: h)
        }
        return HTTPSupport.json(.ok, out.body ?? .null, headers: h)
    }

    func create(_ req: Request, _ ctx: BasaltRequestContext) async throws -> Response {
        try HTTPSupport.requireJSONAccept(req)
        let c = try ctx.parameters.require("collection")
        _ = try await records.requireCollection(c)
        let (body, _) = try await HTTPSupport.jsonBody(req, settings: settings)
        return try await idempotent(req, ctx, raw: body.canonicalBytes(), collection: c, action: .create) { finish in
            try await records.execute(.create(collection: c, body: body), principal: ctx.principal, finish: finish)
        }
    }

    func update(_ req: Request, _ ctx: BasaltRequestContext, merge: Bool) async throws -> Response {
        try HTTPSupport.requireJSONAccept(req)
        let c = try ctx.parameters.require("collection")
        let id = try ctx.parameters.require("id")
        _ = try await records.requireCollection(c)
        let (body, _) = try await HTTPSupport.jsonBody(req, settings: settings, mergePatch: merge)
        let raw = body.canonicalBytes()
        let ifMatch = req.headers[.ifMatch]
        let command: RecordService.Command = merge
            ? .patch(collection: c, id: id, body: body, ifMatch: ifMatch)
            : .replace(collection: c, id: id, body: body, ifMatch: ifMatch)
        if !merge {
            let out = try await records.execute(command, principal: ctx.principal)
            return respond(out, ctx, collection: c, action: .update)
        }
        return try await idempotent(req, ctx, raw: raw, collection: c, action: .update) { finish in
            try await records.execute(command, principal: ctx.principal, finish: finish)
        }
    }

    func delete(_ req: Request, _ ctx: BasaltRequestContext) async throws -> Response {
        let c = try ctx.parameters.require("collection")
        let id = try ctx.parameters.require("id")
        let out = try await records.execute(.delete(collection: c, id: id, ifMatch: req.headers[.ifMatch]), principal: ctx.principal)
        var h: HTTPFields = [:]
        cacheHeaders(ctx, collection: c, action: .delete, into: &h)
        return Response(status: HTTPResponse.Status(code: out.status), headers: h)
    }

    func batch(_ req: Request, _ ctx: BasaltRequestContext) async throws -> Response {
        try HTTPSupport.requireJSONAccept(req)
        let (body, _) = try await HTTPSupport.jsonBody(req, settings: settings)
        let out = try await records.batch(body, principal: ctx.principal)
        return HTTPSupport.json(.ok, out.body ?? .null, headers: [.cacheControl: "no-store"])
    }

    func respond(_ out: RecordOutcome, _ ctx: BasaltRequestContext, collection: String, action: AccessAction) -> Response {
        var h: HTTPFields = [:]
        cacheHeaders(ctx, collection: collection, action: action, into: &h)
        if let loc = out.location { h[.location] = loc }
        if let v = out.version { h[.eTag] = "\"\(v)\"" }
        return HTTPSupport.json(HTTPResponse.Status(code: out.status), out.body ?? .null, headers: h)
    }

    /// Runs a write under `Idempotency-Key` when the request carries one (API.md §6).
    func idempotent(
        _ req: Request, _ ctx: BasaltRequestContext, raw: [UInt8], collection: String, action: AccessAction,
        run: (@escaping @Sendable (RecordOutcome) -> [SQLStatement]) async throws -> RecordOutcome
    ) async throws -> Response {
        guard let key = req.headers[BasaltHeader.idempotencyKey] else {
            return respond(try await run({ _ in [] }), ctx, collection: collection, action: action)
        }
        guard IdempotencyService.isValidKey(key) else {
            throw BasaltError.badRequest("Idempotency-Key must be 1 to 255 printable ASCII characters")
        }
        switch try await idempotency.begin(key: key, caller: ctx.principal.callerKey, method: req.method.rawValue, path: req.uri.path, body: raw) {
        case .inFlight:
            throw BasaltError(.conflict, "A request with this Idempotency-Key is still being processed")
        case .mismatch:
            throw BasaltError(.validationFailed, "This Idempotency-Key was used with a different request body")
        case .replay(let status, let headers, let body):
            var h: HTTPFields = [:]
            for (k, v) in headers { if let n = HTTPField.Name(k) { h[n] = v } }
            h[BasaltHeader.idempotentReplayed] = "true"
            return Response(status: HTTPResponse.Status(code: status), headers: h,
                            body: body.map { .init(byteBuffer: ByteBuffer(string: $0)) } ?? .init())
        case .proceed(let keyHash):
            let service = idempotency
            do {
                let out = try await run({ out in
                    var h: [(String, String)] = [("Content-Type", "application/json")]
                    if let l = out.location { h.append(("Location", l)) }
                    if let v = out.version { h.append(("ETag", "\"\(v)\"")) }
                    return [service.completion(keyHash: keyHash, status: out.status, headers: h, body: out.body?.serialized())]
                })
                return respond(out, ctx, collection: collection, action: action)
            } catch {
                let e = Problem.normalize(error)
                let status = Int(Problem.status(e.code).code)
                if (400..<500).contains(status) && status != 409 && status != 429 {
                    let body = Problem.body(e, instance: req.uri.path, requestID: ctx.requestID).serialized()
                    try? await idempotency.complete(keyHash: keyHash, status: status, headers: [("Content-Type", "application/problem+json")], body: body)
                } else {
                    try? await idempotency.forget(keyHash)
                }
                throw error
            }
        }
    }
}

/// Which methods each route pattern serves, so that a request whose path exists but whose method
/// does not (including methods we have never heard of, like `QUERY`) is a 405 with `Allow`
/// rather than the router's 404. One registry; `EdgeMiddleware` consults it.
enum MethodGuard {
    static let registry = Mutex<[(segments: [Substring], allow: String)]>([])

    static func allow(_ methods: [String], path: RouterPath) {
        let segments = path.description.split(separator: "/")
        let allow = methods.joined(separator: ", ")
        registry.withLock { r in
            if !r.contains(where: { $0.segments == segments }) { r.append((segments, allow)) }
        }
    }

    /// The `Allow` value for a concrete path, if some route pattern matches it.
    static func allowed(for path: String) -> String? {
        let parts = path.split(separator: "/")
        return registry.withLock { r in
            r.first { entry in
                entry.segments.count == parts.count
                    && zip(entry.segments, parts).allSatisfy { $0.hasPrefix(":") || $0.hasPrefix("{") || $0 == $1 }
            }?.allow
        }
    }
}
