import BasaltAuth
import BasaltCore
import BasaltServices
import Foundation
import OpenAPIKit

extension OpenAPIGenerator.SchemaFactory {
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
                Names.identity,
                .object(
                    title: Names.identity,
                    description: "An identity of another provider linked to the user (API.md §8.1).",
                    properties: [
                        "id": .string(format: .uuid),
                        "provider": .string(description: "The provider's configured name"),
                        "subject": .string(description: "The user's id at the provider"),
                        "email": .string(nullable: true, description: "The email the provider gave when it was linked"),
                        "created_at": .string(format: .dateTime),
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

    static let scopesDescription = "openid, profile, email, offline_access, {collection}:read, {collection}:write"

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
            (
                Names.finding,
                .object(
                    title: Names.finding,
                    description: "One advisor finding (`basalt doctor`): what was seen, why it matters, the trade-off, the fix.",
                    properties: [
                        "id": .string(description: "The kind of finding, e.g. `security.public_write`, `performance.unindexed_query`"),
                        "severity": .string(allowedValues: ["info", "warning", "severe"]),
                        "category": .string(allowedValues: ["security", "performance", "reliability"]),
                        "subject": .string(required: false, description: "What it is about: a collection, an API key id, a webhook id"),
                        "title": .string(),
                        "seen": .string(description: "What was observed"),
                        "why": .string(description: "Why it matters"),
                        "tradeoff": .string(description: "What the fix costs"),
                        "fix": .string(description: "The YAML, setting or statement to change"),
                    ]
                )
            ),
        ]
    }

    /// A field of a collection, as the schema YAML writes it. `nullable`: or null, as a merge
    /// patch drops a field — written as `type: [object, null]` on the object itself, not as
    /// `anyOf: [FieldDefinition, {type: null}]`: swift-openapi-generator emits code that does not
    /// compile for that shape inside `additionalProperties`, and this one means exactly the same.
    static func fieldDefinition(nullable: Bool = false) -> JSONSchema {
        .object(
            nullable: nullable,
            title: nullable ? nil : Names.fieldDefinition,
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
    }

    static var adminSchemas: [(String, JSONSchema)] {
        let name = JSONSchema.string(pattern: "^[a-z][a-z0-9_]{0,62}$")
        let field = fieldDefinition()
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
                Names.oauthClient,
                .object(
                    title: Names.oauthClient,
                    description: "A client of the authorization server (API.md §8.1); its `id` is the OAuth `client_id`.",
                    properties: [
                        "id": .string(format: .uuid), "name": .string,
                        "confidential": .boolean(description: "Has a secret (a server-side app or a service)"),
                        "redirect_uris": .array(items: .string), "grants": .array(items: .string), "scopes": .array(items: .string),
                        "roles": .array(description: "The roles its own (client credentials) tokens act with", items: .string),
                        "created_at": .string(format: .dateTime),
                    ]
                )
            ),
            (
                Names.oauthClientCreate,
                .object(
                    title: Names.oauthClientCreate,
                    properties: [
                        "name": .string(minLength: 1, maxLength: 200),
                        "redirect_uris": .array(
                            required: false,
                            description: "Exact redirect URIs: https, http on a loopback host, or a private-use scheme",
                            items: .string(
                                pattern: #"^(https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^#\s]*)?"#
                                    + #"|http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]{1,5})?(/[^#\s]*)?"#
                                    + #"|[a-z][a-z0-9+-]*\.[a-z0-9.+-]+:[^#\s]+)$"#
                            )
                        ),
                        "confidential": .boolean(required: false, defaultValue: true),
                        "grants": .array(
                            required: false,
                            description: "Default: authorization_code",
                            items: .string(allowedValues: "authorization_code", "refresh_token", "client_credentials")
                        ),
                        "scopes": .array(
                            required: false,
                            description: "The most its tokens may carry: \(scopesDescription)",
                            items: .string(pattern: "^(openid|profile|email|offline_access|[a-z][a-z0-9_]{0,62}:(read|write))$")
                        ),
                        "roles": .array(
                            required: false,
                            description: "The roles of its client-credentials tokens; each must be a role of the schema",
                            items: .string
                        ),
                    ],
                    additionalProperties: .a(false)
                )
            ),
            (
                Names.oauthClientCreated,
                .all(of: [
                    ref(Names.oauthClient),
                    .object(properties: [
                        "client_secret": .string(required: false, description: "`bcs_…`, for a confidential client; shown only in this response")
                    ]),
                ])
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
