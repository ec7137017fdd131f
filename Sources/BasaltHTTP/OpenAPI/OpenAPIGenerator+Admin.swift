import BasaltAuth
import BasaltCore
import BasaltServices
import Foundation
import OpenAPIKit

extension OpenAPIGenerator.Builder {
    // MARK: Admin

    mutating func addAdmin() {
        for (name, s) in SchemaFactory.adminSchemas { addSchema(name, s) }
        tags.append(
            OpenAPI.Tag(
                name: "admin",
                description: "Schema, migrations, API keys, users and the audit log. Admin API keys only."
            )
        )
        let tag = ["admin"]
        let admin = Security.admin
        func items(_ description: String, _ name: String) -> Responses.R {
            Responses.ok(
                description,
                Media.json(.object(properties: ["items": .array(items: SchemaFactory.ref(name))]))
            )
        }
        let change = Media.body(Names.schemaChange)
        let dryRun = OpenAPI.Parameter.query(
            name: "dry_run",
            schema: .boolean(defaultValue: false),
            description:
                "Only plan: answer `200` with the plan (destructive steps marked), change nothing, never `409`."
        )
        let allowDestructive = OpenAPI.Parameter.query(
            name: "allow_destructive",
            schema: .boolean(defaultValue: false),
            description: "Apply destructive steps (dropping fields or collections that hold data, narrowing types)."
        )
        let collectionName = OpenAPI.Parameter.path(
            name: "name",
            schema: .string(pattern: "^[a-z][a-z0-9_]{0,62}$"),
            description: "A collection name"
        )
        let keyID = OpenAPI.Parameter.path(name: "id", schema: .string(format: .uuid), description: "An API key id")
        let writeErrors = [400, 401, 403, 409, 413, 415, 422, 429]

        paths["/v1/admin/schema"] = .pathItem(
            OpenAPI.PathItem(
                get: OpenAPI.Operation(
                    tags: tag,
                    summary: "Export the schema",
                    description: "The whole schema as JSON, or as YAML with `Accept: application/yaml`.",
                    operationId: "admin_get_schema",
                    responses: Responses.merge(
                        [
                            (
                                200,
                                Responses.ok(
                                    "The schema",
                                    [
                                        Media.jsonType: .content(
                                            OpenAPI.Content(
                                                schemaReference: .component(named: Names.schemaDocument)
                                            )
                                        ),
                                        Media.yaml: .content(
                                            OpenAPI.Content(
                                                schemaReference: .component(named: Names.schemaDocument)
                                            )
                                        ),
                                    ]
                                )
                            )
                        ],
                        errors: [401, 403, 429]
                    ),
                    security: admin
                ),
                put: OpenAPI.Operation(
                    tags: tag,
                    summary: "Replace the schema",
                    description: """
                        Plans the change from the current schema to this one and applies it in one transaction, \
                        recording it in the migration history. A destructive step without \
                        `allow_destructive=true` is `409` with the steps listed in `errors`.
                        """,
                    operationId: "admin_replace_schema",
                    parameters: [.parameter(dryRun), .parameter(allowDestructive)],
                    requestBody: Media.request(Media.body(Names.schemaDocument)),
                    responses: Responses.merge(
                        [(200, Responses.ok("The plan, applied unless `dry_run`", change))],
                        errors: writeErrors
                    ),
                    security: admin
                )
            )
        )
        paths["/v1/admin/collections"] = .pathItem(
            OpenAPI.PathItem(
                get: OpenAPI.Operation(
                    tags: tag,
                    summary: "List collections",
                    operationId: "admin_list_collections",
                    responses: Responses.merge(
                        [(200, items("Every collection", Names.collectionObject))],
                        errors: [401, 403, 429]
                    ),
                    security: admin
                ),
                post: OpenAPI.Operation(
                    tags: tag,
                    summary: "Create a collection",
                    operationId: "admin_create_collection",
                    parameters: [.parameter(dryRun)],
                    requestBody: Media.request(Media.body(Names.collectionObject)),
                    responses: Responses.merge(
                        [
                            (200, Responses.ok("Dry run: the plan", change)),
                            (
                                201,
                                Responses.ok(
                                    "Created; the applied plan",
                                    change,
                                    headers: ["Location": Headers.location]
                                )
                            ),
                        ],
                        errors: writeErrors
                    ),
                    security: admin
                )
            )
        )
        // A named component, referenced from both media types: generators make a model per inline
        // body, and two identical inline bodies became two models of one name.
        addSchema(
            Names.collectionPatch,
            .object(
                description:
                    "JSON Merge Patch of the collection object; `\"fields\": {\"old\": null}` drops a field.",
                properties: [
                    "fields": .object(required: false, additionalProperties: .b(SchemaFactory.fieldDefinition(nullable: true))),
                    "indexes": .array(required: false, items: .fragment),
                    "access": .object(required: false),
                ]
            )
        )
        let collectionPatch = OpenAPI.Content(schemaReference: .component(named: Names.collectionPatch))
        paths["/v1/admin/collections/{name}"] = .pathItem(
            OpenAPI.PathItem(
                parameters: [.parameter(collectionName)],
                get: OpenAPI.Operation(
                    tags: tag,
                    summary: "Get a collection",
                    operationId: "admin_get_collection",
                    responses: Responses.merge(
                        [(200, Responses.ok("The collection", Media.body(Names.collectionObject)))],
                        errors: [401, 403, 404, 429]
                    ),
                    security: admin
                ),
                delete: OpenAPI.Operation(
                    tags: tag,
                    summary: "Drop a collection",
                    operationId: "admin_delete_collection",
                    parameters: [.parameter(dryRun), .parameter(allowDestructive)],
                    responses: Responses.merge(
                        [(200, Responses.ok("Dropped (unless `dry_run`); the plan", change))],
                        errors: [401, 403, 404, 409, 429]
                    ),
                    security: admin
                ),
                patch: OpenAPI.Operation(
                    tags: tag,
                    summary: "Change a collection",
                    operationId: "admin_update_collection",
                    parameters: [.parameter(dryRun), .parameter(allowDestructive)],
                    requestBody: Media.request([
                        Media.mergePatch: .content(collectionPatch), Media.jsonType: .content(collectionPatch),
                    ]),
                    responses: Responses.merge(
                        [(200, Responses.ok("The plan, applied unless `dry_run`", change))],
                        errors: writeErrors + [404]
                    ),
                    security: admin
                )
            )
        )
        paths["/v1/admin/migrations"] = .pathItem(
            OpenAPI.PathItem(
                get: OpenAPI.Operation(
                    tags: tag,
                    summary: "Migration history",
                    description: "Applied schema changes, newest first.",
                    operationId: "admin_list_migrations",
                    responses: Responses.merge(
                        [(200, items("The history", Names.migration))],
                        errors: [401, 403, 429]
                    ),
                    security: admin
                )
            )
        )
        paths["/v1/admin/api-keys"] = .pathItem(
            OpenAPI.PathItem(
                get: OpenAPI.Operation(
                    tags: tag,
                    summary: "List API keys",
                    operationId: "admin_list_api_keys",
                    responses: Responses.merge(
                        [(200, items("Every live API key (never the key itself)", Names.apiKey))],
                        errors: [401, 403, 429]
                    ),
                    security: admin
                ),
                post: OpenAPI.Operation(
                    tags: tag,
                    summary: "Create an API key",
                    description: "The `key` is in this response only; it is stored hashed.",
                    operationId: "admin_create_api_key",
                    requestBody: Media.request(Media.body(Names.apiKeyCreate)),
                    responses: Responses.merge(
                        [
                            (
                                201,
                                Responses.ok(
                                    "Created",
                                    Media.body(Names.apiKeyCreated),
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
        paths["/v1/admin/api-keys/{id}"] = .pathItem(
            OpenAPI.PathItem(
                parameters: [.parameter(keyID)],
                delete: OpenAPI.Operation(
                    tags: tag,
                    summary: "Revoke an API key",
                    operationId: "admin_delete_api_key",
                    responses: Responses.merge([(204, Responses.ok("Revoked"))], errors: [401, 403, 404, 429]),
                    security: admin
                )
            )
        )
        let clientID = OpenAPI.Parameter.path(name: "id", schema: .string(format: .uuid), description: "An OAuth client's id")
        paths["/v1/admin/oauth/clients"] = .pathItem(
            OpenAPI.PathItem(
                get: OpenAPI.Operation(
                    tags: tag,
                    summary: "List OAuth clients",
                    operationId: "admin_list_oauth_clients",
                    responses: Responses.merge(
                        [(200, items("Every registered client (never a secret)", Names.oauthClient))],
                        errors: [401, 403, 429]
                    ),
                    security: admin
                ),
                post: OpenAPI.Operation(
                    tags: tag,
                    summary: "Register an OAuth client",
                    description: """
                        A client of the authorization server (API.md §8.1). A confidential client's \
                        `client_secret` is in this response only; it is stored hashed.
                        """,
                    operationId: "admin_create_oauth_client",
                    requestBody: Media.request(Media.body(Names.oauthClientCreate)),
                    responses: Responses.merge(
                        [(201, Responses.ok("Registered", Media.body(Names.oauthClientCreated), headers: ["Location": Headers.location]))],
                        errors: [400, 401, 403, 413, 415, 422, 429]
                    ),
                    security: admin
                )
            )
        )
        paths["/v1/admin/oauth/clients/{id}"] = .pathItem(
            OpenAPI.PathItem(
                parameters: [.parameter(clientID)],
                get: OpenAPI.Operation(
                    tags: tag,
                    summary: "An OAuth client",
                    operationId: "admin_get_oauth_client",
                    responses: Responses.merge(
                        [(200, Responses.ok("The client", Media.body(Names.oauthClient)))],
                        errors: [401, 403, 404, 429]
                    ),
                    security: admin
                ),
                delete: OpenAPI.Operation(
                    tags: tag,
                    summary: "Delete an OAuth client",
                    description: "Every token it holds or was given by users stops working.",
                    operationId: "admin_delete_oauth_client",
                    responses: Responses.merge([(204, Responses.ok("Deleted"))], errors: [401, 403, 404, 429]),
                    security: admin
                )
            )
        )
        addAdminIdentity(tag: tag)
        addJobsAndWebhooks(tag: tag)
    }

    /// `/v1/admin/users…` and `/v1/admin/audit` (API.md §12).
    mutating func addAdminIdentity(tag: [String]) {
        for (name, s) in SchemaFactory(schema: schema, documented: []).adminIdentitySchemas() { addSchema(name, s) }
        let admin = Security.admin
        let noStore: OpenAPI.Header.Map = ["Cache-Control": Headers.noStore]
        let userID = OpenAPI.Parameter.path(name: "id", schema: .string(format: .uuid), description: "A user id")
        // The user list is the records list of `users`; its schemas exist whenever the collection does.
        if let users = schema.collection(BuiltinCollections.usersName) {
            paths["/v1/admin/users"] = .pathItem(
                OpenAPI.PathItem(
                    get: OpenAPI.Operation(
                        tags: tag,
                        summary: "List users",
                        description: """
                            Every `users` record, filtered, sorted and paginated as any list (`filter`, `sort`, \
                            `fields`, `cursor`, …).
                            """,
                        operationId: "admin_list_users",
                        parameters: Parameters.list(users, schema: schema) + [.parameter(Parameters.ifNoneMatch)],
                        responses: Responses.merge(
                            [
                                (
                                    200,
                                    Responses.ok(
                                        "One page of users",
                                        Media.body(derived(users, "list")),
                                        headers: [
                                            "ETag": Headers.weakETag, "Link": Headers.link,
                                            "Cache-Control": Headers.cacheControl, "Vary": Headers.vary,
                                        ]
                                    )
                                ),
                                (304, Responses.notModified(Headers.weakETag)),
                            ],
                            errors: [400, 401, 403, 406, 429]
                        ),
                        security: admin
                    )
                )
            )
            let patch = OpenAPI.Content(schemaReference: .component(named: Names.adminUserPatch))
            paths["/v1/admin/users/{id}"] = .pathItem(
                OpenAPI.PathItem(
                    parameters: [.parameter(userID)],
                    patch: OpenAPI.Operation(
                        tags: tag,
                        summary: "Change a user's roles, status or verification",
                        description: """
                            Sets `roles`, `disabled` and `verified`, the fields users cannot write themselves. \
                            Disabling revokes every session of the user in the same transaction. Audit-logged.
                            """,
                        operationId: "admin_update_user",
                        requestBody: Media.request([
                            Media.mergePatch: .content(patch), Media.jsonType: .content(patch),
                        ]),
                        responses: Responses.merge(
                            [
                                (
                                    200,
                                    Responses.ok(
                                        "The user after the change",
                                        Media.body(users.name),
                                        headers: noStore
                                    )
                                )
                            ],
                            errors: [400, 401, 403, 404, 413, 415, 422, 429]
                        ),
                        security: admin
                    )
                )
            )
            paths["/v1/admin/users/{id}/revoke-sessions"] = .pathItem(
                OpenAPI.PathItem(
                    parameters: [.parameter(userID)],
                    post: OpenAPI.Operation(
                        tags: tag,
                        summary: "Sign a user out everywhere",
                        description: """
                            Revokes every session of the user: their refresh tokens stop working. Access tokens \
                            already issued stay valid until they expire. Audit-logged.
                            """,
                        operationId: "admin_revoke_user_sessions",
                        responses: Responses.merge(
                            [(204, Responses.ok("Revoked", headers: noStore))],
                            errors: [401, 403, 404, 429]
                        ),
                        security: admin
                    )
                )
            )
            paths["/v1/admin/users/{id}/mfa"] = .pathItem(
                OpenAPI.PathItem(
                    parameters: [.parameter(userID)],
                    delete: OpenAPI.Operation(
                        tags: tag,
                        summary: "Turn a user's two-factor sign-in off",
                        description: """
                            Removes the user's TOTP secret and recovery codes (a lost device, or a factor set up \
                            by someone who held the user's access token). Audit-logged.
                            """,
                        operationId: "admin_reset_user_mfa",
                        responses: Responses.merge(
                            [(204, Responses.ok("Turned off", headers: noStore))],
                            errors: [401, 403, 404, 429]
                        ),
                        security: admin
                    )
                )
            )
        }
        let auditFilters: [(String, String)] = [
            ("actor", "Only this actor (`admin:<key id>`, `sub:<id>`, …)"),
            ("action", "Only this action, e.g. `schema.apply`"),
            ("collection", "Only entries about this collection"),
        ]
        var auditParameters: OpenAPI.Parameter.Array = [
            Parameters.limit(default: 50),
            Parameters.cursor,
        ]
        for (name, description) in auditFilters {
            auditParameters.append(.parameter(.query(name: name, schema: .string, description: description)))
        }
        paths["/v1/admin/advisors"] = .pathItem(
            OpenAPI.PathItem(
                get: OpenAPI.Operation(
                    tags: tag,
                    summary: "The advisors' findings",
                    description:
                        "The review `basalt doctor` prints — security, performance, reliability — plus advice from the list queries this process has served. Most severe first.",
                    operationId: "admin_advisors",
                    responses: Responses.merge(
                        [
                            (
                                200,
                                Responses.ok(
                                    "The findings",
                                    Media.json(.object(properties: ["items": .array(items: SchemaFactory.ref(Names.finding))])),
                                    headers: ["Cache-Control": Headers.noStore]
                                )
                            )
                        ],
                        errors: [401, 403, 429]
                    ),
                    security: admin
                )
            )
        )
        paths["/v1/admin/audit"] = .pathItem(
            OpenAPI.PathItem(
                get: OpenAPI.Operation(
                    tags: tag,
                    summary: "The audit log",
                    description: "Admin bypasses of the grants and identity administration, newest first.",
                    operationId: "admin_list_audit",
                    parameters: auditParameters,
                    responses: Responses.merge(
                        [
                            (
                                200,
                                Responses.ok(
                                    "One page of entries",
                                    Media.json(
                                        .object(properties: [
                                            "items": .array(items: SchemaFactory.ref(Names.auditEntry)),
                                            "next_cursor": .string(
                                                nullable: true,
                                                description:
                                                    "Pass as `cursor` for the next page; null on the last page"
                                            ),
                                        ])
                                    ),
                                    headers: ["Link": Headers.link, "Cache-Control": Headers.noStore]
                                )
                            )
                        ],
                        errors: [400, 401, 403, 429]
                    ),
                    security: admin
                )
            )
        )
    }
}
