import BasaltCore
public import BasaltServices
import BasaltStorage
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `/v1/admin/…`: schema, collections, migrations, API keys (API.md §12). Admin credential only.
public struct AdminRoutes: Sendable {
    let schemas: SchemaService
    let apiKeys: ApiKeyService
    let auth: AuthService
    let recordRoutes: RecordRoutes
    let settings: HTTPSettings

    public init(schemas: SchemaService, apiKeys: ApiKeyService, auth: AuthService, recordRoutes: RecordRoutes, settings: HTTPSettings) {
        self.schemas = schemas
        self.apiKeys = apiKeys
        self.auth = auth
        self.recordRoutes = recordRoutes
        self.settings = settings
    }

    var audit: AuditLog { AuditLog(store: schemas.store) }

    /// Every endpoint here is `.admin`: the surface checks the credential before the handler runs.
    public var endpoints: [Endpoint] {
        [
            Endpoint(.get, "/v1/admin/schema", .admin) { req, ctx in
                let doc = schemas.current.schema.encode()
                if let accept = req.headers[.accept], accept.contains("yaml") {
                    return Response(
                        status: .ok,
                        headers: [.contentType: "application/yaml", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(string: SchemaYAML.emit(doc)))
                    )
                }
                return HTTPSupport.json(.ok, doc, headers: [.cacheControl: "no-store"])
            },
            Endpoint(.put, "/v1/admin/schema", .admin) { req, ctx in
                let body = try await HTTPSupport.jsonBody(req, settings: settings)
                let wanted = try Schema.decode(body)
                return try await apply(wanted, req, ctx, status: .ok)
            },

            Endpoint(.get, "/v1/admin/collections", .admin) { _, ctx in
                let items = schemas.current.schema.collections.map { $0.encodeWithName() }
                return HTTPSupport.json(.ok, .object(JSONObject([("items", .array(items))])), headers: [.cacheControl: "no-store"])
            },
            Endpoint(.post, "/v1/admin/collections", .admin) { req, ctx in
                let body = try await HTTPSupport.jsonBody(req, settings: settings)
                guard case .object(var o) = body, let name = o["name"]?.stringValue else {
                    throw BasaltError.validation([FieldError(field: "/name", code: .required, message: "name is required")])
                }
                o["name"] = nil
                var current = schemas.current.schema
                if current.collection(name) != nil {
                    throw BasaltError(
                        .conflict,
                        "A collection named \(name) already exists",
                        fieldErrors: [FieldError(field: "/name", code: .unique, message: "\(name) exists")]
                    )
                }
                current.collections.append(try Self.decodeCollection(name, .object(o), namePointer: "/name"))
                var r = try await apply(current, req, ctx, status: .created)
                r.headers[.location] = "/v1/admin/collections/\(name)"
                return r
            },
            Endpoint(.get, "/v1/admin/collections/:name", .admin) { _, ctx in
                let name = try ctx.parameters.require("name")
                guard let c = schemas.current.schema.collection(name) else { throw BasaltError.notFound("There is no collection named \(name)") }
                return HTTPSupport.json(.ok, c.encodeWithName(), headers: [.cacheControl: "no-store"])
            },
            Endpoint(.patch, "/v1/admin/collections/:name", .admin) { req, ctx in
                let name = try ctx.parameters.require("name")
                var current = schemas.current.schema
                guard let i = current.collections.firstIndex(where: { $0.name == name }) else {
                    throw BasaltError.notFound("There is no collection named \(name)")
                }
                let patch = try await HTTPSupport.jsonBody(req, settings: settings, mergePatch: true)
                if case .object(let po) = patch, let n = po["name"], n.stringValue != name {
                    throw BasaltError.validation([FieldError(field: "/name", code: .readOnly, message: "a collection cannot be renamed")])
                }
                var merged = RecordService.mergePatch(current.collections[i].encodeBody(), patch)
                if case .object(var mo) = merged {
                    mo["name"] = nil
                    merged = .object(mo)
                }
                current.collections[i] = try Self.decodeCollection(name, merged)
                return try await apply(current, req, ctx, status: .ok)
            },
            Endpoint(.delete, "/v1/admin/collections/:name", .admin) { req, ctx in
                let name = try ctx.parameters.require("name")
                var current = schemas.current.schema
                guard current.collection(name) != nil else { throw BasaltError.notFound("There is no collection named \(name)") }
                if name == BuiltinCollections.usersName {
                    throw BasaltError.validation([FieldError(field: "/name", code: .invalid, message: "users is built in and cannot be dropped")])
                }
                current.collections.removeAll { $0.name == name }
                return try await apply(current, req, ctx, status: .ok)
            },

            Endpoint(.get, "/v1/admin/migrations", .admin) { _, ctx in
                let items = try await schemas.history().map(\.json)
                return HTTPSupport.json(.ok, .object(JSONObject([("items", .array(items))])), headers: [.cacheControl: "no-store"])
            },

            Endpoint(.get, "/v1/admin/api-keys", .admin) { _, ctx in
                HTTPSupport.json(.ok, .object(JSONObject([("items", .array(try await apiKeys.list()))])), headers: [.cacheControl: "no-store"])
            },
            Endpoint(.post, "/v1/admin/api-keys", .admin) { req, ctx in
                let body = try await HTTPSupport.jsonBody(req, settings: settings)
                guard case .object(let o) = body else { throw BasaltError.badRequest("The body must be a JSON object") }
                var errors: [FieldError] = []
                for (k, _) in o where !["name", "roles", "admin", "expires_at"].contains(k) {
                    errors.append(FieldError(field: FieldError.pointer(k), code: .unknownField, message: "unknown member \(k)"))
                }
                var roles: [String] = []
                if let r = o["roles"] {
                    if let list = r.arrayValue, list.allSatisfy({ $0.stringValue != nil }) {
                        roles = list.compactMap(\.stringValue)
                        let declared = Set(schemas.current.schema.roles.map(\.name))
                        for (i, role) in roles.enumerated() where !declared.contains(role) {
                            errors.append(FieldError(field: "/roles/\(i)", code: .enum, message: "\(role) is not a role of the schema"))
                        }
                    } else {
                        errors.append(FieldError(field: "/roles", code: .type, message: "roles is a list of strings"))
                    }
                }
                if let a = o["admin"], a.boolValue == nil {
                    errors.append(FieldError(field: "/admin", code: .type, message: "admin must be true or false"))
                }
                if let n = o["name"], n.stringValue == nil {
                    errors.append(FieldError(field: "/name", code: .type, message: "name must be a string"))
                }
                var expires: Timestamp?
                if let e = o["expires_at"], !e.isNull {
                    if let t = e.stringValue.flatMap(Timestamp.init(rfc3339:)) {
                        expires = t
                    } else {
                        errors.append(FieldError(field: "/expires_at", code: .format, message: "expires_at must be an RFC 3339 date-time"))
                    }
                }
                if !errors.isEmpty { throw BasaltError.validation(errors) }
                // The audit entry commits with the key: a key shown once is never unaudited.
                let created = try await apiKeys.create(
                    name: o["name"]?.stringValue ?? "",
                    admin: o["admin"]?.boolValue ?? false,
                    roles: roles,
                    expiresAt: expires
                ) { [audit] id in
                    [audit.statement(AuditLog.entry(ctx.principal, "api_key.create", recordID: id))]
                }
                let id = created.record["id"]?.stringValue ?? ""
                return HTTPSupport.json(.created, created.record, headers: [.cacheControl: "no-store", .location: "/v1/admin/api-keys/\(id)"])
            },
            Endpoint(.delete, "/v1/admin/api-keys/:id", .admin) { _, ctx in
                let id = try ctx.parameters.require("id")
                try await apiKeys.revoke(id: id)
                try await audit.record(AuditLog.entry(ctx.principal, "api_key.revoke", recordID: id))
                return Response(status: .noContent)
            },

            // Users (API.md §12): the list is the records list of `users`, as in §3.
            Endpoint(.get, "/v1/admin/users", .admin) { req, ctx in
                try await recordRoutes.list(req, ctx, collection: BuiltinCollections.usersName)
            },
            Endpoint(.patch, "/v1/admin/users/:id", .admin) { req, ctx in
                let body = try await HTTPSupport.jsonBody(req, settings: settings, mergePatch: true)
                let user = try await auth.adminUpdate(ctx.principal, id: try ctx.parameters.require("id"), body)
                return HTTPSupport.json(.ok, user, headers: [.cacheControl: "no-store"])
            },
            Endpoint(.post, "/v1/admin/users/:id/revoke-sessions", .admin) { _, ctx in
                try await auth.adminRevokeSessions(ctx.principal, id: try ctx.parameters.require("id"))
                return Response(status: .noContent, headers: [.cacheControl: "no-store"])
            },
            Endpoint(.delete, "/v1/admin/users/:id/mfa", .admin) { _, ctx in
                try await auth.adminResetMFA(ctx.principal, id: try ctx.parameters.require("id"))
                return Response(status: .noContent, headers: [.cacheControl: "no-store"])
            },

            // The audit log, newest first; `actor`, `action`, `collection` narrow it, `cursor` pages.
            Endpoint(.get, "/v1/admin/audit", .admin) { req, ctx in
                let q = try QueryParameters(req.uri.query)
                var limit = 50
                if let l = q.get("limit") {
                    guard let n = Int(l), (1...200).contains(n) else { throw BasaltError.badRequest("limit must be an integer from 1 to 200") }
                    limit = n
                }
                let page = try await audit.list(
                    limit: limit,
                    before: q.get("cursor"),
                    actor: q.get("actor"),
                    action: q.get("action"),
                    collection: q.get("collection")
                )
                var h: HTTPFields = [.cacheControl: "no-store"]
                if let next = page.next { h[BasaltHeader.link] = "<\(RecordRoutes.nextLink(req, cursor: next))>; rel=\"next\"" }
                return HTTPSupport.json(
                    .ok,
                    .object(JSONObject([("items", .array(page.items)), ("next_cursor", page.next.map(JSONValue.string) ?? .null)])),
                    headers: h
                )
            },
        ]
    }

    static func decodeCollection(_ name: String, _ json: JSONValue, namePointer: String? = nil) throws(BasaltError) -> CollectionSchema {
        var errors: [FieldError] = []
        guard let c = CollectionSchema.decode(name: name, json, pointer: "", namePointer: namePointer, errors: &errors), errors.isEmpty else {
            throw BasaltError.validation(errors)
        }
        return c
    }

    func apply(_ wanted: Schema, _ req: Request, _ ctx: BasaltRequestContext, status: HTTPResponse.Status) async throws -> Response {
        let q = try QueryParameters(req.uri.query)
        let dry = q.get("dry_run") == "true"
        let allow = q.get("allow_destructive") == "true"
        let result = try await schemas.apply(wanted, allowDestructive: allow, dryRun: dry, source: "api")
        if result.applied {
            try await audit.record(AuditLog.entry(ctx.principal, "schema.apply", detail: .object(JSONObject([("version", .int(result.version))]))))
        }
        var o = JSONObject([("plan", result.plan.json), ("applied", .bool(result.applied)), ("version", .int(result.version))])
        if !dry, let c = req.uri.path.split(separator: "/").last.map(String.init), let col = schemas.current.schema.collection(c) {
            o.append("collection", col.encodeWithName())
        }
        return HTTPSupport.json(dry ? .ok : status, .object(o), headers: [.cacheControl: "no-store"])
    }
}
