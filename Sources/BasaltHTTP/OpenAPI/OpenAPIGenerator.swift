import BasaltAuth
import BasaltCore
public import BasaltServices
import Foundation
import HTTPTypes
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
    ///
    /// With `surface`, the fixed part of the document (batch, auth, admin, meta) follows the
    /// declared endpoints: an operation is listed when its endpoint exists and the caller may call
    /// it (`.admin` endpoints for admins only).
    public static func document(
        schema: CompiledSchema,
        principal: Principal,
        serverURL: String,
        surface: HTTPSurface? = nil
    ) -> OpenAPI.Document {
        var builder = Builder(compiled: schema, principal: principal)
        builder.build()
        if let surface { builder.narrow(to: surface) }
        let server = OpenAPI.Server(url: URL(string: serverURL) ?? URL(string: "/")!)
        return OpenAPI.Document(
            openAPIVersion: .v3_1_1,
            info: OpenAPI.Document.Info(title: "Basalt API", description: Text.infoDescription, version: "1"),
            servers: [server],
            paths: builder.paths,
            components: OpenAPI.Components(
                schemas: builder.schemas,
                securitySchemes: [
                    Names.bearer: .b(Self.bearerScheme), Names.apiKeyAuth: .b(Self.apiKeyScheme),
                    Names.oauth2: .b(Self.oauth2Scheme(serverURL: serverURL, scopes: builder.oauthScopes)),
                ]
            ),
            security: Security.required,
            tags: builder.tags.isEmpty ? nil : builder.tags
        )
    }

    /// The document for `principal`, encoded as JSON (the body of `GET /v1/openapi.json`).
    public static func json(schema: CompiledSchema, principal: Principal, serverURL: String, surface: HTTPSurface? = nil) -> [UInt8] {
        json(document: document(schema: schema, principal: principal, serverURL: serverURL, surface: surface))
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

    /// Tokens of the authorization server (API.md §8.1), for third-party apps (authorization code
    /// with PKCE) and services (client credentials). Collection scopes narrow the grants.
    static func oauth2Scheme(serverURL: String, scopes collectionScopes: [(String, String)]) -> OpenAPI.SecurityScheme {
        let base = serverURL.hasSuffix("/") ? String(serverURL.dropLast()) : serverURL
        let url: (String) -> URL = { URL(string: base + $0) ?? URL(string: "/")! }
        var scopes: OrderedDictionary<String, String> = [
            "openid": "Sign in: an ID token, and userinfo", "profile": "The user's profile claims",
            "email": "The user's email address and whether it is verified", "offline_access": "A refresh token",
        ]
        var clientScopes: OrderedDictionary<String, String> = [:]
        for (scope, description) in collectionScopes {
            scopes[scope] = description
            clientScopes[scope] = description
        }
        return .oauth2(
            flows: OpenAPI.OAuthFlows(
                clientCredentials: .init(tokenUrl: url("/oauth/token"), scopes: clientScopes),
                authorizationCode: .init(
                    authorizationUrl: url("/oauth/authorize"),
                    tokenUrl: url("/oauth/token"),
                    refreshUrl: url("/oauth/token"),
                    scopes: scopes
                )
            ),
            description: """
                OAuth 2.1 (API.md §8.1) for apps an admin has registered: the \
                authorization code flow with PKCE `S256` (the user signs in and consents at `/oauth/authorize`) \
                and, for services, client credentials. Tokens are sent as `Authorization: Bearer …` like access \
                tokens. `{collection}:read` and `{collection}:write` narrow what the user's (or the client's \
                roles') grants allow, never widen them; such tokens cannot manage the account (`/v1/auth/*`).
                """
        )
    }

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
        static let oauth2: OpenAPI.ComponentKey = "oauth2"
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
        static let identity = "Identity"
        static let oauthClient = "OAuthClient"
        static let oauthClientCreate = "OAuthClient_create"
        static let oauthClientCreated = "OAuthClient_created"
        static let accepted = "Accepted"
        static let jwks = "JWKS"
        static let adminUserPatch = "AdminUserPatch"
        static let auditEntry = "AuditEntry"
        static let finding = "Finding"
        static let collectionPatch = "CollectionPatch"
        static let webhookPatch = "WebhookPatch"
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

    /// The namespace's helpers, by their short names, for the builder's extensions in other files.
    protocol Namespace {}

    struct Builder: Namespace {
        let compiled: CompiledSchema
        let principal: Principal
        var paths: OpenAPI.PathItem.Map = [:]
        var schemas: OpenAPI.ComponentDictionary<JSONSchema> = [:]
        var tags: [OpenAPI.Tag] = []
        /// `{collection}:read|write` for the collections in the document, with descriptions.
        var oauthScopes: [(String, String)] = []

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
            let scope = c.name + ([.list, .view].contains(action) ? ":read" : ":write")
            let oauth: OpenAPI.SecurityRequirement = [JSONReference.component(named: "oauth2"): [scope]]
            return (c.access[action].contains { $0.who == .public } ? Security.optional : Security.required) + [oauth]
        }

        mutating func addSchema(_ name: String, _ s: JSONSchema) {
            guard let key = OpenAPI.ComponentKey(rawValue: name) else { return }
            schemas[key] = s
        }

        /// Paths of collections (derived from the schema and grants); every other path is fixed.
        var collectionPaths: Set<OpenAPI.Path> = []

        mutating func build() {
            addSchema(Names.problem, SchemaFactory.problem)
            var anyWrite = principal.isAdmin
            let reachableActions = schema.collections.map { c in (c, AccessAction.allCases.filter { reachable($0, c) })
            }
            // Collections whose record schema is in the document: only those may be `$ref`erenced.
            let documented = Set(reachableActions.filter { !$0.1.isEmpty }.map(\.0.name))
            for (c, actions) in reachableActions where !actions.isEmpty {
                if actions.contains(where: { [.create, .update, .delete].contains($0) }) { anyWrite = true }
                if actions.contains(where: { [.list, .view].contains($0) }) { oauthScopes.append((c.name + ":read", "Read \(c.name)")) }
                if actions.contains(where: { [.create, .update, .delete].contains($0) }) {
                    oauthScopes.append((c.name + ":write", "Read and change \(c.name)"))
                }
                addCollection(c, actions: Set(actions), documented: documented)
            }
            collectionPaths = Set(paths.keys)
            if anyWrite { addBatch() }
            // The auth endpoints are public API: every caller sees them (API.md §13).
            addAuth()
            addMeta()
            addRealtime()
            if principal.isAdmin { addAdmin() }
        }

        /// Keeps the fixed operations whose endpoints `surface` declares and the caller may call.
        mutating func narrow(to surface: HTTPSurface) {
            for (path, item) in paths where !collectionPaths.contains(path) {
                guard var pathItem = item.pathItemValue else { continue }
                // `/v1/auth/sessions/{id}` is the router's `/v1/auth/sessions/:id`.
                let pattern =
                    "/"
                    + path.components.map { $0.hasPrefix("{") && $0.hasSuffix("}") ? ":" + $0.dropFirst().dropLast() : $0 }
                    .joined(separator: "/")
                for e in pathItem.endpoints {
                    let declared = surface.endpoints.first { $0.path == pattern && $0.method.rawValue == e.method.rawValue }
                    if declared == nil || (declared?.access == .admin && !principal.isAdmin) {
                        pathItem.set(operation: nil, for: e.method)
                    }
                }
                paths[path] = pathItem.endpoints.isEmpty ? nil : .pathItem(pathItem)
            }
        }

    }
}

extension OpenAPIGenerator.Namespace {
    typealias Names = OpenAPIGenerator.Names
    typealias Security = OpenAPIGenerator.Security
    typealias Media = OpenAPIGenerator.Media
    typealias Text = OpenAPIGenerator.Text
    typealias Parameters = OpenAPIGenerator.Parameters
    typealias Headers = OpenAPIGenerator.Headers
    typealias Responses = OpenAPIGenerator.Responses
    typealias SchemaFactory = OpenAPIGenerator.SchemaFactory
    typealias EncodableJSON = OpenAPIGenerator.EncodableJSON
}
