import BasaltCore
import BasaltServices
import OpenAPIKit

extension OpenAPIGenerator.Builder {
    /// `/v1/admin/jobs…` (API.md §12) and `/v1/admin/webhooks…` (API.md §10).
    mutating func addJobsAndWebhooks(tag: [String]) {
        let admin = Security.admin
        let stamp = JSONSchema.string(format: .dateTime)
        let maybeStamp = JSONSchema.string(format: .dateTime, nullable: true)
        let states = Job.State.allCases.map { AnyCodable($0.rawValue) }
        let jobProperties: OrderedDictionary<String, JSONSchema> = [
            "id": .string(format: .uuid), "state": .string(allowedValues: states),
            "attempts": .integer(description: "Attempts made, the one under way included"),
            "max_attempts": .integer, "run_at": stamp.with(description: "When it is next due (for a running job, when its lease ends)"),
            "created_at": stamp, "updated_at": stamp, "finished_at": maybeStamp,
            "last_error": .string(nullable: true),
        ]
        var withKind = jobProperties
        withKind["kind"] = .string(description: "`mail` or `webhook`")
        withKind["owner"] = .string(nullable: true, description: "What the job belongs to: a mail's recipient, a delivery's webhook")
        let job = JSONSchema.object(properties: withKind)
        var deliveryProperties = jobProperties
        deliveryProperties["webhook_id"] = .string(format: .uuid)
        deliveryProperties["event_id"] = .string(nullable: true)
        deliveryProperties["event_type"] = .string(nullable: true)
        deliveryProperties["log"] = .array(
            items: .object(properties: [
                "attempt": .integer, "at": stamp, "status": .integer(nullable: true), "duration_ms": .integer,
                "error": .string(nullable: true),
            ])
        )
        let delivery = JSONSchema.object(properties: deliveryProperties)
        let webhookProperties: OrderedDictionary<String, JSONSchema> = [
            "id": .string(format: .uuid), "url": .string(format: .uri),
            "events": .array(description: "Empty: every type", items: .string(allowedValues: WebhookService.eventTypes.map { AnyCodable($0) })),
            "collections": .array(description: "Empty: every collection", items: .string),
            "enabled": .boolean, "disabled_reason": .string(nullable: true), "failing_since": maybeStamp,
            "created_at": stamp, "updated_at": stamp,
        ]
        let webhook = JSONSchema.object(properties: webhookProperties)
        var createdProperties = webhookProperties
        createdProperties["secret"] = .string(description: "`whsec_` + base64: the Standard Webhooks signing secret, shown only here")
        let collectionNames = compiled.schema.collections.map { AnyCodable($0.name) }
        func webhookWrite(urlRequired: Bool) -> JSONSchema {
            .object(
                properties: [
                    "url": .string(
                        format: .uri,
                        required: urlRequired,
                        description: "http or https; loopback, private and link-local targets are refused (`forbidden_target`)"
                    ),
                    "events": .array(
                        required: false,
                        nullable: true,
                        description: "Empty or null: every type",
                        items: .string(allowedValues: WebhookService.eventTypes.map { AnyCodable($0) })
                    ),
                    "collections": .array(
                        required: false,
                        nullable: true,
                        description: "Empty or null: every collection",
                        items: .string(allowedValues: collectionNames)
                    ),
                    "enabled": .boolean(required: false),
                ],
                additionalProperties: .a(false)
            )
        }
        // One component for both media types (identical inline bodies make duplicate models).
        addSchema(Names.webhookPatch, webhookWrite(urlRequired: false))
        let webhookPatch = OpenAPI.Content(schemaReference: .component(named: Names.webhookPatch))
        func page(_ what: String, _ item: JSONSchema) -> Responses.R {
            Responses.ok(
                what,
                Media.json(
                    .object(properties: [
                        "items": .array(items: item),
                        "next_cursor": .string(nullable: true, description: "Pass as `cursor` for the next page; null on the last page"),
                    ])
                ),
                headers: ["Link": Headers.link, "Cache-Control": Headers.noStore]
            )
        }
        let stateFilter = OpenAPI.Parameter.query(
            name: "state",
            schema: .string(pattern: "^(pending|running|failed|dead|succeeded)(,(pending|running|failed|dead|succeeded))*$"),
            description: "Only jobs in these states (comma-separated)"
        )
        let kindFilter = OpenAPI.Parameter.query(name: "kind", schema: .string, description: "Only jobs of these kinds (comma-separated)")
        let jobFilter = OpenAPI.Parameter.query(
            name: "filter",
            schema: .string(maxLength: 4096),
            description: """
                A filter expression as on record lists, e.g. `state = 'dead' && run_at > '2026-01-01T00:00:00Z'`. Fields: \
                `id`, `kind`, `owner`, `state`, `attempts`, `max_attempts`, `run_at`, `created_at`, `updated_at`, \
                `finished_at`, `last_error`.
                """
        )
        let id = OpenAPI.Parameter.path(name: "id", schema: .string(format: .uuid), description: "An id")
        let deliveryID = OpenAPI.Parameter.path(name: "delivery_id", schema: .string(format: .uuid), description: "A delivery id")

        paths["/v1/admin/jobs"] = .pathItem(
            OpenAPI.PathItem(
                get: OpenAPI.Operation(
                    tags: tag,
                    summary: "The durable job queue",
                    description: "Mail and webhook deliveries, newest first.",
                    operationId: "admin_list_jobs",
                    parameters: [
                        Parameters.limit(default: 20), Parameters.cursor, .parameter(stateFilter), .parameter(kindFilter),
                        .parameter(jobFilter),
                    ],
                    responses: Responses.merge([(200, page("One page of jobs", job))], errors: [400, 401, 403, 429]),
                    security: admin
                )
            )
        )
        paths["/v1/admin/jobs/{id}"] = .pathItem(
            OpenAPI.PathItem(
                parameters: [.parameter(id)],
                get: OpenAPI.Operation(
                    tags: tag,
                    summary: "One job",
                    operationId: "admin_get_job",
                    responses: Responses.merge([(200, Responses.ok("The job", Media.json(job)))], errors: [401, 403, 404, 429]),
                    security: admin
                )
            )
        )
        paths["/v1/admin/jobs/{id}/retry"] = .pathItem(
            OpenAPI.PathItem(
                parameters: [.parameter(id)],
                post: OpenAPI.Operation(
                    tags: tag,
                    summary: "Retry a job",
                    description: "A failed, dead or succeeded job is due now, with one more attempt allowed; `409` while it is pending or running.",
                    operationId: "admin_retry_job",
                    responses: Responses.merge([(202, Responses.ok("Due now", Media.json(job)))], errors: [401, 403, 404, 409, 429]),
                    security: admin
                )
            )
        )
        paths["/v1/admin/webhooks"] = .pathItem(
            OpenAPI.PathItem(
                get: OpenAPI.Operation(
                    tags: tag,
                    summary: "List webhooks",
                    operationId: "admin_list_webhooks",
                    responses: Responses.merge(
                        [(200, Responses.ok("Every webhook", Media.json(.object(properties: ["items": .array(items: webhook)]))))],
                        errors: [401, 403, 429]
                    ),
                    security: admin
                ),
                post: OpenAPI.Operation(
                    tags: tag,
                    summary: "Register a webhook",
                    description: """
                        Committed changes matching `events` and `collections` (both default to all) are POSTed to \
                        `url` as CloudEvents with Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, \
                        `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`), in order per \
                        record; a non-2xx answer or a 15 s timeout is retried after 5 s, 5 min, 30 min, 2 h, 5 h, \
                        10 h and 10 h; an endpoint failing for 5 days is disabled.
                        """,
                    operationId: "admin_create_webhook",
                    requestBody: Media.request(Media.json(webhookWrite(urlRequired: true))),
                    responses: Responses.merge(
                        [
                            (
                                201,
                                Responses.ok(
                                    "Registered",
                                    Media.json(.object(properties: createdProperties)),
                                    headers: ["Location": Headers.location]
                                )
                            )
                        ],
                        errors: [400, 401, 403, 413, 415, 422, 429]
                    ),
                    security: admin
                )
            )
        )
        paths["/v1/admin/webhooks/{id}"] = .pathItem(
            OpenAPI.PathItem(
                parameters: [.parameter(id)],
                get: OpenAPI.Operation(
                    tags: tag,
                    summary: "One webhook",
                    operationId: "admin_get_webhook",
                    responses: Responses.merge([(200, Responses.ok("The webhook", Media.json(webhook)))], errors: [401, 403, 404, 429]),
                    security: admin
                ),
                delete: OpenAPI.Operation(
                    tags: tag,
                    summary: "Delete a webhook",
                    description: "Its pending deliveries are given up.",
                    operationId: "admin_delete_webhook",
                    responses: Responses.merge([(204, Responses.ok("Deleted"))], errors: [401, 403, 404, 429]),
                    security: admin
                ),
                patch: OpenAPI.Operation(
                    tags: tag,
                    summary: "Change a webhook",
                    description: "JSON Merge Patch; `enabled: true` re-enables a disabled endpoint and forgets its failures.",
                    operationId: "admin_update_webhook",
                    requestBody: Media.request([
                        Media.mergePatch: .content(webhookPatch), Media.jsonType: .content(webhookPatch),
                    ]),
                    responses: Responses.merge(
                        [(200, Responses.ok("The webhook", Media.json(webhook)))],
                        errors: [400, 401, 403, 404, 413, 415, 422, 429]
                    ),
                    security: admin
                )
            )
        )
        paths["/v1/admin/webhooks/{id}/deliveries"] = .pathItem(
            OpenAPI.PathItem(
                parameters: [.parameter(id)],
                get: OpenAPI.Operation(
                    tags: tag,
                    summary: "A webhook's deliveries",
                    description: "Newest first, each with its attempts: status code (null when no answer came), duration and error.",
                    operationId: "admin_list_webhook_deliveries",
                    parameters: [Parameters.limit(default: 20), Parameters.cursor, .parameter(stateFilter)],
                    responses: Responses.merge([(200, page("One page of deliveries", delivery))], errors: [400, 401, 403, 404, 429]),
                    security: admin
                )
            )
        )
        paths["/v1/admin/webhooks/{id}/deliveries/{delivery_id}/retry"] = .pathItem(
            OpenAPI.PathItem(
                parameters: [.parameter(id), .parameter(deliveryID)],
                post: OpenAPI.Operation(
                    tags: tag,
                    summary: "Deliver again",
                    description: "Sends the same event (same `webhook-id`) now; `409` while an attempt is under way.",
                    operationId: "admin_retry_webhook_delivery",
                    responses: Responses.merge([(202, Responses.ok("Due now", Media.json(delivery)))], errors: [401, 403, 404, 409, 429]),
                    security: admin
                )
            )
        )
        paths["/v1/admin/webhooks/{id}/test"] = .pathItem(
            OpenAPI.PathItem(
                parameters: [.parameter(id)],
                post: OpenAPI.Operation(
                    tags: tag,
                    summary: "Send a test delivery",
                    description: "A `basalt.webhook.test` event, signed, sent and logged like any delivery (one attempt).",
                    operationId: "admin_test_webhook",
                    responses: Responses.merge([(202, Responses.ok("Queued", Media.json(delivery)))], errors: [401, 403, 404, 429]),
                    security: admin
                )
            )
        )
    }
}
