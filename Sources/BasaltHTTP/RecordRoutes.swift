import BasaltCore
public import BasaltServices
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

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

    public var endpoints: [Endpoint] {
        [
            Endpoint(.post, "/v1/batch", .caller, batch),
            Endpoint(.get, "/v1/:collection", .caller) { req, ctx in try await list(req, ctx, collection: ctx.parameters.require("collection")) },
            Endpoint(.post, "/v1/:collection", .caller, create),
            Endpoint(.get, "/v1/:collection/:id", .caller, get),
            Endpoint(.put, "/v1/:collection/:id", .caller) { req, ctx in try await update(req, ctx, merge: false) },
            Endpoint(.patch, "/v1/:collection/:id", .caller) { req, ctx in try await update(req, ctx, merge: true) },
            Endpoint(.delete, "/v1/:collection/:id", .caller, delete),
        ]
    }

    func cacheHeaders(_ ctx: BasaltRequestContext, collection: String, action: AccessAction, into h: inout HTTPFields) {
        let shared = !ctx.hasCredentials && records.schemaPublic(action, collection)
        h[.cacheControl] = shared ? "no-cache" : "private, no-cache"
        h[.vary] = "Authorization, Accept"
    }

    func list(_ req: Request, _ ctx: BasaltRequestContext, collection c: String) async throws -> Response {
        try HTTPSupport.requireJSONAccept(req)
        let q = try QueryParameters(req.uri.query)
        let totalParam = q.get("total")
        if let t = totalParam, t != "true", t != "false" { throw BasaltError.badRequest("total must be true or false") }
        let query = ListQuery(
            filter: q.get("filter"),
            sort: q.get("sort"),
            limit: q.get("limit"),
            cursor: q.get("cursor"),
            fields: q.get("fields"),
            expand: q.get("expand"),
            total: totalParam == "true"
        )
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
            h[BasaltHeader.link] = "<\(Self.nextLink(req, cursor: next, query: q))>; rel=\"next\""
        }
        if HTTPSupport.noneMatch(req.headers[.ifNoneMatch], etag) {
            h[.contentType] = nil
            return Response(status: .notModified, headers: h)
        }
        return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// The same query with `cursor` replaced, every value percent-encoded. The path is rebuilt
    /// from the matched route's segments, never copied from the request target: `GET //v1/notes`
    /// must not answer `Link: <//v1/notes?…>`, a reference to a host named `v1`.
    static func nextLink(_ req: Request, cursor: String, query: QueryParameters? = nil) -> String {
        var parts: [String] = []
        for (k, v) in (query ?? (try? QueryParameters(req.uri.query)))?.pairs ?? [] where k != "cursor" {
            parts.append("\(PercentCoding.encode(k))=\(PercentCoding.encode(v))")
        }
        parts.append("cursor=\(PercentCoding.encode(cursor))")
        return canonicalPath(req.uri.path) + "?" + parts.joined(separator: "&")
    }

    /// `/a//b/` → `/a/b`: the segments the router matched, each percent-encoded again.
    static func canonicalPath(_ path: String) -> String {
        "/"
            + path.split(separator: "/").map { PercentCoding.encode(PercentCoding.decode($0, plusIsSpace: false) ?? String($0)) }.joined(
                separator: "/"
            )
    }

    func get(_ req: Request, _ ctx: BasaltRequestContext) async throws -> Response {
        try HTTPSupport.requireJSONAccept(req)
        let c = try ctx.parameters.require("collection")
        let id = try ctx.parameters.require("id")
        let record = try await records.get(c, id: id, principal: ctx.principal)
        var h: HTTPFields = [:]
        cacheHeaders(ctx, collection: c, action: .view, into: &h)
        let etag = "\"\(record["version"]?.integerValue ?? 0)\""
        h[.eTag] = etag
        if HTTPSupport.noneMatch(req.headers[.ifNoneMatch], etag) {
            return Response(status: .notModified, headers: h)
        }
        return HTTPSupport.json(.ok, .object(record), headers: h)
    }

    func create(_ req: Request, _ ctx: BasaltRequestContext) async throws -> Response {
        try HTTPSupport.requireJSONAccept(req)
        let c = try ctx.parameters.require("collection")
        _ = try await records.requireCollection(c)
        let body = try await HTTPSupport.jsonBody(req, settings: settings)
        return try await write(req, ctx, body: body) { completion in
            .record(try await records.execute(.create(collection: c, body: body), principal: ctx.principal, completion: completion))
        }
    }

    func update(_ req: Request, _ ctx: BasaltRequestContext, merge: Bool) async throws -> Response {
        try HTTPSupport.requireJSONAccept(req)
        let c = try ctx.parameters.require("collection")
        let id = try ctx.parameters.require("id")
        _ = try await records.requireCollection(c)
        let body = try await HTTPSupport.jsonBody(req, settings: settings, mergePatch: merge)
        let pre = VersionPrecondition(ifMatch: req.headers[.ifMatch])
        let command: RecordCommand =
            merge
            ? .patch(collection: c, id: id, body: body, precondition: pre)
            : .replace(collection: c, id: id, body: body, precondition: pre)
        return try await write(req, ctx, body: body) { completion in
            .record(try await records.execute(command, principal: ctx.principal, completion: completion))
        }
    }

    func delete(_ req: Request, _ ctx: BasaltRequestContext) async throws -> Response {
        let c = try ctx.parameters.require("collection")
        let id = try ctx.parameters.require("id")
        let command = RecordCommand.delete(collection: c, id: id, precondition: VersionPrecondition(ifMatch: req.headers[.ifMatch]))
        return try await write(req, ctx, body: nil) { completion in
            .record(try await records.execute(command, principal: ctx.principal, completion: completion))
        }
    }

    func batch(_ req: Request, _ ctx: BasaltRequestContext) async throws -> Response {
        try HTTPSupport.requireJSONAccept(req)
        let body = try await HTTPSupport.jsonBody(req, settings: settings)
        return try await write(req, ctx, body: body) { completion in
            .batch(try await records.batch(body, principal: ctx.principal, completion: completion))
        }
    }

    /// Runs a write, under its `Idempotency-Key` when the request carries one (API.md §6), and
    /// renders the answer — fresh or replayed — with one function.
    func write(
        _ req: Request,
        _ ctx: BasaltRequestContext,
        body: JSONValue?,
        _ run: (@escaping RecordService.Completion) async throws -> WriteAnswer
    ) async throws -> Response {
        guard let key = req.headers[BasaltHeader.idempotencyKey] else {
            return render(try await run({ _ in [] }), ctx, replayed: false)
        }
        guard IdempotencyService.isValidKey(key) else {
            throw BasaltError.badRequest("Idempotency-Key must be 1 to 255 printable ASCII characters")
        }
        let request = IdempotencyService.Request(
            key: key,
            caller: ctx.principal.callerKey,
            method: req.method.rawValue,
            path: Self.canonicalPath(req.uri.path),
            body: body?.canonicalBytes() ?? [],
            requestID: ctx.requestID
        )
        let (answer, replayed) = try await idempotency.perform(request, run)
        return render(answer, ctx, replayed: replayed)
    }

    /// The one rendering of a write's answer: status, `Location`, `ETag`, cache headers, body.
    func render(_ answer: WriteAnswer, _ ctx: BasaltRequestContext, replayed: Bool) -> Response {
        var response: Response
        switch answer {
        case .record(let outcome):
            var h: HTTPFields = [:]
            let (status, body) = Self.statusAndBody(outcome)
            let action: AccessAction =
                switch outcome {
                case .created: .create
                case .updated: .update
                case .deleted: .delete
                }
            cacheHeaders(ctx, collection: Self.collection(of: outcome), action: action, into: &h)
            if case .created(let c, let id, _) = outcome { h[.location] = "/v1/\(c)/\(id)" }
            if let v = outcome.version { h[.eTag] = "\"\(v)\"" }
            response = body.map { HTTPSupport.json(status, $0, headers: h) } ?? Response(status: status, headers: h)
        case .batch(let outcomes):
            let results: [JSONValue] = outcomes.map { o in
                let (status, body) = Self.statusAndBody(o)
                var r = JSONObject([("status", .int(Int64(status.code)))])
                if let body { r.append("body", body) }
                return .object(r)
            }
            response = HTTPSupport.json(.ok, .object(JSONObject([("results", .array(results))])), headers: [.cacheControl: "no-store"])
        case .refused(let e, let requestID, let instance):
            response = Problem.response(e, instance: instance, requestID: requestID)
        }
        if replayed { response.headers[BasaltHeader.idempotentReplayed] = "true" }
        return response
    }

    static func statusAndBody(_ o: RecordOutcome) -> (HTTPResponse.Status, JSONValue?) {
        switch o {
        case .created(_, let id, let record): (.created, .object(record ?? JSONObject([("id", .string(id))])))
        case .updated(_, let record): (.ok, .object(record))
        case .deleted: (.noContent, nil)
        }
    }

    static func collection(of o: RecordOutcome) -> String {
        switch o {
        case .created(let c, _, _), .updated(let c, _), .deleted(let c, _): c
        }
    }
}
