import BasaltAuth
import BasaltCore
import BasaltServices
import Foundation
import OpenAPIKit

extension OpenAPIGenerator.Builder {
    // MARK: Collections

    mutating func addCollection(_ c: CollectionSchema, actions: Set<AccessAction>, documented: Set<String>) {
        let f = SchemaFactory(schema: schema, documented: documented, managedReadOnly: !principal.isAdmin)
        addSchema(c.name, f.record(c))
        if actions.contains(.list) { addSchema(derived(c, "list"), f.list(c)) }
        if actions.contains(.create) { addSchema(derived(c, "create"), f.create(c)) }
        if actions.contains(.update) {
            addSchema(derived(c, "replace"), f.replace(c))
            addSchema(derived(c, "patch"), f.patch(c))
        }
        tags.append(OpenAPI.Tag(name: c.name, description: "Records of the `\(c.name)` collection."))

        let tag = [c.name]
        var collectionItem = OpenAPI.PathItem()
        if actions.contains(.list) {
            let list = OpenAPI.Operation(
                tags: tag,
                summary: "List \(c.name)",
                description: """
                    Records the caller may list, newest first unless `sort` says otherwise. Pages are \
                    keyset-paginated: pass `next_cursor` back as `cursor`.
                    """,
                operationId: "list_\(c.name)",
                parameters: Parameters.list(c, schema: schema) + [.parameter(Parameters.ifNoneMatch)],
                responses: Responses.merge(
                    [
                        (
                            200,
                            Responses.ok(
                                "One page of records",
                                Media.body(derived(c, "list")),
                                headers: [
                                    "ETag": Headers.weakETag, "Link": Headers.link,
                                    "Cache-Control": Headers.cacheControl,
                                    "Vary": Headers.vary,
                                ]
                            )
                        ),
                        (304, Responses.notModified(Headers.weakETag)),
                    ],
                    errors: [400, 401, 403, 406, 429]
                ),
                security: security(.list, c)
            )
            collectionItem.get = list
            collectionItem.head = Responses.head(list)
        }
        if actions.contains(.create) {
            let created = Media.json(
                .one(of: [
                    SchemaFactory.ref(c.name),
                    .object(
                        description: "Instead of the record when the caller may not view it",
                        properties: ["id": .string(format: .uuid)],
                        additionalProperties: .a(false)
                    ),
                ])
            )
            collectionItem.post = OpenAPI.Operation(
                tags: tag,
                summary: "Create a \(c.name) record",
                description: """
                    Creates one record. A client may supply its own `id`. The `201` carries the record \
                    when the caller may view it, otherwise only `{"id"}`.
                    """,
                operationId: "create_\(c.name)",
                parameters: [.parameter(Parameters.idempotencyKey)],
                requestBody: Media.request(Media.body(derived(c, "create"))),
                responses: Responses.merge(
                    [
                        (
                            201,
                            Responses.ok(
                                "Created",
                                created,
                                headers: [
                                    "Location": Headers.location, "ETag": Headers.strongETag,
                                    "Idempotent-Replayed": Headers.replayed,
                                ]
                            )
                        )
                    ],
                    errors: [400, 401, 403, 409, 413, 415, 422, 429]
                ),
                security: security(.create, c)
            )
        }
        if !collectionItem.endpoints.isEmpty {
            paths[OpenAPI.Path(rawValue: "/v1/\(c.name)")] = .pathItem(collectionItem)
        }

        var recordItem = OpenAPI.PathItem(parameters: [.parameter(Parameters.recordID)])
        let written = Responses.ok(
            "The record after the write",
            Media.body(c.name),
            headers: ["ETag": Headers.strongETag]
        )
        if actions.contains(.view) {
            let get = OpenAPI.Operation(
                tags: tag,
                summary: "Get a \(c.name) record",
                description: "One record, with a strong `ETag` of its version.",
                operationId: "get_\(c.name)",
                parameters: [.parameter(Parameters.ifNoneMatch)],
                responses: Responses.merge(
                    [
                        (
                            200,
                            Responses.ok(
                                "The record",
                                Media.body(c.name),
                                headers: [
                                    "ETag": Headers.strongETag, "Cache-Control": Headers.cacheControl,
                                    "Vary": Headers.vary,
                                ]
                            )
                        ),
                        (304, Responses.notModified(Headers.strongETag)),
                    ],
                    errors: [401, 403, 404, 406, 429]
                ),
                security: security(.view, c)
            )
            recordItem.get = get
            recordItem.head = Responses.head(get)
        }
        if actions.contains(.update) {
            recordItem.put = OpenAPI.Operation(
                tags: tag,
                summary: "Replace a \(c.name) record",
                description: """
                    Replaces every writable field; absent optional fields become null (or their default). \
                    System fields may be repeated with their current values.
                    """,
                operationId: "replace_\(c.name)",
                parameters: [.parameter(Parameters.ifMatch), .parameter(Parameters.idempotencyKey)],
                requestBody: Media.request(Media.body(derived(c, "replace"))),
                responses: Responses.merge(
                    [(200, written)],
                    errors: [400, 401, 403, 404, 409, 412, 413, 415, 422, 429]
                ),
                security: security(.update, c)
            )
            let patch = OpenAPI.Content(schemaReference: .component(named: derived(c, "patch")))
            recordItem.patch = OpenAPI.Operation(
                tags: tag,
                summary: "Update a \(c.name) record",
                description: """
                    JSON Merge Patch (RFC 7396): members present are set, `null` clears a field, and \
                    objects merge recursively into `json` fields.
                    """,
                operationId: "update_\(c.name)",
                parameters: [.parameter(Parameters.ifMatch), .parameter(Parameters.idempotencyKey)],
                requestBody: Media.request([Media.mergePatch: .content(patch), Media.jsonType: .content(patch)]),
                responses: Responses.merge(
                    [(200, written)],
                    errors: [400, 401, 403, 404, 409, 412, 413, 415, 422, 429]
                ),
                security: security(.update, c)
            )
        }
        if actions.contains(.delete) {
            recordItem.delete = OpenAPI.Operation(
                tags: tag,
                summary: "Delete a \(c.name) record",
                description: """
                    Deletes the record. `409` when another record still refers to it through a \
                    `restrict` relation.
                    """,
                operationId: "delete_\(c.name)",
                parameters: [.parameter(Parameters.ifMatch), .parameter(Parameters.idempotencyKey)],
                responses: Responses.merge(
                    [(204, Responses.ok("Deleted"))],
                    errors: [400, 401, 403, 404, 409, 412, 429]
                ),
                security: security(.delete, c)
            )
        }
        if !recordItem.endpoints.isEmpty {
            paths[OpenAPI.Path(rawValue: "/v1/\(c.name)/{id}")] = .pathItem(recordItem)
        }
    }

    // MARK: Batch and meta

    mutating func addBatch() {
        addSchema(Names.batchRequest, SchemaFactory.batchRequest)
        addSchema(Names.batchResponse, SchemaFactory.batchResponse)
        tags.append(OpenAPI.Tag(name: "batch", description: "Several writes in one transaction."))
        let op = OpenAPI.Operation(
            tags: ["batch"],
            summary: "Run several writes in one transaction",
            description: """
                1–100 operations (POST, PUT, PATCH, DELETE on records), each under the caller's grants. \
                Either all succeed (`200`) or nothing is committed and the answer is the first failing \
                operation's problem, with its 0-based `operation_index`.
                """,
            operationId: "batch",
            parameters: [.parameter(Parameters.idempotencyKey)],
            requestBody: Media.request(Media.body(Names.batchRequest)),
            responses: Responses.merge(
                [
                    (
                        200,
                        Responses.ok("Every operation succeeded and was committed", Media.body(Names.batchResponse))
                    )
                ],
                errors: [400, 401, 403, 404, 409, 412, 413, 415, 422, 429]
            ),
            security: Security.optional
        )
        paths["/v1/batch"] = .pathItem(OpenAPI.PathItem(post: op))
    }

    mutating func addMeta() {
        tags.append(OpenAPI.Tag(name: "meta", description: "Health checks and this document."))
        let health = Media.json(.object(properties: ["status": .string(allowedValues: "ok")]))
        paths["/v1/openapi.json"] = .pathItem(
            OpenAPI.PathItem(
                get: OpenAPI.Operation(
                    tags: ["meta"],
                    summary: "This OpenAPI document",
                    description: "The OpenAPI 3.1 document of this deployment, scoped to the caller.",
                    operationId: "openapi_document",
                    responses: Responses.merge(
                        [
                            (
                                200,
                                Responses.ok(
                                    "An OpenAPI 3.1 document",
                                    Media.json(.object(description: "OpenAPI 3.1 document"))
                                )
                            )
                        ],
                        errors: [401, 406, 429]
                    ),
                    security: Security.optional
                )
            )
        )
        paths["/health/live"] = .pathItem(
            OpenAPI.PathItem(
                get: OpenAPI.Operation(
                    tags: ["meta"],
                    summary: "Liveness",
                    description: "`200` while the process is up. Credentials are ignored.",
                    operationId: "health_live",
                    responses: [200: Responses.ok("The process is up", health)],
                    security: Security.none
                )
            )
        )
        paths["/health/ready"] = .pathItem(
            OpenAPI.PathItem(
                get: OpenAPI.Operation(
                    tags: ["meta"],
                    summary: "Readiness",
                    description: """
                        `200` when the database is reachable and migrations are applied, else `503`. Credentials \
                        are ignored.
                        """,
                    operationId: "health_ready",
                    responses: Responses.merge([(200, Responses.ok("Ready to serve", health))], errors: [503]),
                    security: Security.none
                )
            )
        )
    }

}
