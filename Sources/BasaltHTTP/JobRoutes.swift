import BasaltCore
public import BasaltServices
import HTTPTypes
import Hummingbird

/// `/v1/admin/jobs` and `/v1/admin/webhooks` (API.md §10, §12). Admin credential only.
public struct JobRoutes: Sendable {
    let jobs: JobQueue
    let webhooks: WebhookService
    let settings: HTTPSettings

    public init(jobs: JobQueue, webhooks: WebhookService, settings: HTTPSettings) {
        self.jobs = jobs
        self.webhooks = webhooks
        self.settings = settings
    }

    var audit: AuditLog { AuditLog(store: jobs.store) }

    /// `limit` (1–200, default 20), `cursor`, and `state` (comma-separated) as the job lists take them.
    static func page(_ req: Request) throws -> (limit: Int, cursor: String?, states: [Job.State], q: QueryParameters) {
        let q = try QueryParameters(req.uri.query)
        var limit = 20
        if let l = q.get("limit") {
            guard let n = Int(l), (1...200).contains(n) else { throw BasaltError.badRequest("limit must be an integer from 1 to 200") }
            limit = n
        }
        var states: [Job.State] = []
        if q.get("state") == "" { throw BasaltError.badRequest("state is one of \(Job.State.allCases.map(\.rawValue).joined(separator: ", "))") }
        for s in q.get("state")?.split(separator: ",", omittingEmptySubsequences: false) ?? [] {
            guard let state = Job.State(rawValue: String(s)) else {
                throw BasaltError.badRequest("state is one of \(Job.State.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            states.append(state)
        }
        if let c = q.get("cursor"), RecordID.normalize(c) != c { throw BasaltError.badRequest("The cursor is invalid") }
        return (limit, q.get("cursor"), states, q)
    }

    static func list(_ req: Request, items: [JSONValue], next: String?) -> Response {
        var h: HTTPFields = [.cacheControl: "no-store"]
        if let next { h[BasaltHeader.link] = "<\(RecordRoutes.nextLink(req, cursor: next))>; rel=\"next\"" }
        return HTTPSupport.json(
            .ok,
            .object(JSONObject([("items", .array(items)), ("next_cursor", next.map(JSONValue.string) ?? .null)])),
            headers: h
        )
    }

    static func json(_ status: HTTPResponse.Status, _ body: JSONValue) -> Response {
        HTTPSupport.json(status, body, headers: [.cacheControl: "no-store"])
    }

    public var endpoints: [Endpoint] {
        [
            // The job queue, newest first; `state` and `kind` (comma-separated) and a `filter` over
            // the job's fields (API.md §3) narrow it.
            Endpoint(.get, "/v1/admin/jobs", .admin) { req, _ in
                let p = try Self.page(req)
                let kinds = (p.q.get("kind") ?? "").split(separator: ",").map(String.init)
                let filter = try p.q.get("filter").flatMap { $0.isEmpty ? nil : try JobQueue.filter($0) }
                let page = try await jobs.list(limit: p.limit, before: p.cursor, states: p.states, kinds: kinds, owner: nil, filter: filter)
                return Self.list(req, items: page.items.map(\.json), next: page.next)
            },
            Endpoint(.get, "/v1/admin/jobs/:id", .admin) { _, ctx in
                guard let job = try await jobs.job(id: try ctx.parameters.require("id")) else { throw BasaltError.notFound("No job has this id") }
                return Self.json(.ok, job.json)
            },
            Endpoint(.post, "/v1/admin/jobs/:id/retry", .admin) { _, ctx in
                let id = try ctx.parameters.require("id")
                guard let job = try await jobs.retry(id: id) else {
                    guard try await jobs.job(id: id) != nil else { throw BasaltError.notFound("No job has this id") }
                    throw BasaltError(.conflict, "The job is pending or running; only failed, dead or succeeded jobs are retried")
                }
                try await audit.record(AuditLog.entry(ctx.principal, "job.retry", recordID: id))
                return Self.json(.accepted, job.json)
            },

            Endpoint(.get, "/v1/admin/webhooks", .admin) { _, _ in
                Self.json(.ok, .object(JSONObject([("items", .array(try await webhooks.list()))])))
            },
            Endpoint(.post, "/v1/admin/webhooks", .admin) { req, ctx in
                let body = try await HTTPSupport.jsonBody(req, settings: settings)
                let created = try await webhooks.create(body, audit: AuditLog.entry(ctx.principal, "webhook.create"))
                var h: HTTPFields = [.cacheControl: "no-store"]
                h[.location] = "/v1/admin/webhooks/\(created["id"]?.stringValue ?? "")"
                return HTTPSupport.json(.created, created, headers: h)
            },
            Endpoint(.get, "/v1/admin/webhooks/:id", .admin) { _, ctx in
                Self.json(.ok, try await webhooks.get(try ctx.parameters.require("id")))
            },
            Endpoint(.patch, "/v1/admin/webhooks/:id", .admin) { req, ctx in
                let body = try await HTTPSupport.jsonBody(req, settings: settings, mergePatch: true)
                let id = try ctx.parameters.require("id")
                return Self.json(.ok, try await webhooks.update(id, body, audit: AuditLog.entry(ctx.principal, "webhook.update")))
            },
            Endpoint(.delete, "/v1/admin/webhooks/:id", .admin) { _, ctx in
                try await webhooks.delete(try ctx.parameters.require("id"), audit: AuditLog.entry(ctx.principal, "webhook.delete"))
                return Response(status: .noContent, headers: [.cacheControl: "no-store"])
            },
            Endpoint(.get, "/v1/admin/webhooks/:id/deliveries", .admin) { req, ctx in
                let p = try Self.page(req)
                let page = try await webhooks.deliveries(try ctx.parameters.require("id"), limit: p.limit, before: p.cursor, states: p.states)
                return Self.list(req, items: page.items, next: page.next)
            },
            Endpoint(.post, "/v1/admin/webhooks/:id/deliveries/:delivery_id/retry", .admin) { _, ctx in
                let delivery = try await webhooks.retry(try ctx.parameters.require("id"), delivery: try ctx.parameters.require("delivery_id"))
                return Self.json(.accepted, delivery)
            },
            Endpoint(.post, "/v1/admin/webhooks/:id/test", .admin) { _, ctx in
                Self.json(.accepted, try await webhooks.test(try ctx.parameters.require("id")))
            },
        ]
    }
}
