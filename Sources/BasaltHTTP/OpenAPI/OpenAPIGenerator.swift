import BasaltAuth
import BasaltCore
public import BasaltServices
import Foundation
public import OpenAPIKit

/// Builds the OpenAPI 3.1 document of a deployment, as one caller may see it (API.md §13).
///
/// The document is derived from the live schema on every call: each collection gets its record,
/// create, replace, patch and list schemas with their constraints, and each operation appears only
/// when a grant's *who* matches the caller (`CompiledSchema.access` is not `.denied`). Admins see
/// every path, the admin API included.
///
/// ```swift
/// let doc = OpenAPIGenerator.document(schema: compiled, principal: .anonymous("203.0.113.7"),
///                                     serverURL: "https://api.example.com")
/// let bytes = OpenAPIGenerator.json(document: doc)   // the body of GET /v1/openapi.json
/// ```
public enum OpenAPIGenerator {
    /// The document for `principal`. `serverURL` becomes the single entry of `servers`.
    public static func document(schema: CompiledSchema, principal: Principal, serverURL: String) -> OpenAPI.Document {
        var builder = Builder(compiled: schema, principal: principal)
        builder.build()
        let server = OpenAPI.Server(url: URL(string: serverURL) ?? URL(string: "/")!)
        return OpenAPI.Document(
            openAPIVersion: .v3_1_1,
            info: OpenAPI.Document.Info(title: "Basalt API", description: Text.infoDescription, version: "1"),
            servers: [server],
            paths: builder.paths,
            components: OpenAPI.Components(
                schemas: builder.schemas,
                securitySchemes: [Names.bearer: .b(Self.bearerScheme), Names.apiKeyAuth: .b(Self.apiKeyScheme)]
            ),
            security: Security.required,
            tags: builder.tags.isEmpty ? nil : builder.tags
        )
    }

    /// The document for `principal`, encoded as JSON (the body of `GET /v1/openapi.json`).
    public static func json(schema: CompiledSchema, principal: Principal, serverURL: String) -> [UInt8] {
        json(document: document(schema: schema, principal: principal, serverURL: serverURL))
    }

    /// Encodes a document as JSON with sorted keys, so equal documents are equal bytes (weak ETags).
    public static func json(document: OpenAPI.Document) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return Array(try encoder.encode(document))
        } catch {
            // Every value in the document is built here from encodable parts; failing is a bug.
            preconditionFailure("OpenAPI document failed to encode: \(error)")
        }
    }

    /// A user's access token. Both schemes are HTTP bearer: the server tells them apart by the
    /// `bsk_` prefix of API keys.
    static let bearerScheme = OpenAPI.SecurityScheme.http(
        scheme: "bearer",
        bearerFormat: "JWT",
        description: """
            `Authorization: Bearer <access token>`: a signed-in user's JWT access token (`alg: EdDSA`, \
            Ed25519, with a `kid` whose public key is at `/.well-known/jwks.json`), from \
            `POST /v1/auth/login` or `POST /v1/auth/refresh`; 15 minutes by default. A missing credential \
            makes the caller anonymous; an invalid, expired or revoked one, or one of a disabled user, is \
            always `401`, also on public endpoints.
            """
    )

    /// An API key, sent the same way as an access token.
    static let apiKeyScheme = OpenAPI.SecurityScheme.http(
        scheme: "bearer",
        bearerFormat: "bsk_… API key",
        description: """
            `Authorization: Bearer bsk_…`: an API key, created by an admin and shown once, stored hashed. \
            It carries roles (and acts with their grants) or admin power, may expire and can be revoked. \
            Admin endpoints accept only admin API keys; the endpoints about the signed-in user (`/v1/auth/me`, \
            sessions, MFA, email change) accept only access tokens. An invalid, expired or revoked key is \
            always `401`.
            """
    )
}

// MARK: - Names and shared pieces

// Helpers live inside the namespace so their short names cannot collide with the module's other types.
extension OpenAPIGenerator {

    enum Names {
        static let bearer: OpenAPI.ComponentKey = "bearerAuth"
        static let apiKeyAuth: OpenAPI.ComponentKey = "apiKey"
        static let problem = "Problem"
        static let fieldErrorCodes = [
            "required", "type", "min", "max", "pattern", "enum", "format", "unique", "unknown_field", "read_only",
            "not_found", "forbidden_target", "invalid",
        ]
        static let batchRequest = "BatchRequest"
        static let batchResponse = "BatchResponse"
        static let schemaDocument = "SchemaDocument"
        static let collectionDefinition = "CollectionDefinition"
        static let collectionObject = "CollectionObject"
        static let fieldDefinition = "FieldDefinition"
        static let grant = "Grant"
        static let migrationPlan = "MigrationPlan"
        static let schemaChange = "SchemaChange"
        static let migration = "Migration"
        static let apiKey = "ApiKey"
        static let apiKeyCreate = "ApiKey_create"
        static let apiKeyCreated = "ApiKey_created"
        // Upper-case first letters: collection names are lower case, so these never collide.
        static let user = "User"
        static let register = "RegisterRequest"
        static let login = "LoginRequest"
        static let tokenResponse = "TokenResponse"
        static let session = "Session"
        static let accepted = "Accepted"
        static let jwks = "JWKS"
        static let adminUserPatch = "AdminUserPatch"
        static let auditEntry = "AuditEntry"
    }

    enum Security {
        static let bearer: OpenAPI.SecurityRequirement = [JSONReference.component(named: "bearerAuth"): []]
        static let apiKey: OpenAPI.SecurityRequirement = [JSONReference.component(named: "apiKey"): []]
        /// A credential is needed: a user's access token or an API key.
        static let required: [OpenAPI.SecurityRequirement] = [bearer, apiKey]
        /// Anonymous callers are served; a credential, when sent, must be valid.
        static let optional: [OpenAPI.SecurityRequirement] = [[:], bearer, apiKey]
        /// A signed-in user's access token (API keys are `403`).
        static let user: [OpenAPI.SecurityRequirement] = [bearer]
        /// An admin API key (admins are API keys).
        static let admin: [OpenAPI.SecurityRequirement] = [apiKey]
        /// Credentials are ignored (health, discovery).
        static let none: [OpenAPI.SecurityRequirement] = []
    }

    enum Media {
        static let jsonType = OpenAPI.ContentType.json
        static let problem = OpenAPI.ContentType.other("application/problem+json")
        static let mergePatch = OpenAPI.ContentType.other("application/merge-patch+json")
        static let yaml = OpenAPI.ContentType.yaml

        /// `application/json` with an inline schema.
        static func json(_ schema: JSONSchema) -> OpenAPI.Content.Map {
            [jsonType: .content(OpenAPI.Content(schema: schema))]
        }

        /// `application/json` with a component schema.
        static func body(_ component: String) -> OpenAPI.Content.Map {
            [jsonType: .content(OpenAPI.Content(schemaReference: .component(named: component)))]
        }

        /// A required request body.
        static func request(_ content: OpenAPI.Content.Map) -> OpenAPI.Request {
            OpenAPI.Request(content: content, required: true)
        }
    }

    enum Text {
        static let infoDescription = """
            The HTTP API of this Basalt deployment, generated from its live schema and scoped to the \
            caller: only operations the caller's grants reach are listed.

            Conventions: every response carries `X-Request-Id`; errors are RFC 9457 problem details \
            (`application/problem+json`, `type` is `/problems/{code}`); data responses carry \
            `Cache-Control: no-cache` (plus `private` unless the data is unconditionally public) and \
            `Vary: Authorization, Accept`; rate-limited routes send `RateLimit-Policy` and `RateLimit` \
            headers and answer `429` with `Retry-After` when over the limit. Record timestamps are RFC 3339 \
            in UTC with milliseconds; ids are lowercase UUIDs (UUIDv7 when the server makes them).

            Credentials go in `Authorization: Bearer …`: a signed-in user's access token (`bearerAuth`, from \
            `POST /v1/auth/login`) or an API key (`apiKey`, `bsk_…`). Without one the caller is anonymous.
            """
    }

    // MARK: - Builder

    struct Builder {
        let compiled: CompiledSchema
        let principal: Principal
        var paths: OpenAPI.PathItem.Map = [:]
        var schemas: OpenAPI.ComponentDictionary<JSONSchema> = [:]
        var tags: [OpenAPI.Tag] = []

        init(compiled: CompiledSchema, principal: Principal) {
            self.compiled = compiled
            self.principal = principal
        }

        var schema: Schema { compiled.schema }

        func derived(_ c: CollectionSchema, _ suffix: String) -> String {
            SchemaFactory.derivedName(c, suffix, in: schema)
        }

        func reachable(_ action: AccessAction, _ c: CollectionSchema) -> Bool {
            if case .denied = compiled.access(action, on: c.name, for: principal) { return false }
            return true
        }

        /// Optional security when a `public` grant serves the action (anonymous callers get through).
        func security(_ action: AccessAction, _ c: CollectionSchema) -> [OpenAPI.SecurityRequirement] {
            c.access[action].contains { $0.who == .public } ? Security.optional : Security.required
        }

        mutating func addSchema(_ name: String, _ s: JSONSchema) {
            guard let key = OpenAPI.ComponentKey(rawValue: name) else { return }
            schemas[key] = s
        }

        mutating func build() {
            addSchema(Names.problem, SchemaFactory.problem)
            var anyWrite = principal.isAdmin
            let reachableActions = schema.collections.map { c in (c, AccessAction.allCases.filter { reachable($0, c) })
            }
            // Collections whose record schema is in the document: only those may be `$ref`erenced.
            let documented = Set(reachableActions.filter { !$0.1.isEmpty }.map(\.0.name))
            for (c, actions) in reachableActions where !actions.isEmpty {
                if actions.contains(where: { [.create, .update, .delete].contains($0) }) { anyWrite = true }
                addCollection(c, actions: Set(actions), documented: documented)
            }
            if anyWrite { addBatch() }
            // The auth endpoints are public API: every caller sees them (API.md §13).
            addAuth()
            addMeta()
            if principal.isAdmin { addAdmin() }
        }

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
                    parameters: [.parameter(Parameters.ifMatch)],
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
                    parameters: [.parameter(Parameters.ifMatch)],
                    responses: Responses.merge(
                        [(204, Responses.ok("Deleted"))],
                        errors: [401, 403, 404, 409, 412, 429]
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

        // MARK: Auth

        /// `/v1/auth/*` and `/.well-known/jwks.json` (API.md §8): public API, the same for every caller.
        mutating func addAuth() {
            let users =
                schema.collection(BuiltinCollections.usersName)
                ?? CollectionSchema(name: BuiltinCollections.usersName, fields: BuiltinCollections.userFields)
            let factory = SchemaFactory(schema: schema, documented: [])
            for (name, s) in factory.authSchemas(users) { addSchema(name, s) }
            tags.append(
                OpenAPI.Tag(
                    name: "auth",
                    description: """
                        Accounts and sign-in: registration, access and refresh tokens, sessions, email \
                        verification, password reset, email change and two-factor sign-in (TOTP). Answers carry \
                        `Cache-Control: no-store`. These routes have a stricter rate limit per client address.
                        """
                )
            )
            let tag = ["auth"]
            /// Anonymous callers are served; a credential, when sent, must still be valid.
            let open = Security.optional
            let user = Security.user
            // Statuses every JSON body may produce.
            let body = [400, 413, 415, 422, 429]
            let signedIn = [401, 403, 429]
            let notes: [Int: String] = [
                400: "`bad-request`: the body is not valid JSON, or not a JSON object",
                401: "`unauthenticated`: an invalid, expired or revoked credential was sent (none is needed here)",
                429:
                    "`rate-limited`: over the `/v1/auth/*` quota for this client address; retry after `Retry-After` seconds",
            ]
            let userNotes = notes.merging([
                401: "`unauthenticated`: no access token, or an invalid, expired or revoked one",
                403: "`forbidden`: the credential is an API key; this needs a signed-in user's access token",
            ]) { $1 }
            let tokenNote =
                "`validation-failed`: `token` is missing, or invalid, expired or already used (`/token` `invalid`)"
            let noStore: OpenAPI.Header.Map = ["Cache-Control": Headers.noStore]
            let accepted = Responses.ok(
                "Accepted: the mail is on its way (when there is one to send)",
                Media.body(Names.accepted),
                headers: noStore
            )
            let done = Responses.ok("Done", headers: noStore)
            let tokens = Responses.ok(
                "Signed in: the token response",
                Media.body(Names.tokenResponse),
                headers: noStore
            )
            func request(_ properties: OrderedDictionary<String, JSONSchema>) -> OpenAPI.Request {
                Media.request(Media.json(.object(properties: properties)))
            }
            func operation(
                _ id: String,
                _ summary: String,
                _ description: String,
                body: OpenAPI.Request? = nil,
                _ success: [(OpenAPI.Response.StatusCode, Responses.R)],
                errors: [Int],
                notes: [Int: String],
                security: [OpenAPI.SecurityRequirement]
            ) -> OpenAPI.Operation {
                OpenAPI.Operation(
                    tags: tag,
                    summary: summary,
                    description: description,
                    operationId: id,
                    requestBody: body,
                    responses: Responses.merge(success, errors: Array(Set(errors)), notes: notes),
                    security: security
                )
            }
            let refreshToken: OrderedDictionary<String, JSONSchema> = [
                "refresh_token": .string(description: "The `refresh_token` of a token response", minLength: 1)
            ]
            let mailToken: OrderedDictionary<String, JSONSchema> = [
                "token": .string(description: "The token from the mail (single use)", minLength: 1)
            ]
            let otp: OrderedDictionary<String, JSONSchema> = [
                "otp": .string(description: "The current 6-digit code of the authenticator app")
            ]

            paths["/v1/auth/register"] = .pathItem(
                OpenAPI.PathItem(
                    post: operation(
                        "auth_register",
                        "Create an account",
                        """
                        Creates a `users` record with a password. The body is the email, the password and the \
                        profile fields of `users`; `verified`, `roles` and `disabled` cannot be set here. \
                        The answer is the new user, never the password; sign in with `POST /v1/auth/login`.
                        """,
                        body: Media.request(Media.body(Names.register)),
                        [
                            (
                                201,
                                Responses.ok(
                                    "Created: the new user",
                                    Media.body(Names.user),
                                    headers: ["Location": Headers.location, "Cache-Control": Headers.noStore]
                                )
                            )
                        ],
                        errors: body + [401, 403, 409],
                        notes: notes.merging([
                            403: "`forbidden`: sign-up is closed on this server (`BASALT_REGISTRATION=closed`)",
                            409: "`conflict`: another account uses this email",
                            422: """
                            `validation-failed`: a missing or malformed email; a password that is too short or \
                            long, too common or the email itself; an invalid, unknown or managed profile field
                            """,
                        ]) { $1 },
                        security: open
                    )
                )
            )
            paths["/v1/auth/login"] = .pathItem(
                OpenAPI.PathItem(
                    post: operation(
                        "auth_login",
                        "Sign in",
                        """
                        Checks the email and password (and, with two-factor sign-in on, `otp`) and opens a \
                        session: the answer holds a short-lived access token and a refresh token. Attempts are \
                        throttled per email (whether or not the account exists) and per client address.
                        """,
                        body: Media.request(Media.body(Names.login)),
                        [(200, tokens)],
                        errors: body + [401],
                        notes: notes.merging([
                            401: """
                            `unauthenticated`: the email or password is wrong, or the account is disabled (one \
                            answer, in the same time, for all three), or an invalid credential was sent. \
                            `mfa-required` (also `401`): two-factor sign-in is on and `otp` is missing, wrong or \
                            already used.
                            """,
                            422: "`validation-failed`: `email` or `password` is missing",
                            429:
                                "`rate-limited`: too many attempts for this email or from this address; retry after `Retry-After` seconds",
                        ]) { $1 },
                        security: open
                    )
                )
            )
            paths["/v1/auth/refresh"] = .pathItem(
                OpenAPI.PathItem(
                    post: operation(
                        "auth_refresh",
                        "Refresh the access token",
                        """
                        Trades a refresh token for a new token response. Refresh tokens are single use: each \
                        refresh answers a new one, and presenting a used one revokes its whole session.
                        """,
                        body: request(refreshToken),
                        [(200, tokens)],
                        errors: body + [401],
                        notes: notes.merging([
                            401: """
                            `unauthenticated`: the refresh token is unknown, expired, revoked or already used, or \
                            the user is disabled; or an invalid credential was sent
                            """,
                            422: "`validation-failed`: `refresh_token` is missing",
                        ]) { $1 },
                        security: open
                    )
                )
            )
            paths["/v1/auth/logout"] = .pathItem(
                OpenAPI.PathItem(
                    post: operation(
                        "auth_logout",
                        "Sign out",
                        """
                        Revokes the session of the refresh token (its whole family). No access token is needed; \
                        an unknown token is not an error. Access tokens already issued stay valid until they expire.
                        """,
                        body: request(refreshToken),
                        [(204, done)],
                        errors: body + [401],
                        notes: notes.merging([422: "`validation-failed`: `refresh_token` is missing"]) { $1 },
                        security: open
                    )
                )
            )
            paths["/v1/auth/me"] = .pathItem(
                OpenAPI.PathItem(
                    get: operation(
                        "auth_me",
                        "The signed-in user",
                        "The caller's `users` record.",
                        [(200, Responses.ok("The caller", Media.body(Names.user), headers: noStore))],
                        errors: signedIn,
                        notes: userNotes,
                        security: user
                    )
                )
            )
            paths["/v1/auth/sessions"] = .pathItem(
                OpenAPI.PathItem(
                    get: operation(
                        "auth_list_sessions",
                        "The caller's sessions",
                        "The caller's live sessions (refresh-token families), most recently used first; at most 200.",
                        [
                            (
                                200,
                                Responses.ok(
                                    "The sessions",
                                    Media.json(
                                        .object(properties: ["items": .array(items: SchemaFactory.ref(Names.session))])
                                    ),
                                    headers: noStore
                                )
                            )
                        ],
                        errors: signedIn,
                        notes: userNotes,
                        security: user
                    )
                )
            )
            paths["/v1/auth/sessions/{id}"] = .pathItem(
                OpenAPI.PathItem(
                    parameters: [
                        .parameter(
                            .path(name: "id", schema: .string(format: .uuid), description: "A session id of the caller")
                        )
                    ],
                    delete: operation(
                        "auth_revoke_session",
                        "Revoke a session",
                        "Signs that session out: its refresh token stops working.",
                        [(204, done)],
                        errors: signedIn + [404],
                        notes: userNotes.merging([404: "`not-found`: the caller has no live session with this id"]) {
                            $1
                        },
                        security: user
                    )
                )
            )
            paths["/v1/auth/verify/request"] = .pathItem(
                OpenAPI.PathItem(
                    post: operation(
                        "auth_request_verification",
                        "Send a verification mail",
                        """
                        Mails the caller a single-use verification token, valid 24 hours. Nothing is sent when the \
                        address is already verified. No request body.
                        """,
                        [(202, accepted)],
                        errors: signedIn,
                        notes: userNotes,
                        security: user
                    )
                )
            )
            paths["/v1/auth/verify"] = .pathItem(
                OpenAPI.PathItem(
                    post: operation(
                        "auth_verify",
                        "Verify the email address",
                        "Marks the token's user as verified. No access token is needed: the token is the proof.",
                        body: request(mailToken),
                        [(204, done)],
                        errors: body + [401],
                        notes: notes.merging([422: tokenNote]) { $1 },
                        security: open
                    )
                )
            )
            paths["/v1/auth/password/forgot"] = .pathItem(
                OpenAPI.PathItem(
                    post: operation(
                        "auth_forgot_password",
                        "Request a password reset",
                        """
                        Mails a single-use reset token, valid 1 hour, when the address has an enabled account. The \
                        answer is `202` either way, so it does not tell whether an account exists.
                        """,
                        body: request(["email": .string(format: .email, minLength: 1)]),
                        [(202, accepted)],
                        errors: body + [401],
                        notes: notes.merging([
                            422: "`validation-failed`: `email` is missing",
                            429:
                                "`rate-limited`: too many requests for this email or from this address; retry after `Retry-After` seconds",
                        ]) { $1 },
                        security: open
                    )
                )
            )
            paths["/v1/auth/password/reset"] = .pathItem(
                OpenAPI.PathItem(
                    post: operation(
                        "auth_reset_password",
                        "Set a new password",
                        "Sets the password with the token from the reset mail and signs the user out everywhere.",
                        body: request(["token": mailToken["token"]!, "password": SchemaFactory.password]),
                        [(204, done)],
                        errors: body + [401],
                        notes: notes.merging([
                            422: """
                            `validation-failed`: `token` is missing, invalid, expired or already used, or the \
                            password is too short, too long or too common
                            """
                        ]) { $1 },
                        security: open
                    )
                )
            )
            paths["/v1/auth/email/change"] = .pathItem(
                OpenAPI.PathItem(
                    post: operation(
                        "auth_change_email",
                        "Request an email change",
                        """
                        Needs the current password (checked and throttled like sign-in). Mails a single-use \
                        confirmation token to the new address; the address changes (and counts as verified) when the \
                        token is posted to `/v1/auth/email/confirm`. Whether the address is taken is not told here \
                        (always `202`); confirming a taken address is the `409`.
                        """,
                        body: request([
                            "new_email": .string(
                                format: .email,
                                maxLength: 254,
                                pattern: SchemaFactory.defaultPattern(.email)
                            ),
                            "password": .string(format: .password, description: "The current password"),
                        ]),
                        [(202, accepted)],
                        errors: body + signedIn,
                        notes: userNotes.merging([
                            401: "`unauthenticated`: no access token, an invalid, expired or revoked one, or a wrong password",
                            422:
                                "`validation-failed`: `new_email` or `password` is missing, or `new_email` is not an email address",
                        ]) { $1 },
                        security: user
                    )
                )
            )
            paths["/v1/auth/email/confirm"] = .pathItem(
                OpenAPI.PathItem(
                    post: operation(
                        "auth_confirm_email",
                        "Confirm an email change",
                        """
                        Sets the new address of the token's user. No access token is needed: the token is the proof. \
                        Every other link mailed to the user before (reset, verification) stops working.
                        """,
                        body: request(mailToken),
                        [(204, done)],
                        errors: body + [401, 409],
                        notes: notes.merging([
                            409: "`conflict`: another account uses this email; the token stays usable",
                            422: tokenNote,
                        ]) { $1 },
                        security: open
                    )
                )
            )
            let enrolment = JSONSchema.object(properties: [
                "secret": .string(description: "The shared key in base32, for apps that cannot read the URI"),
                "otpauth_uri": .string(
                    format: .uri,
                    description: "An `otpauth://totp/…` URI, usually shown as a QR code"
                ),
            ])
            paths["/v1/auth/mfa/totp"] = .pathItem(
                OpenAPI.PathItem(
                    post: operation(
                        "auth_begin_totp",
                        "Start two-factor enrolment",
                        """
                        Creates a new TOTP key for the caller. It is not active until confirmed with a code at \
                        `POST /v1/auth/mfa/totp/confirm`. Needs the current password (checked and throttled like \
                        sign-in): an access token alone cannot add a second factor.
                        """,
                        body: request(["password": .string(format: .password, description: "The current password")]),
                        [(200, Responses.ok("The new key", Media.json(enrolment), headers: noStore))],
                        errors: body + signedIn + [409],
                        notes: userNotes.merging([
                            401: "`unauthenticated`: no access token, an invalid, expired or revoked one, or a wrong password",
                            409: "`conflict`: two-factor sign-in is already on; turn it off first",
                            422: "`validation-failed`: `password` is missing",
                        ]) {
                            $1
                        },
                        security: user
                    ),
                    delete: operation(
                        "auth_disable_totp",
                        "Turn two-factor sign-in off",
                        "Needs a current code or an unused recovery code; removes the key and the recovery codes.",
                        body: request([
                            "otp": .string(
                                description: "A current 6-digit code or an unused recovery code (`xxxxx-xxxxx`)"
                            )
                        ]),
                        [(204, done)],
                        errors: body + signedIn + [404],
                        notes: userNotes.merging([
                            404: "`not-found`: two-factor sign-in is not on",
                            422: "`validation-failed`: `otp` is missing, wrong or already used",
                        ]) { $1 },
                        security: user
                    )
                )
            )
            paths["/v1/auth/mfa/totp/confirm"] = .pathItem(
                OpenAPI.PathItem(
                    post: operation(
                        "auth_confirm_totp",
                        "Confirm two-factor enrolment",
                        """
                        Turns two-factor sign-in on with a current code from the app. The answer holds 10 recovery \
                        codes, shown only here; each can stand in for `otp` once.
                        """,
                        body: request(otp),
                        [
                            (
                                200,
                                Responses.ok(
                                    "Two-factor sign-in is on",
                                    Media.json(
                                        .object(properties: [
                                            "recovery_codes": .array(
                                                description: "Single-use codes (`xxxxx-xxxxx`)",
                                                minItems: 10,
                                                maxItems: 10,
                                                items: .string
                                            )
                                        ])
                                    ),
                                    headers: noStore
                                )
                            )
                        ],
                        errors: body + signedIn + [409],
                        notes: userNotes.merging([
                            409: "`conflict`: no enrolment was started, or two-factor sign-in is already on",
                            422: "`validation-failed`: `otp` is missing or does not match (check the device's clock)",
                        ]) { $1 },
                        security: user
                    )
                )
            )
            paths["/.well-known/jwks.json"] = .pathItem(
                OpenAPI.PathItem(
                    get: operation(
                        "jwks",
                        "Token signing keys",
                        """
                        The public keys (JWK Set, RFC 7517) that verify access tokens: pick the key by the token's \
                        `kid`. After a key rotation the old key stays listed until its tokens have expired. \
                        Credentials are ignored.
                        """,
                        [
                            (
                                200,
                                Responses.ok(
                                    "The key set",
                                    Media.body(Names.jwks),
                                    headers: [
                                        "Cache-Control": .header(
                                            OpenAPI.Header(schema: .string, description: "`public, max-age=300`")
                                        )
                                    ]
                                )
                            )
                        ],
                        errors: [429],
                        notes: [:],
                        security: Security.none
                    )
                )
            )
        }

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
            let collectionPatch = OpenAPI.Content(
                schema: .object(
                    description:
                        "JSON Merge Patch of the collection object; `\"fields\": {\"old\": null}` drops a field.",
                    properties: [
                        "fields": .object(
                            required: false,
                            additionalProperties: .b(
                                .any(of: [
                                    SchemaFactory.ref(Names.fieldDefinition), .null(),
                                ])
                            )
                        ),
                        "indexes": .array(required: false, items: .fragment),
                        "access": .object(required: false),
                    ]
                )
            )
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
            addAdminIdentity(tag: tag)
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

    // MARK: - Parameters, headers, responses

    enum Parameters {
        /// `limit` of a keyset-paginated list (1–200).
        static func limit(default n: Int) -> OpenAPI.Parameter.Array.Element {
            .parameter(
                .query(
                    name: "limit",
                    schema: .integer(maximum: (200, exclusive: false), minimum: (1, exclusive: false), defaultValue: .init(integerLiteral: n)),
                    description: "Page size, 1–200 (default \(n))."
                )
            )
        }

        static let cursor: OpenAPI.Parameter.Array.Element = .parameter(
            .query(name: "cursor", schema: .string, description: "The `next_cursor` of the previous page.")
        )

        static let recordID = OpenAPI.Parameter.path(
            name: "id",
            schema: .string(format: .uuid),
            description: "The record id (a UUID; any case, answered in lowercase)"
        )
        static let ifMatch = OpenAPI.Parameter.header(
            name: "If-Match",
            schema: .string,
            description:
                "An ETag from a previous response (`\"3\"`); the write is refused with `412` when the record has changed."
        )
        static let ifNoneMatch = OpenAPI.Parameter.header(
            name: "If-None-Match",
            schema: .string,
            description: "An ETag from a previous response; `304` when it still matches."
        )
        static let idempotencyKey = OpenAPI.Parameter.header(
            name: "Idempotency-Key",
            schema: .string(minLength: 1, maxLength: 255, pattern: "^[\\x20-\\x7E]+$"),
            description: """
                1–255 printable ASCII characters. A retry with the same key and body within 24 h gets the first \
                response again (with `Idempotent-Replayed: true`); the same key with another body is `422`; a retry \
                while the first is running is `409`.
                """
        )

        /// `^(item(,item)*)?$` over an alternation: the exact language the server accepts, so a
        /// client (or a fuzzer) can tell a valid value from an invalid one without trying it.
        static func listPattern(_ items: [String]) -> String {
            guard !items.isEmpty else { return "^$" }
            let alt = "(" + items.joined(separator: "|") + ")"
            return "^(\(alt)(,\(alt))*)?$"
        }

        static func list(_ c: CollectionSchema, schema: Schema? = nil) -> OpenAPI.Parameter.Array {
            let names =
                ([SystemField.id.rawValue] + c.fields.map(\.name) + SystemField.allCases.dropFirst().map(\.rawValue))
            let relations = c.fields.filter { $0.type == .relation }.map(\.name)
            let sortable = [SystemField.id.rawValue] + c.fields.filter { $0.type != .json }.map(\.name)
                + SystemField.allCases.dropFirst().map(\.rawValue)
            var paths = relations
            for f in c.fields where f.type == .relation {
                guard let t = f.target, let tc = schema?.collection(t) else { continue }
                paths += tc.fields.filter { $0.type == .relation }.map { f.name + "\\." + $0.name }
            }
            return [
                .parameter(
                    .query(
                        name: "filter",
                        schema: .string(maxLength: 4096),
                        description: """
                            A filter expression, e.g. `status = 'published' && views > 10`. Operators: `= != < <= > >= ~ !~`, \
                            `in (…)`, `is [not] null`, `&&`, `||`, `!`, parentheses; one hop through a relation \
                            (`author.name`). Fields: \(names.map { "`\($0)`" }.joined(separator: ", ")).
                            """
                    )
                ),
                .parameter(
                    .query(
                        name: "sort",
                        schema: .string(pattern: listPattern(sortable.map { "-?" + $0 })),
                        description:
                            "Comma-separated fields, `-` for descending (default `-created_at`); `id` breaks ties."
                    )
                ),
                Parameters.limit(default: 20),
                Parameters.cursor,
                .parameter(
                    .query(
                        name: "fields",
                        schema: .string(pattern: listPattern(names)),
                        description: "Comma-separated field names to return (`id` is always returned)."
                    )
                ),
                .parameter(
                    .query(
                        name: "expand",
                        schema: .string(pattern: listPattern(paths)),
                        description: relations.isEmpty
                            ? "Comma-separated relation paths to inline under `expand` (this collection has no relations)."
                            : "Comma-separated relation paths to inline under `expand`, at most 2 levels: "
                                + relations.map { "`\($0)`" }.joined(separator: ", ") + "."
                    )
                ),
                .parameter(
                    .query(
                        name: "total",
                        schema: .boolean(defaultValue: false),
                        description: "Add `total`, the number of matching records the caller may see."
                    )
                ),
            ]
        }
    }

    enum Headers {
        typealias H = Either<OpenAPI.Reference<OpenAPI.Header>, OpenAPI.Header>
        static let strongETag: H = .header(
            OpenAPI.Header(schema: .string, description: "The record version, quoted: `\"3\"`")
        )
        static let weakETag: H = .header(
            OpenAPI.Header(schema: .string, description: "A weak validator of the body: `W/\"…\"`")
        )
        static let link: H = .header(
            OpenAPI.Header(
                schema: .string,
                description: "`<…&cursor=…>; rel=\"next\"` when there is a next page (RFC 8288)"
            )
        )
        static let location: H = .header(
            OpenAPI.Header(schema: .string(format: .uriReference), description: "The new resource")
        )
        static let replayed: H = .header(
            OpenAPI.Header(
                schema: .string(allowedValues: "true"),
                description: "Present on a replayed idempotent response"
            )
        )
        static let cacheControl: H = .header(
            OpenAPI.Header(
                schema: .string,
                description: "`no-cache`, plus `private` unless the data is unconditionally public"
            )
        )
        static let vary: H = .header(OpenAPI.Header(schema: .string, description: "`Authorization, Accept`"))
        static let retryAfter: H = .header(
            OpenAPI.Header(schema: .integer(minimum: (0, exclusive: false)), description: "Seconds to wait")
        )
        static let noStore: H = .header(
            OpenAPI.Header(
                schema: .string(allowedValues: "no-store"),
                description: "`no-store`: tokens and account data are never cached (RFC 6749 §5.1)"
            )
        )
        static let wwwAuthenticate: H = .header(
            OpenAPI.Header(schema: .string, description: "`Bearer`, with `error=\"invalid_token\"` when one was sent")
        )
    }

    enum Responses {
        typealias R = Either<OpenAPI.Reference<OpenAPI.Response>, OpenAPI.Response>

        /// The HEAD twin of a GET: the same parameters, statuses and headers, no bodies. Its
        /// operationId is `head_` + the GET's (`head_list_posts`, `head_get_posts`): no collection
        /// name can make two ids equal, as no id prefix is a prefix of another.
        static func head(_ get: OpenAPI.Operation) -> OpenAPI.Operation {
            var op = get
            op.operationId = get.operationId.map { "head_" + $0 }
            op.summary = get.summary.map { "\($0) (headers only)" }
            op.description = "As GET, without a body: the status and headers only."
            var map: OpenAPI.Response.Map = [:]
            for (status, r) in get.responses {
                guard case .b(var response) = r else {
                    map[status] = r
                    continue
                }
                response.content = [:]
                map[status] = .response(response)
            }
            op.responses = map
            return op
        }

        static func ok(
            _ description: String,
            _ content: OpenAPI.Content.Map = [:],
            headers: OpenAPI.Header.Map? = nil
        ) -> R {
            .response(OpenAPI.Response(description: description, headers: headers, content: content))
        }

        static func notModified(_ etag: Headers.H) -> R {
            ok("Not modified: the `If-None-Match` ETag still matches", headers: ["ETag": etag])
        }

        /// Success responses, then the problem responses for `errors`, in status order. `notes`
        /// replaces the generic description of a status where an operation says more (`mfa-required`).
        static func merge(
            _ success: [(OpenAPI.Response.StatusCode, R)],
            errors: [Int],
            notes: [Int: String] = [:]
        ) -> OpenAPI.Response.Map {
            var map: OpenAPI.Response.Map = [:]
            for (status, r) in success { map[status] = r }
            for status in errors.sorted() {
                map[OpenAPI.Response.StatusCode(integerLiteral: status)] = .response(
                    problem(status, description: notes[status])
                )
            }
            return map
        }

        /// An error response: RFC 9457 problem details.
        static func problem(_ status: Int, description: String? = nil) -> OpenAPI.Response {
            var headers: OpenAPI.Header.Map? = nil
            switch status {
            case 401: headers = ["WWW-Authenticate": Headers.wwwAuthenticate]
            case 429, 503: headers = ["Retry-After": Headers.retryAfter]
            default: break
            }
            return OpenAPI.Response(
                description: description ?? problemDescription(status),
                headers: headers,
                content: [Media.problem: .content(OpenAPI.Content(schemaReference: .component(named: Names.problem)))]
            )
        }

        static func problemDescription(_ status: Int) -> String {
            switch status {
            case 400:
                "`bad-request`: malformed JSON, a bad query parameter, a filter error (with `column`) or a bad cursor"
            case 401: "`unauthenticated`: credentials are missing where needed, or invalid, expired or revoked"
            case 403: "`forbidden`: the caller is known but no grant allows the action"
            case 404: "`not-found`: no such record, or one the caller may not view"
            case 406: "`not-acceptable`: `Accept` excludes JSON"
            case 409:
                "`conflict`: a unique value or id is taken, a `restrict` relation refers to the record, or the idempotency key is in flight"
            case 412: "`precondition-failed`: `If-Match` does not match the record's ETag"
            case 413: "`payload-too-large`: the body is over the limit (1 MiB by default)"
            case 415: "`unsupported-media-type`: the body is not JSON"
            case 422: "`validation-failed`: one entry in `errors` per invalid field"
            case 429: "`rate-limited`: too many requests; retry after `Retry-After` seconds"
            case 503: "`unavailable`: the database is unreachable or the server is shutting down"
            default: "An error"
            }
        }
    }

    // MARK: - Schemas

    /// JSON Schemas derived from collection definitions.
    struct SchemaFactory {
        let schema: Schema
        /// Collections with a record schema in this document.
        let documented: Set<String>
        /// Whether the managed fields of `users` (`email`, `verified`, `roles`, `disabled`) are
        /// read-only: for every caller but admins (API.md §9).
        var managedReadOnly = true

        enum Use { case record, create, replace, patch }

        /// A collection's fields as the document shows them. `users` never shows the names the
        /// auth flows reserve (`password`, …): the schema refuses them, and this keeps them out
        /// of the document even for a schema that skipped that check.
        func fields(_ c: CollectionSchema) -> [FieldSchema] {
            guard c.name == BuiltinCollections.usersName else { return c.fields }
            return c.fields.filter { !BuiltinCollections.reservedUserFields.contains($0.name) }
        }

        /// Whether `f` of `c` is a managed field of `users` that this caller may not write.
        func isManaged(_ f: FieldSchema, _ c: CollectionSchema) -> Bool {
            managedReadOnly && c.name == BuiltinCollections.usersName
                && BuiltinCollections.managedUserFields.contains(f.name)
        }

        /// `posts_create`, `posts_list`, …; with a `.` instead when a collection already has that name
        /// (collection names cannot contain dots, so the result never collides).
        static func derivedName(_ c: CollectionSchema, _ suffix: String, in schema: Schema) -> String {
            let name = c.name + "_" + suffix
            return schema.collection(name) == nil ? name : c.name + "." + suffix
        }

        func derived(_ c: CollectionSchema, _ suffix: String) -> String { Self.derivedName(c, suffix, in: schema) }

        static func ref(_ name: String, required: Bool = true) -> JSONSchema {
            .reference(.component(named: name), required: required)
        }

        // MARK: Records

        func systemProperties(_ use: Use) -> OrderedDictionary<String, JSONSchema> {
            let ro: JSONSchema.Permissions = .readOnly
            let required = use == .record
            let note = use == .record ? nil : "Read-only; may repeat the current value"
            return [
                "id": .string(
                    format: .uuid,
                    required: required,
                    permissions: ro,
                    description: note ?? "Lowercase UUID"
                ),
                "created_at": .string(
                    format: .dateTime,
                    required: required,
                    permissions: ro,
                    description: note ?? "RFC 3339, UTC, milliseconds"
                ),
                "updated_at": .string(
                    format: .dateTime,
                    required: required,
                    permissions: ro,
                    description: note ?? "RFC 3339, UTC, milliseconds"
                ),
                "version": .integer(
                    format: .int64,
                    required: required,
                    permissions: ro,
                    description: note ?? "1 on create, +1 on every write",
                    minimum: (1, exclusive: false)
                ),
            ]
        }

        /// A list item: the record, but `fields` may narrow it to any subset (with `id`).
        func listItem(_ c: CollectionSchema) -> JSONSchema {
            record(c, narrowable: true)
        }

        /// A record. `title` and `description` name it otherwise (the auth endpoints' `User`);
        /// `expandable: false` leaves out `expand` (answers that never inline relations).
        func record(
            _ c: CollectionSchema,
            narrowable: Bool = false,
            expandable: Bool = true,
            title: String? = nil,
            description: String? = nil
        ) -> JSONSchema {
            var props = OrderedDictionary<String, JSONSchema>()
            let system = systemProperties(.record)
            props["id"] = system["id"]
            for f in fields(c) {
                props[f.name] = field(f, required: true, nullable: !f.required, use: .record, managed: isManaged(f, c))
            }
            props["created_at"] = system["created_at"]
            props["updated_at"] = system["updated_at"]
            props["version"] = system["version"]
            let relations = fields(c).filter { $0.type == .relation }
            if expandable && !relations.isEmpty {
                var ex = OrderedDictionary<String, JSONSchema>()
                for f in relations {
                    if let t = f.target, documented.contains(t) {
                        ex[f.name] = Self.ref(t, required: false)
                    } else {
                        ex[f.name] = .object(required: false, description: "The expanded record")
                    }
                }
                props["expand"] = .object(
                    required: false,
                    permissions: .readOnly,
                    description: "Related records inlined by `?expand=`; a target the caller may not view is left out.",
                    properties: ex
                )
            }
            if narrowable {
                for (k, v) in props where k != "id" { props[k] = v.optionalSchemaObject() }
            }
            return .object(
                title: title ?? c.name,
                description: description
                    ?? "A `\(c.name)` record. Every field is present (null when it has no value) unless `fields` narrows the response.",
                properties: props
            )
        }

        func create(_ c: CollectionSchema) -> JSONSchema {
            var props = OrderedDictionary<String, JSONSchema>()
            props["id"] = .string(
                format: .uuid,
                required: false,
                description: "Optional client-chosen id; a duplicate is `409`"
            )
            for f in fields(c) {
                let managed = isManaged(f, c)
                props[f.name] = field(
                    f,
                    required: f.required && f.defaultValue == nil && !managed,
                    nullable: !f.required,
                    use: .create,
                    managed: managed
                )
            }
            return .object(
                title: derived(c, "create"),
                description: "The body that creates a `\(c.name)` record.",
                properties: props,
                additionalProperties: .a(false)
            )
        }

        func replace(_ c: CollectionSchema) -> JSONSchema {
            var props = systemProperties(.replace)
            for f in fields(c) {
                let managed = isManaged(f, c)
                props[f.name] = field(
                    f,
                    required: f.required && f.defaultValue == nil && !managed,
                    nullable: !f.required,
                    use: .replace,
                    managed: managed
                )
            }
            return .object(
                title: derived(c, "replace"),
                description:
                    "Every writable field of a `\(c.name)` record; absent optional fields become null or their default.",
                properties: props,
                additionalProperties: .a(false)
            )
        }

        func patch(_ c: CollectionSchema) -> JSONSchema {
            var props = systemProperties(.patch)
            for f in fields(c) {
                props[f.name] = field(f, required: false, nullable: !f.required, use: .patch, managed: isManaged(f, c))
            }
            return .object(
                title: derived(c, "patch"),
                description: "A JSON Merge Patch of a `\(c.name)` record: members present are set, `null` clears.",
                properties: props,
                additionalProperties: .a(false)
            )
        }

        func list(_ c: CollectionSchema) -> JSONSchema {
            .object(
                title: derived(c, "list"),
                properties: [
                    "items": .array(items: listItem(c)),
                    "next_cursor": .string(
                        nullable: true,
                        description: "Pass as `cursor` for the next page; null on the last page"
                    ),
                    "total": .integer(
                        format: .int64,
                        required: false,
                        description: "Matching records the caller may see; only with `total=true`",
                        minimum: (0, exclusive: false)
                    ),
                ]
            )
        }

        /// One field's schema. `required` puts it in the object's `required` list; `nullable` adds `null`;
        /// `managed` makes it read-only, as the system fields are.
        func field(_ f: FieldSchema, required: Bool, nullable: Bool, use: Use, managed: Bool = false) -> JSONSchema {
            var notes: [String] = []
            let permissions: JSONSchema.Permissions? = managed ? .readOnly : nil
            if managed {
                switch use {
                case .record: notes.append("Managed by the auth flows and admins; read-only to users.")
                case .create: notes.append("Managed by the auth flows and admins: sending it is `422` `read_only`.")
                case .replace, .patch:
                    notes.append("Managed by the auth flows and admins: read-only; may repeat the current value.")
                }
            }
            if f.unique { notes.append("Unique.") }
            let defaultValue = (use == .create || use == .replace) ? f.defaultValue.map(Self.anyCodable) : nil
            switch f.type {
            case .text, .email, .url:
                let format: JSONTypeFormat.StringFormat = f.type == .email ? .email : f.type == .url ? .uri : .generic
                if f.min != nil || f.max != nil { notes.append("Lengths count Unicode code points.") }
                if let p = f.pattern { notes.append("The whole value must match `\(p)`.") }
                if f.type == .email { notes.append("An email address.") }
                if f.type == .url { notes.append("An absolute URL.") }
                return .string(
                    format: format,
                    required: required,
                    nullable: nullable,
                    permissions: permissions,
                    description: Self.join(notes),
                    minLength: f.min.flatMap { Self.bound($0, up: true) }.map { Swift.max(0, $0) },
                    maxLength: f.max.flatMap { Self.bound($0, up: false) }.map { Swift.max(0, $0) },
                    // Text never holds U+0000 (PostgreSQL cannot store it; refused on every backend).
                    pattern: f.pattern.map { "^(?:\($0))$" } ?? Self.defaultPattern(f.type),
                    defaultValue: defaultValue
                )
            case .integer:
                notes.append("A 64-bit signed integer.")
                return .integer(
                    format: .int64,
                    required: required,
                    nullable: nullable,
                    permissions: permissions,
                    description: Self.join(notes),
                    maximum: f.max.flatMap { Self.bound($0, up: false) }.map { ($0, exclusive: false) },
                    minimum: f.min.flatMap { Self.bound($0, up: true) }.map { ($0, exclusive: false) },
                    defaultValue: defaultValue
                )
            case .number:
                return .number(
                    required: required,
                    nullable: nullable,
                    permissions: permissions,
                    description: Self.join(notes),
                    maximum: f.max.map { ($0, exclusive: false) },
                    minimum: f.min.map { ($0, exclusive: false) },
                    defaultValue: defaultValue
                )
            case .boolean:
                return .boolean(
                    required: required,
                    nullable: nullable,
                    permissions: permissions,
                    description: Self.join(notes),
                    defaultValue: defaultValue
                )
            case .datetime:
                notes.append("RFC 3339; answered in UTC with milliseconds.")
                return .string(
                    format: .dateTime,
                    required: required,
                    nullable: nullable,
                    permissions: permissions,
                    description: Self.join(notes),
                    defaultValue: defaultValue
                )
            case .select:
                // With `type: [string, null]`, `enum` must list null too or null would be refused.
                let values = f.values.map { AnyCodable($0) } + (nullable ? [AnyCodable(nil as String?)] : [])
                notes.append("One of \(f.values.map { "`\($0)`" }.joined(separator: ", ")).")
                return .string(
                    required: required,
                    nullable: nullable,
                    permissions: permissions,
                    description: Self.join(notes),
                    allowedValues: values,
                    defaultValue: defaultValue
                )
            case .json:
                notes.append("Any JSON value, up to 1 MiB, without U+0000 in its strings or member names.")
                if use == .patch { notes.append("Objects merge recursively (RFC 7396).") }
                return .fragment(
                    required: required,
                    permissions: permissions,
                    description: Self.join(notes),
                    defaultValue: defaultValue
                )
            case .relation:
                let target = f.target ?? "?"
                notes.insert("The id of a `\(target)` record (relation; on delete: \(f.onDelete.rawValue)).", at: 0)
                if use != .record { notes.append("A missing target is `422` `not_found`.") }
                return .string(
                    format: .uuid,
                    required: required,
                    nullable: nullable,
                    permissions: permissions,
                    description: Self.join(notes)
                )
            }
        }

        /// The syntax the server checks, as a pattern (JSON Schema's `format` alone is looser: it
        /// accepts `a@b` and `x:`). No U+0000 anywhere: PostgreSQL cannot store it.
        static func defaultPattern(_ type: FieldType) -> String {
            // FieldValidator.isEmail, exactly: dot-atom local part, LDH host labels, a last label
            // that starts with a letter.
            let atom = #"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"#
            let label = #"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"#
            let tld = #"[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"#
            switch type {
            case .email: return "^" + atom + #"(\."# + atom + ")*@(" + label + #"\.)+"# + tld + "$"
            case .url: return #"^[A-Za-z][A-Za-z0-9+.\-]*://[^/?#\s\u0000][^\s\u0000]*$"#
            default: return #"^[^\u0000]*$"#
            }
        }

        static func join(_ notes: [String]) -> String? { notes.isEmpty ? nil : notes.joined(separator: " ") }

        /// An integral bound for `minLength`/`maxLength`/integer limits: a fractional min rounds up, a max down.
        static func bound(_ d: Double, up: Bool) -> Int? {
            let r = up ? d.rounded(.up) : d.rounded(.down)
            guard r.isFinite, r >= -9.2e18, r <= 9.2e18 else { return nil }
            return Int(r)
        }

        static func anyCodable(_ v: JSONValue) -> AnyCodable { AnyCodable(EncodableJSON(value: v)) }

        // MARK: Fixed schemas

        static let problem: JSONSchema = .object(
            title: "Problem",
            description: "RFC 9457 problem details. `type` is `/problems/{code}`, an HTML page explaining the error.",
            properties: [
                "type": .string(
                    format: .uriReference,
                    description: "`/problems/{code}`, e.g. `/problems/validation-failed`"
                ),
                "title": .string(description: "A short summary of the problem type"),
                "status": .integer(maximum: (599, exclusive: false), minimum: (400, exclusive: false)),
                "detail": .string(required: false, description: "What went wrong, for a person"),
                "instance": .string(required: false, description: "The request path"),
                "request_id": .string(required: false, description: "The request's `X-Request-Id`"),
                "errors": .array(
                    required: false,
                    description: "One entry per offending field",
                    items: .object(
                        properties: [
                            "field": .string(description: "A JSON Pointer into the request body, e.g. `/title`"),
                            "code": .string(allowedValues: Names.fieldErrorCodes.map { AnyCodable($0) }),
                            "message": .string,
                        ])
                ),
                "column": .integer(
                    required: false,
                    description: "Filter errors: the 1-based column (in code points) of the error",
                    minimum: (1, exclusive: false)
                ),
                "operation_index": .integer(
                    required: false,
                    description: "Batches: the 0-based index of the failing operation",
                    minimum: (0, exclusive: false)
                ),
                "plan": .object(required: false, description: "Refused destructive schema changes: the plan"),
            ]
        )

        static let batchRequest: JSONSchema = .object(
            title: Names.batchRequest,
            properties: [
                "operations": .array(
                    minItems: 1,
                    maxItems: 100,
                    items: .object(
                        properties: [
                            "method": .string(allowedValues: "POST", "PUT", "PATCH", "DELETE"),
                            "path": .string(
                                description: "`/v1/{collection}` for POST, `/v1/{collection}/{id}` otherwise"
                            ),
                            "body": .object(required: false, description: "The request body of POST, PUT and PATCH"),
                            "if_match": .string(required: false, description: "As the `If-Match` header, e.g. `\"3\"`"),
                        ],
                        additionalProperties: .a(false)
                    )
                )
            ],
            additionalProperties: .a(false)
        )

        static let batchResponse: JSONSchema = .object(
            title: Names.batchResponse,
            properties: [
                "results": .array(
                    items: .object(properties: [
                        "status": .integer(description: "The status the operation would have had alone"),
                        "body": .fragment(required: false, description: "Its response body (absent for 204)"),
                    ])
                )
            ]
        )

        // MARK: Identity

        /// A new password, as the password policy checks it (lengths in code points).
        static var password: JSONSchema {
            let policy = PasswordPolicy()
            return .string(
                format: .password,
                description: "Not a common password and not the email address.",
                minLength: policy.minimumLength,
                maxLength: policy.maximumLength
            )
        }

        /// The schemas of the auth endpoints, from the `users` collection of the schema.
        func authSchemas(_ users: CollectionSchema) -> [(String, JSONSchema)] {
            var own = self
            own.managedReadOnly = true
            let user = own.record(
                users,
                expandable: false,
                title: Names.user,
                description: """
                    A user: the `users` record as the auth endpoints answer it, never with a password. \
                    `email`, `verified`, `roles` and `disabled` change only through the auth flows and admins.
                    """
            )
            var register = OrderedDictionary<String, JSONSchema>()
            let email =
                users.field("email")
                ?? FieldSchema(name: "email", type: .email, required: true, unique: true, max: 254)
            register["email"] = field(email, required: true, nullable: false, use: .create)
            register["password"] = Self.password
            for f in fields(users) where !BuiltinCollections.managedUserFields.contains(f.name) {
                register[f.name] = field(
                    f,
                    required: f.required && f.defaultValue == nil,
                    nullable: !f.required,
                    use: .create
                )
            }
            return [
                (Names.user, user),
                (
                    Names.register,
                    .object(
                        title: Names.register,
                        description: "The email, the password and the profile fields of `users`.",
                        properties: register,
                        additionalProperties: .a(false)
                    )
                ),
                (
                    Names.login,
                    .object(
                        title: Names.login,
                        properties: [
                            "email": .string(format: .email, description: "Compared trimmed and lower-cased"),
                            "password": .string(format: .password),
                            "otp": .string(
                                required: false,
                                description: """
                                    With two-factor sign-in on: the current 6-digit code of the authenticator app, \
                                    or an unused recovery code (`xxxxx-xxxxx`)
                                    """
                            ),
                        ]
                    )
                ),
                (
                    Names.tokenResponse,
                    .object(
                        title: Names.tokenResponse,
                        description: "The answer to a sign-in or a refresh, sent with `Cache-Control: no-store`.",
                        properties: [
                            "access_token": .string(
                                description: """
                                    A JWT (`alg: EdDSA`, `typ: JWT`, `kid`) with `iss`, `sub` (the user id), `aud`, \
                                    `exp`, `iat`, `nbf`, `jti`, `roles` (inherited ones included) and `scope`; send \
                                    it as `Authorization: Bearer …`
                                    """
                            ),
                            "token_type": .string(allowedValues: "Bearer"),
                            "expires_in": .integer(
                                description: "Seconds until the access token expires",
                                minimum: (1, exclusive: false)
                            ),
                            "refresh_token": .string(
                                description: """
                                    `bsr_…`, for `POST /v1/auth/refresh`. Single use: each refresh answers a new one, \
                                    and presenting a used one revokes its whole session.
                                    """
                            ),
                            "user": Self.ref(Names.user),
                        ]
                    )
                ),
                (
                    Names.session,
                    .object(
                        title: Names.session,
                        description: "A session: the refresh-token family of one sign-in.",
                        properties: [
                            "id": .string(format: .uuid),
                            "created_at": .string(format: .dateTime),
                            "last_used_at": .string(format: .dateTime, description: "The sign-in or the last refresh"),
                            "expires_at": .string(format: .dateTime),
                            "user_agent": .string(nullable: true),
                            "client_address": .string(nullable: true),
                        ]
                    )
                ),
                (
                    Names.accepted,
                    .object(title: Names.accepted, properties: ["status": .string(allowedValues: "accepted")])
                ),
                (
                    Names.jwks,
                    .object(
                        title: Names.jwks,
                        description: "A JWK Set (RFC 7517) of Ed25519 public keys (RFC 8037), newest first.",
                        properties: [
                            "keys": .array(
                                items: .object(properties: [
                                    "kty": .string(allowedValues: "OKP"),
                                    "crv": .string(allowedValues: "Ed25519"),
                                    "use": .string(allowedValues: "sig"),
                                    "alg": .string(allowedValues: "EdDSA"),
                                    "kid": .string(description: "Matches the `kid` in a token's header"),
                                    "x": .string(description: "The public key, base64url without padding"),
                                ])
                            )
                        ]
                    )
                ),
            ]
        }

        /// A list of the schema's roles (users' and API keys' roles must be declared ones).
        func schemaRoleList(_ description: String) -> JSONSchema {
            let roles = schema.roles.map(\.name)
            return roles.isEmpty
                ? .array(required: false, description: "The schema declares no roles", maxItems: 0, items: .string)
                : .array(required: false, description: description, items: .string(allowedValues: roles.map { AnyCodable($0) }))
        }

        /// The admin API's identity schemas: the user patch (with the schema's roles) and the audit log.
        func adminIdentitySchemas() -> [(String, JSONSchema)] {
            let roleList = schemaRoleList("Replaces the user's roles; each must be a role of the schema")
            return [
                (
                    Names.apiKeyCreate,
                    .object(
                        title: Names.apiKeyCreate,
                        properties: [
                            "name": .string(minLength: 1, maxLength: 200),
                            "roles": schemaRoleList("The key's roles; each must be a role of the schema"),
                            "admin": .boolean(required: false, defaultValue: false),
                            "expires_at": .string(format: .dateTime, required: false, nullable: true),
                        ],
                        additionalProperties: .a(false)
                    )
                ),
                (
                    Names.adminUserPatch,
                    .object(
                        title: Names.adminUserPatch,
                        description:
                            "A JSON Merge Patch of a user's managed fields; any other member is `422` `read_only`.",
                        properties: [
                            "roles": roleList,
                            "disabled": .boolean(
                                required: false,
                                description: "`true` revokes every session of the user and refuses their access tokens"
                            ),
                            "verified": .boolean(required: false),
                        ],
                        additionalProperties: .a(false)
                    )
                ),
                (
                    Names.auditEntry,
                    .object(
                        title: Names.auditEntry,
                        description: "One audited action: an admin bypassing the grants, or identity administration.",
                        properties: [
                            "id": .string(format: .uuid),
                            "at": .string(format: .dateTime),
                            "actor": .string(description: "Who: `admin:<key id>`, `sub:<id>`, …"),
                            "action": .string(
                                description: "What, e.g. `schema.apply`, `api_key.create`, `user.revoke_sessions`"
                            ),
                            "collection": .string(nullable: true),
                            "record_id": .string(nullable: true),
                            "request_id": .string(nullable: true, description: "The request's `X-Request-Id`"),
                            "detail": .fragment(description: "Details of the action, or null"),
                        ]
                    )
                ),
            ]
        }

        static var adminSchemas: [(String, JSONSchema)] {
            let name = JSONSchema.string(pattern: "^[a-z][a-z0-9_]{0,62}$")
            let field = JSONSchema.object(
                title: Names.fieldDefinition,
                properties: [
                    "type": .string(allowedValues: FieldType.allCases.map { AnyCodable($0.rawValue) }),
                    "required": .boolean(required: false, defaultValue: false),
                    "unique": .boolean(required: false, defaultValue: false),
                    "min": .number(
                        required: false,
                        description: "text, email, url: length in code points; integer, number: value"
                    ),
                    "max": .number(required: false),
                    "pattern": .string(
                        required: false,
                        description: "text: a regular expression the whole value must match"
                    ),
                    "default": .fragment(required: false),
                    "values": .array(required: false, description: "select: the allowed values", items: .string),
                    "collection": .string(required: false, description: "relation: the target collection"),
                    "on_delete": .string(
                        required: false,
                        allowedValues: OnDelete.allCases.map { AnyCodable($0.rawValue) }
                    ),
                ],
                additionalProperties: .a(false)
            )
            let grant = JSONSchema.object(
                title: Names.grant,
                description:
                    "Who (`who` or `roles`) and optionally `where`, a filter rule that may use `@auth.*` and `@new.*`.",
                properties: [
                    "who": .string(required: false, allowedValues: "public", "authenticated"),
                    "roles": .array(required: false, items: .string),
                    "where": .string(required: false),
                ],
                additionalProperties: .a(false)
            )
            var access = OrderedDictionary<String, JSONSchema>()
            for a in AccessAction.allCases { access[a.rawValue] = .array(required: false, items: ref(Names.grant)) }
            let definitionProps: OrderedDictionary<String, JSONSchema> = [
                "fields": .object(required: false, additionalProperties: .b(ref(Names.fieldDefinition))),
                "indexes": .array(
                    required: false,
                    description: "`[a, b]` or `{fields: [a], unique: true}`",
                    items: .any(of: [
                        .array(items: .string),
                        .object(properties: ["fields": .array(items: .string), "unique": .boolean(required: false)]),
                    ])
                ),
                "access": .object(required: false, properties: access, additionalProperties: .a(false)),
            ]
            var objectProps: OrderedDictionary<String, JSONSchema> = ["name": name]
            for (k, v) in definitionProps { objectProps[k] = v }
            let step = JSONSchema.object(properties: [
                "action": .string, "collection": .string(required: false), "field": .string(required: false),
                "detail": .string, "destructive": .boolean,
            ])
            return [
                (
                    Names.schemaDocument,
                    .object(
                        title: Names.schemaDocument,
                        description: "The whole schema, as in the YAML projects keep in git.",
                        properties: [
                            "collections": .object(
                                required: false,
                                additionalProperties: .b(ref(Names.collectionDefinition))
                            ),
                            "roles": .object(
                                required: false,
                                additionalProperties: .b(
                                    .object(properties: [
                                        "inherits": .array(required: false, items: .string)
                                    ])
                                )
                            ),
                        ]
                    )
                ),
                (
                    Names.collectionDefinition,
                    .object(
                        title: Names.collectionDefinition,
                        properties: definitionProps,
                        additionalProperties: .a(false)
                    )
                ),
                (
                    Names.collectionObject,
                    .object(
                        title: Names.collectionObject,
                        properties: objectProps,
                        additionalProperties: .a(false)
                    )
                ),
                (Names.fieldDefinition, field),
                (Names.grant, grant),
                (
                    Names.migrationPlan,
                    .object(
                        title: Names.migrationPlan,
                        properties: ["steps": .array(items: step), "destructive": .boolean]
                    )
                ),
                (
                    Names.migration,
                    .object(
                        title: Names.migration,
                        description: "One applied schema change.",
                        properties: [
                            "version": .integer(format: .int64), "applied_at": .string(format: .dateTime),
                            "source": .string(description: "Where the change came from (`api`, `cli`, …)"),
                            "steps": .array(items: step), "destructive": .boolean,
                        ]
                    )
                ),
                (
                    Names.schemaChange,
                    .object(
                        title: Names.schemaChange,
                        description: "The answer to a schema change.",
                        properties: [
                            "plan": ref(Names.migrationPlan),
                            "applied": .boolean(description: "False for `dry_run`"),
                            "version": .integer(format: .int64, description: "The schema version after the change"),
                            "collection": ref(Names.collectionObject, required: false),
                        ]
                    )
                ),
                (
                    Names.apiKey,
                    .object(
                        title: Names.apiKey,
                        properties: [
                            "id": .string(format: .uuid), "name": .string,
                            "prefix": .string(description: "The first characters of the key, to recognize it"),
                            "admin": .boolean, "roles": .array(items: .string),
                            "created_at": .string(format: .dateTime),
                            "expires_at": .string(format: .dateTime, nullable: true),
                            "last_used_at": .string(format: .dateTime, nullable: true),
                        ]
                    )
                ),
                (
                    Names.apiKeyCreated,
                    .all(of: [
                        ref(Names.apiKey),
                        .object(properties: ["key": .string(description: "`bsk_…`; shown only in this response")]),
                    ])
                ),
            ]
        }
    }

    /// Lets a `JSONValue` (a field default) travel inside `AnyCodable`, keeping member order.
    struct EncodableJSON: Encodable, Sendable {
        let value: JSONValue

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        func encode(to encoder: any Encoder) throws {
            switch value {
            case .object(let o):
                var c = encoder.container(keyedBy: Key.self)
                for (k, v) in o { try c.encode(EncodableJSON(value: v), forKey: Key(stringValue: k)) }
            case .array(let a):
                var c = encoder.unkeyedContainer()
                for v in a { try c.encode(EncodableJSON(value: v)) }
            case .null:
                var c = encoder.singleValueContainer()
                try c.encodeNil()
            case .bool(let b):
                var c = encoder.singleValueContainer()
                try c.encode(b)
            case .int(let i):
                var c = encoder.singleValueContainer()
                try c.encode(i)
            case .double(let d):
                var c = encoder.singleValueContainer()
                try c.encode(d)
            case .string(let s):
                var c = encoder.singleValueContainer()
                try c.encode(s)
            }
        }
    }
}
