import Basalt
import BasaltCore
import BasaltHTTP
import BasaltServices
// Transitive dependencies of BasaltHTTP: the dialect that compiles a schema, and the document's types.
import BasaltStorage
import BasaltTesting
import Foundation
import HTTPTypes
import OpenAPIKit
import Testing

/// A schema with every field type and a spread of grants: `posts` is partly public, `users` is
/// for signed-in callers (each may edit their own record), `secrets` has no grant (admin only).
enum Fixture {
    static let schema = Schema(
        collections: [
            CollectionSchema(
                name: "posts",
                fields: [
                    FieldSchema(
                        name: "title",
                        type: .text,
                        required: true,
                        unique: true,
                        min: 1,
                        max: 200,
                        pattern: "[A-Za-z<>& ].*"
                    ),
                    FieldSchema(name: "body", type: .text),
                    FieldSchema(
                        name: "status",
                        type: .select,
                        defaultValue: .string("draft"),
                        values: ["draft", "published", "<b>hidden</b>"]
                    ),
                    FieldSchema(name: "views", type: .integer, required: true, min: 0, defaultValue: .int(0)),
                    FieldSchema(name: "rating", type: .number, min: 0, max: 5.5),
                    FieldSchema(name: "featured", type: .boolean),
                    FieldSchema(name: "published_at", type: .datetime),
                    FieldSchema(name: "contact", type: .email, max: 254),
                    FieldSchema(name: "homepage", type: .url),
                    FieldSchema(
                        name: "meta",
                        type: .json,
                        defaultValue: .object(JSONObject([("a", .array([.int(1)]))]))
                    ),
                    FieldSchema(name: "author", type: .relation, target: "users", onDelete: .cascade),
                ],
                access: {
                    var a = AccessRules()
                    a.list = [Grant(who: .public, rule: "status = 'published'"), Grant(who: .authenticated)]
                    a.view = [Grant(who: .public, rule: "status = 'published'"), Grant(who: .authenticated)]
                    a.create = [Grant(who: .authenticated)]
                    a.update = [Grant(who: .roles(["editor"]))]
                    a.delete = [Grant(who: .roles(["editor"]))]
                    return a
                }()
            ),
            CollectionSchema(
                name: "users",
                fields: [FieldSchema(name: "name", type: .text, max: 100)],
                access: {
                    var a = AccessRules()
                    a.view = [Grant(who: .authenticated)]
                    a.update = [Grant(who: .authenticated, rule: "id = @auth.id")]
                    return a
                }()
            ),
            CollectionSchema(name: "secrets", fields: [FieldSchema(name: "value", type: .text, required: true)]),
        ],
        roles: [RoleDefinition(name: "editor")]
    )

    /// With the built-in fields of `users` merged in, as `SchemaService` serves every schema.
    static func compiled() throws -> CompiledSchema {
        try CompiledSchema(schema: try schema.withBuiltins(), version: 1, dialect: SQLiteDialect())
    }

    /// Collection names that collide with generated names unless the generator avoids it.
    static func clashDocument() throws -> OpenAPI.Document {
        let names = [
            "posts", "posts_list", "posts_create", "list_posts", "get_posts", "head_get", "list", "get",
            "head_list_posts",
        ]
        let schema = Schema(
            collections: names.map { CollectionSchema(name: $0, fields: [FieldSchema(name: "n", type: .integer)]) }
        )
        let compiled = try CompiledSchema(schema: schema, version: 1, dialect: SQLiteDialect())
        return OpenAPIGenerator.document(schema: compiled, principal: admin, serverURL: "/")
    }

    static let anonymous = Principal.anonymous("203.0.113.7")
    static let editor = Principal(kind: .subject, id: "0190a000-0000-7000-8000-000000000001", roles: ["editor"])
    static let reader = Principal(kind: .subject, id: "0190a000-0000-7000-8000-000000000002")
    static let admin = Principal(kind: .admin, id: "key-1")

    static func document(_ p: Principal) throws -> OpenAPI.Document {
        OpenAPIGenerator.document(schema: try compiled(), principal: p, serverURL: "http://127.0.0.1:8080")
    }

    /// The document as the wire has it, for assertions on the exact JSON.
    static func wire(_ p: Principal) throws -> [String: Any] {
        let bytes = OpenAPIGenerator.json(schema: try compiled(), principal: p, serverURL: "http://127.0.0.1:8080")
        return try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }
}

/// `(path, method)` of every operation in a wire document.
func operations(_ doc: [String: Any]) -> Set<String> {
    let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]
    var out: Set<String> = []
    for (path, item) in doc["paths"] as? [String: Any] ?? [:] {
        for (m, _) in item as? [String: Any] ?? [:] where methods.contains(m) {
            out.insert("\(m.uppercased()) \(path)")
        }
    }
    return out
}

func schemaProperty(_ doc: [String: Any], _ schema: String, _ property: String) -> [String: Any]? {
    let components = doc["components"] as? [String: Any]
    let schemas = components?["schemas"] as? [String: Any]
    let s = schemas?[schema] as? [String: Any]
    return (s?["properties"] as? [String: Any])?[property] as? [String: Any]
}

@Suite struct OpenAPIScopingTests {
    @Test func anonymousSeesOnlyPublicOperations() throws {
        let doc = try Fixture.wire(Fixture.anonymous)
        let ops = operations(doc)
        #expect(ops.contains("GET /v1/posts"))
        #expect(ops.contains("GET /v1/posts/{id}"))
        #expect(ops.contains("HEAD /v1/posts/{id}"))
        #expect(ops.contains("HEAD /v1/posts"))
        #expect(ops.contains("GET /health/live"))
        #expect(ops.contains("GET /health/ready"))
        #expect(ops.contains("GET /v1/openapi.json"))
        #expect(!ops.contains("POST /v1/posts"))
        #expect(!ops.contains("PATCH /v1/posts/{id}"))
        #expect(!ops.contains("DELETE /v1/posts/{id}"))
        #expect(!ops.contains("POST /v1/batch"))
        #expect(!ops.contains { $0.contains("/v1/users") || $0.contains("/v1/secrets") || $0.contains("/v1/admin") })
        let schemas = try #require((doc["components"] as? [String: Any])?["schemas"] as? [String: Any])
        #expect(schemas["posts"] != nil && schemas["posts_list"] != nil && schemas["Problem"] != nil)
        #expect(schemas["posts_create"] == nil && schemas["users"] == nil && schemas["secrets"] == nil)
        #expect(schemas["SchemaDocument"] == nil)
        // `users` is not in this document, so `expand.author` must not point at it.
        let expand = try #require(schemaProperty(doc, "posts", "expand"))
        let author = try #require((expand["properties"] as? [String: Any])?["author"] as? [String: Any])
        #expect(author["$ref"] == nil)
        // Public operations accept a credential but do not need one.
        let list = try #require(
            ((doc["paths"] as? [String: Any])?["/v1/posts"] as? [String: Any])?["get"] as? [String: Any]
        )
        let security = try #require(list["security"] as? [[String: Any]])
        #expect(security.count == 4 && security[0].isEmpty && security[1]["bearerAuth"] != nil)
        #expect(security.count == 4 && security[2]["apiKey"] != nil)
        #expect(security.count == 4 && security[3]["oauth2"] as? [String] == ["posts:read"])
    }

    @Test func signedInCallerSeesGrantedOperations() throws {
        let reader = operations(try Fixture.wire(Fixture.reader))
        #expect(reader.contains("POST /v1/posts"))
        #expect(reader.contains("GET /v1/users/{id}"))
        #expect(!reader.contains("GET /v1/users"))
        #expect(!reader.contains("PUT /v1/posts/{id}"))
        #expect(reader.contains("POST /v1/batch"))
        #expect(!reader.contains { $0.contains("/v1/admin") || $0.contains("/v1/secrets") })

        let editor = operations(try Fixture.wire(Fixture.editor))
        for op in ["PUT /v1/posts/{id}", "PATCH /v1/posts/{id}", "DELETE /v1/posts/{id}", "POST /v1/batch"] {
            #expect(editor.contains(op), "\(op)")
        }
        #expect(!editor.contains { $0.contains("/v1/admin") })
    }

    @Test func adminSeesEverything() throws {
        let doc = try Fixture.document(Fixture.admin)
        let ops = operations(try Fixture.wire(Fixture.admin))
        for op in [
            "GET /v1/secrets", "POST /v1/secrets", "GET /v1/secrets/{id}", "HEAD /v1/secrets/{id}",
            "PUT /v1/secrets/{id}",
            "PATCH /v1/secrets/{id}", "DELETE /v1/secrets/{id}", "GET /v1/users", "POST /v1/batch",
            "GET /v1/admin/schema", "PUT /v1/admin/schema", "GET /v1/admin/collections", "POST /v1/admin/collections",
            "GET /v1/admin/collections/{name}", "PATCH /v1/admin/collections/{name}",
            "DELETE /v1/admin/collections/{name}",
            "GET /v1/admin/migrations", "GET /v1/admin/api-keys", "POST /v1/admin/api-keys",
            "DELETE /v1/admin/api-keys/{id}",
        ] {
            #expect(ops.contains(op), "\(op)")
        }
        let ids = doc.allOperationIds
        #expect(Set(ids).count == ids.count, "operationIds are unique")
        for id in [
            "list_posts", "head_list_posts", "create_posts", "get_posts", "head_get_posts", "replace_posts",
            "update_posts", "delete_posts", "batch", "admin_replace_schema",
        ] {
            #expect(ids.contains(id), "\(id)")
        }
        let putSchema = try #require(doc.paths["/v1/admin/schema"]?.pathItemValue?.put)
        let query = putSchema.parameters.compactMap { $0.parameterValue }.map(\.name)
        #expect(query.contains("dry_run") && query.contains("allow_destructive"))
    }
}

@Suite struct OpenAPISchemaTests {
    @Test func constraintsAreDocumented() throws {
        let doc = try Fixture.wire(Fixture.admin)
        let title = try #require(schemaProperty(doc, "posts_create", "title"))
        #expect(title["maxLength"] as? Int == 200)
        #expect(title["minLength"] as? Int == 1)
        #expect(title["pattern"] as? String == "^(?:[A-Za-z<>& ].*)$")
        #expect(title["type"] as? String == "string")

        let status = try #require(schemaProperty(doc, "posts_create", "status"))
        #expect(status["enum"] as? [Any?] != nil)
        let values = (status["enum"] as? [Any]) ?? []
        #expect(values.compactMap { $0 as? String } == ["draft", "published", "<b>hidden</b>"])
        #expect(values.contains { $0 is NSNull }, "a nullable enum lists null")
        #expect(status["type"] as? [String] == ["string", "null"])
        #expect(status["default"] as? String == "draft")

        let views = try #require(schemaProperty(doc, "posts_create", "views"))
        #expect(views["minimum"] as? Int == 0)
        #expect(views["format"] as? String == "int64")
        #expect(views["type"] as? String == "integer")

        let rating = try #require(schemaProperty(doc, "posts", "rating"))
        #expect(rating["maximum"] as? Double == 5.5)
        #expect(rating["type"] as? [String] == ["number", "null"])

        #expect(schemaProperty(doc, "posts", "published_at")?["format"] as? String == "date-time")
        #expect(schemaProperty(doc, "posts", "contact")?["format"] as? String == "email")
        #expect(schemaProperty(doc, "posts", "contact")?["maxLength"] as? Int == 254)
        #expect(schemaProperty(doc, "posts", "homepage")?["format"] as? String == "uri")
        let author = try #require(schemaProperty(doc, "posts", "author"))
        #expect(author["format"] as? String == "uuid")
        #expect((author["description"] as? String)?.contains("`users`") == true)
        let meta = try #require(schemaProperty(doc, "posts", "meta"))
        #expect(meta["type"] == nil, "json fields accept any value")
        #expect(schemaProperty(doc, "posts", "id")?["readOnly"] as? Bool == true)
        #expect(schemaProperty(doc, "posts", "created_at")?["format"] as? String == "date-time")
    }

    @Test func requiredAndAdditionalProperties() throws {
        let doc = try Fixture.wire(Fixture.admin)
        let schemas = try #require((doc["components"] as? [String: Any])?["schemas"] as? [String: Any])
        let record = try #require(schemas["posts"] as? [String: Any])
        let recordRequired = Set(record["required"] as? [String] ?? [])
        #expect(
            recordRequired.isSuperset(of: ["id", "title", "body", "author", "created_at", "updated_at", "version"])
        )
        #expect(!recordRequired.contains("expand"))

        let create = try #require(schemas["posts_create"] as? [String: Any])
        #expect(Set(create["required"] as? [String] ?? []) == ["title"], "views has a default, id is optional")
        #expect(create["additionalProperties"] as? Bool == false)

        let patch = try #require(schemas["posts_patch"] as? [String: Any])
        #expect(patch["required"] == nil)
        #expect(patch["additionalProperties"] as? Bool == false)
        // A required field cannot be cleared by a patch (null would be a 422 `required`).
        #expect(schemaProperty(doc, "posts_patch", "title")?["type"] as? String == "string")

        let replace = try #require(schemas["posts_replace"] as? [String: Any])
        #expect(schemaProperty(doc, "posts_replace", "version")?["readOnly"] as? Bool == true)
        #expect(replace["additionalProperties"] as? Bool == false)

        let list = try #require(schemas["posts_list"] as? [String: Any])
        #expect(Set(list["required"] as? [String] ?? []) == ["items", "next_cursor"])
        #expect(schemaProperty(doc, "posts_list", "next_cursor")?["type"] as? [String] == ["string", "null"])
    }

    @Test func errorsAreProblemDetails() throws {
        let doc = try Fixture.wire(Fixture.admin)
        var checked = 0
        for (path, item) in doc["paths"] as? [String: Any] ?? [:] {
            for (method, op) in item as? [String: Any] ?? [:] {
                guard method != "head", let responses = (op as? [String: Any])?["responses"] as? [String: Any] else {
                    continue
                }
                for (status, response) in responses where (Int(status) ?? 0) >= 400 {
                    let content = (response as? [String: Any])?["content"] as? [String: Any]
                    let problem = content?["application/problem+json"] as? [String: Any]
                    let ref = (problem?["schema"] as? [String: Any])?["$ref"] as? String
                    #expect(ref == "#/components/schemas/Problem", "\(method) \(path) \(status)")
                    checked += 1
                }
            }
        }
        #expect(checked > 50)
        let codes = try #require(
            ((schemaProperty(doc, "Problem", "errors")?["items"] as? [String: Any])?["properties"] as? [String: Any])?[
                "code"
            ]
                as? [String: Any]
        )
        let allowed = Set(codes["enum"] as? [String] ?? [])
        #expect(
            allowed.isSuperset(of: [
                "required", "type", "min", "max", "pattern", "enum", "format", "unique", "unknown_field", "read_only",
                "not_found", "forbidden_target",
            ])
        )
        let list = try #require(
            ((doc["paths"] as? [String: Any])?["/v1/posts"] as? [String: Any])?["get"] as? [String: Any]
        )
        let ok = try #require((list["responses"] as? [String: Any])?["200"] as? [String: Any])
        let headers = try #require(ok["headers"] as? [String: Any])
        #expect(headers["Link"] != nil && headers["ETag"] != nil)
        let patch = try #require(
            ((doc["paths"] as? [String: Any])?["/v1/posts/{id}"] as? [String: Any])?["patch"] as? [String: Any]
        )
        let patchContent = try #require((patch["requestBody"] as? [String: Any])?["content"] as? [String: Any])
        #expect(patchContent["application/merge-patch+json"] != nil && patchContent["application/json"] != nil)
    }

    /// A malformed `Idempotency-Key` is a `400` (API.md §6) on every operation that takes one.
    @Test func operationsTakingAnIdempotencyKeyDocument400() throws {
        let doc = try Fixture.wire(Fixture.admin)
        let shared = (doc["components"] as? [String: Any])?["parameters"] as? [String: Any] ?? [:]
        func name(_ parameter: Any) -> String? {
            guard let p = parameter as? [String: Any] else { return nil }
            if let ref = p["$ref"] as? String {
                return (shared[String(ref.split(separator: "/").last ?? "")] as? [String: Any])?["name"] as? String
            }
            return p["name"] as? String
        }
        var checked = 0
        for (path, item) in doc["paths"] as? [String: Any] ?? [:] {
            for (method, op) in item as? [String: Any] ?? [:] {
                guard let op = op as? [String: Any], let parameters = op["parameters"] as? [Any] else { continue }
                guard parameters.contains(where: { name($0) == "Idempotency-Key" }) else { continue }
                #expect(Wire.response(op, 400) != nil, "\(method) \(path) takes an Idempotency-Key but does not document 400")
                checked += 1
            }
        }
        #expect(checked >= 5)
    }

    @Test func openAPIKitValidationPasses() throws {
        for p in [Fixture.anonymous, Fixture.reader, Fixture.editor, Fixture.admin] {
            let doc = try Fixture.document(p)
            _ = try doc.validate(strict: true)
            // It decodes again: the JSON is a well-formed OpenAPI 3.1 document.
            let bytes = OpenAPIGenerator.json(document: doc)
            _ = try JSONDecoder().decode(OpenAPI.Document.self, from: Data(bytes))
        }
    }

    /// Shapes client generators mishandle: a body given inline under two media types (two models
    /// of one name in openapi-python-client), and `anyOf` with `{type: null}` inside
    /// `additionalProperties` (swift-openapi-generator's code did not compile).
    @Test func shapesGeneratorsHandle() throws {
        func walk(_ value: Any, inAdditional: Bool, _ visit: ([String: Any], Bool) -> Void) {
            if let o = value as? [String: Any] {
                visit(o, inAdditional)
                for (k, v) in o { walk(v, inAdditional: inAdditional || k == "additionalProperties", visit) }
            } else if let a = value as? [Any] {
                for v in a { walk(v, inAdditional: inAdditional, visit) }
            }
        }
        for p in [Fixture.anonymous, Fixture.reader, Fixture.editor, Fixture.admin] {
            let doc = try Fixture.wire(p)
            var nullUnions = 0
            walk(doc, inAdditional: false) { o, inAdditional in
                if inAdditional, let any = o["anyOf"] as? [[String: Any]], any.contains(where: { $0["type"] as? String == "null" }) {
                    nullUnions += 1
                }
            }
            #expect(nullUnions == 0)
            for (path, item) in doc["paths"] as? [String: [String: Any]] ?? [:] {
                for (method, op) in item {
                    guard let content = ((op as? [String: Any])?["requestBody"] as? [String: Any])?["content"] as? [String: Any],
                        content.count > 1
                    else { continue }
                    let refs = content.values.map { (($0 as? [String: Any])?["schema"] as? [String: Any])?["$ref"] as? String }
                    #expect(refs.allSatisfy { $0 != nil } && Set(refs).count == 1, "\(method) \(path): one component for every media type")
                }
            }
        }
    }

    @Test func namesStayUniqueWhateverTheCollectionNames() throws {
        let doc = try Fixture.clashDocument()
        let ids = doc.allOperationIds
        #expect(Set(ids).count == ids.count, "\(ids.sorted())")
        // `posts_list` is a collection, so the list schema of `posts` takes another name.
        let keys = Set(doc.components.schemas.keys.map(\.rawValue))
        #expect(
            keys.isSuperset(of: [
                "posts", "posts_list", "posts.list", "posts_create", "posts.create", "posts_list_list",
            ])
        )
        let list = try #require(doc.paths["/v1/posts"]?.pathItemValue?.get)
        let ok = try #require(list.responses[status: 200]?.responseValue)
        let schema = try #require(ok.content[.json]?.contentValue?.schema)
        guard case .reference(let ref, _) = schema.value else {
            Issue.record("the list response should reference its schema")
            return
        }
        #expect(ref.name == "posts.list")
    }

    @Test func emptySchemaStillDescribesMetaEndpoints() throws {
        let empty = try CompiledSchema(schema: .empty, version: 1, dialect: SQLiteDialect())
        let doc = OpenAPIGenerator.document(schema: empty, principal: Fixture.anonymous, serverURL: "/")
        #expect(doc.paths["/health/ready"] != nil)
        #expect(doc.paths["/v1/batch"] == nil)
    }
}

// MARK: - Identity (API.md §8, §9, §12)

/// Lookups into a wire document.
enum Wire {
    static func operation(_ doc: [String: Any], _ method: String, _ path: String) -> [String: Any]? {
        ((doc["paths"] as? [String: Any])?[path] as? [String: Any])?[method.lowercased()] as? [String: Any]
    }

    static func component(_ doc: [String: Any], _ name: String) -> [String: Any]? {
        ((doc["components"] as? [String: Any])?["schemas"] as? [String: Any])?[name] as? [String: Any]
    }

    /// The schema of a JSON `content` map, following one `$ref` into the components.
    static func schema(_ doc: [String: Any], content: Any?) -> [String: Any]? {
        let json = (content as? [String: Any])?["application/json"] as? [String: Any]
        guard let s = json?["schema"] as? [String: Any] else { return nil }
        guard let ref = s["$ref"] as? String else { return s }
        return component(doc, String(ref.dropFirst("#/components/schemas/".count)))
    }

    static func requestSchema(_ doc: [String: Any], _ op: [String: Any]) -> [String: Any]? {
        schema(doc, content: (op["requestBody"] as? [String: Any])?["content"])
    }

    static func response(_ op: [String: Any], _ status: Int) -> [String: Any]? {
        (op["responses"] as? [String: Any])?[String(status)] as? [String: Any]
    }

    static func security(_ op: [String: Any]) -> [[String: [String]]]? {
        op["security"] as? [[String: [String]]]
    }

    /// The allowed values of a schema: `enum`, or `const` (how a single value is written).
    static func allowed(_ schema: Any?) -> [String]? {
        let s = schema as? [String: Any]
        if let c = s?["const"] as? String { return [c] }
        return s?["enum"] as? [String]
    }

    static func required(_ schema: [String: Any]?) -> Set<String> { Set(schema?["required"] as? [String] ?? []) }
    static func properties(_ schema: [String: Any]?) -> [String: Any] { schema?["properties"] as? [String: Any] ?? [:] }
}

@Suite struct OpenAPIIdentityTests {
    /// Every §8 operation: method, path, required body members (nil: no body), success status.
    static let endpoints: [(String, String, Set<String>?, Int)] = [
        ("POST", "/v1/auth/register", ["email", "password"], 201),
        ("POST", "/v1/auth/login", ["email", "password"], 200),
        ("POST", "/v1/auth/refresh", ["refresh_token"], 200),
        ("POST", "/v1/auth/logout", ["refresh_token"], 204),
        ("GET", "/v1/auth/me", nil, 200),
        ("GET", "/v1/auth/sessions", nil, 200),
        ("DELETE", "/v1/auth/sessions/{id}", nil, 204),
        ("POST", "/v1/auth/verify/request", nil, 202),
        ("POST", "/v1/auth/verify", ["token"], 204),
        ("POST", "/v1/auth/password/forgot", ["email"], 202),
        ("POST", "/v1/auth/password/reset", ["token", "password"], 204),
        ("POST", "/v1/auth/email/change", ["new_email", "password"], 202),
        ("POST", "/v1/auth/email/confirm", ["token"], 204),
        ("POST", "/v1/auth/mfa/totp", ["password"], 200),
        ("POST", "/v1/auth/mfa/totp/confirm", ["otp"], 200),
        ("DELETE", "/v1/auth/mfa/totp", ["otp"], 204),
        ("GET", "/.well-known/jwks.json", nil, 200),
    ]

    /// The operations that act on the signed-in user: an access token, never an API key.
    static let userOnly: Set<String> = [
        "GET /v1/auth/me", "GET /v1/auth/sessions", "DELETE /v1/auth/sessions/{id}", "POST /v1/auth/verify/request",
        "POST /v1/auth/email/change", "POST /v1/auth/mfa/totp", "POST /v1/auth/mfa/totp/confirm",
        "DELETE /v1/auth/mfa/totp",
    ]

    static let adminIdentity = [
        "GET /v1/admin/users", "PATCH /v1/admin/users/{id}", "POST /v1/admin/users/{id}/revoke-sessions",
        "GET /v1/admin/audit",
    ]

    @Test func securitySchemesArePresent() throws {
        let doc = try Fixture.wire(Fixture.reader)
        let schemes = try #require((doc["components"] as? [String: Any])?["securitySchemes"] as? [String: Any])
        let bearer = try #require(schemes["bearerAuth"] as? [String: Any])
        #expect(bearer["type"] as? String == "http" && bearer["scheme"] as? String == "bearer")
        #expect(bearer["bearerFormat"] as? String == "JWT")
        #expect((bearer["description"] as? String)?.contains("EdDSA") == true)
        let apiKey = try #require(schemes["apiKey"] as? [String: Any])
        #expect(apiKey["type"] as? String == "http" && apiKey["scheme"] as? String == "bearer")
        #expect((apiKey["bearerFormat"] as? String)?.hasPrefix("bsk_") == true)

        let either: [[String: [String]]] = [["bearerAuth": []], ["apiKey": []]]
        #expect(doc["security"] as? [[String: [String]]] == either, "the default: a token or a key")
        let create = try #require(Wire.operation(doc, "POST", "/v1/posts"))
        #expect(Wire.security(create) == either + [["oauth2": ["posts:write"]]], "or an OAuth token with the collection's scope")
        for s in ["401", "403"] { #expect((create["responses"] as? [String: Any])?[s] != nil, "\(s)") }
        let list = try #require(Wire.operation(doc, "GET", "/v1/posts"))
        #expect(Wire.security(list) == [[:]] + either + [["oauth2": ["posts:read"]]], "a public grant: anonymous or any credential")
        let oauth2 = try #require(schemes["oauth2"] as? [String: Any])
        let flows = try #require(oauth2["flows"] as? [String: Any])
        let code = try #require(flows["authorizationCode"] as? [String: Any])
        #expect((code["authorizationUrl"] as? String)?.hasSuffix("/oauth/authorize") == true)
        #expect((code["tokenUrl"] as? String)?.hasSuffix("/oauth/token") == true)
        #expect((code["scopes"] as? [String: String])?["posts:write"] != nil && (code["scopes"] as? [String: String])?["openid"] != nil)
        let service = try #require(flows["clientCredentials"] as? [String: Any])
        #expect((service["scopes"] as? [String: String])?["openid"] == nil && (service["scopes"] as? [String: String])?["posts:read"] != nil)

        for (method, path, _, _) in Self.endpoints {
            let op = try #require(Wire.operation(doc, method, path), "\(method) \(path)")
            let security = try #require(Wire.security(op), "\(method) \(path)")
            if Self.userOnly.contains("\(method) \(path)") {
                #expect(security == [["bearerAuth": []]], "\(method) \(path)")
            } else if path.hasPrefix("/.well-known/") {
                #expect(security.isEmpty, "credentials are ignored")
            } else {
                #expect(security == [[:]] + either, "\(method) \(path): no token needed")
            }
        }

        let admin = try Fixture.wire(Fixture.admin)
        var adminOps = 0
        for op in operations(admin) where op.contains(" /v1/admin/") {
            let parts = op.split(separator: " ").map(String.init)
            let o = try #require(Wire.operation(admin, parts[0], parts[1]))
            #expect(Wire.security(o) == [["apiKey": []]], "\(op): admins are API keys")
            adminOps += 1
        }
        #expect(adminOps >= 14)
    }

    @Test(arguments: ["anonymous", "reader", "admin"])
    func everyIdentityEndpointIsDocumented(_ who: String) throws {
        let principals = ["anonymous": Fixture.anonymous, "reader": Fixture.reader, "admin": Fixture.admin]
        let doc = try Fixture.wire(try #require(principals[who]))
        let ops = operations(doc)
        for (method, path, members, success) in Self.endpoints {
            let name = "\(method) \(path)"
            #expect(ops.contains(name), "\(name)")
            let op = try #require(Wire.operation(doc, method, path), "\(name)")
            #expect(Wire.response(op, success) != nil, "\(name) answers \(success)")
            let body = Wire.requestSchema(doc, op)
            if let members {
                #expect(Wire.required(body).isSuperset(of: members), "\(name): \(Wire.required(body))")
                #expect(Set(Wire.properties(body).keys).isSuperset(of: members), "\(name)")
                // Problem responses come from the shared helpers: `application/problem+json` `Problem`.
                for status in [400, 422, 429] {
                    let content = Wire.response(op, status)?["content"] as? [String: Any]
                    let problem = (content?["application/problem+json"] as? [String: Any])?["schema"] as? [String: Any]
                    #expect(problem?["$ref"] as? String == "#/components/schemas/Problem", "\(name) \(status)")
                }
            } else {
                #expect(op["requestBody"] == nil, "\(name) takes no body")
            }
            if path.hasPrefix("/v1/auth/") {
                let tooMany = try #require(Wire.response(op, 429), "\(name)")
                #expect((tooMany["headers"] as? [String: Any])?["Retry-After"] != nil, "\(name)")
            }
            if Self.userOnly.contains(name) {
                #expect(Wire.response(op, 401) != nil && Wire.response(op, 403) != nil, "\(name)")
            }
        }
        // Registration takes the profile fields of `users`, but never the managed ones.
        let register = try #require(Wire.component(doc, "RegisterRequest"))
        let fields = Set(Wire.properties(register).keys)
        #expect(fields == ["email", "password", "name"], "\(fields)")
        #expect(register["additionalProperties"] as? Bool == false)
        let password = try #require(Wire.properties(register)["password"] as? [String: Any])
        #expect(password["minLength"] as? Int == 8 && password["format"] as? String == "password")
        let registerOp = try #require(Wire.operation(doc, "POST", "/v1/auth/register"))
        let registered = try #require(Wire.response(registerOp, 201))
        #expect(Wire.schema(doc, content: registered["content"])?["title"] as? String == "User")
        #expect((registered["headers"] as? [String: Any])?["Location"] != nil)

        let login = try #require(Wire.operation(doc, "POST", "/v1/auth/login"))
        #expect(Wire.required(Wire.requestSchema(doc, login)) == ["email", "password"], "otp is optional")
        #expect(Wire.properties(Wire.requestSchema(doc, login))["otp"] != nil)
        let unauthenticated = try #require(Wire.response(login, 401)?["description"] as? String)
        #expect(unauthenticated.contains("mfa-required"))
        let change = try #require(Wire.operation(doc, "POST", "/v1/auth/email/change"))
        #expect(Wire.response(change, 403) != nil)
    }

    @Test func tokenResponseSchema() throws {
        let doc = try Fixture.wire(Fixture.anonymous)
        let token = try #require(Wire.component(doc, "TokenResponse"))
        let members: Set<String> = ["access_token", "token_type", "expires_in", "refresh_token", "user"]
        #expect(Wire.required(token) == members)
        let props = Wire.properties(token)
        #expect(Wire.allowed(props["token_type"]) == ["Bearer"])
        #expect((props["expires_in"] as? [String: Any])?["type"] as? String == "integer")
        #expect((props["access_token"] as? [String: Any])?["type"] as? String == "string")
        #expect((props["user"] as? [String: Any])?["$ref"] as? String == "#/components/schemas/User")
        for path in ["/v1/auth/login", "/v1/auth/refresh"] {
            let op = try #require(Wire.operation(doc, "POST", path))
            let ok = try #require(Wire.response(op, 200))
            let ref =
                (((ok["content"] as? [String: Any])?["application/json"] as? [String: Any])?["schema"]
                as? [String: Any])?["$ref"] as? String
            #expect(ref == "#/components/schemas/TokenResponse", "\(path)")
            #expect((ok["headers"] as? [String: Any])?["Cache-Control"] != nil, "\(path): no-store")
        }
        // The user as the auth endpoints answer it, even to a caller who may not read `users`.
        let user = try #require(Wire.component(doc, "User"))
        #expect(Wire.properties(user)["password"] == nil)
        #expect(Wire.required(user).isSuperset(of: ["id", "email", "verified", "roles", "disabled", "name"]))
        #expect((Wire.properties(user)["email"] as? [String: Any])?["readOnly"] as? Bool == true)
        let keys = try #require(Wire.properties(Wire.component(doc, "JWKS"))["keys"] as? [String: Any])
        let key = Wire.properties(keys["items"] as? [String: Any])
        #expect(Wire.allowed(key["alg"]) == ["EdDSA"])
        #expect(Wire.allowed(key["crv"]) == ["Ed25519"])
        #expect(key["kid"] != nil && key["x"] != nil)
    }

    @Test func adminUserEndpointsAreForAdminsOnly() throws {
        let admin = try Fixture.wire(Fixture.admin)
        let ops = operations(admin)
        for op in Self.adminIdentity { #expect(ops.contains(op), "\(op)") }
        for p in [Fixture.anonymous, Fixture.reader, Fixture.editor] {
            let doc = try Fixture.wire(p)
            for op in Self.adminIdentity { #expect(!operations(doc).contains(op), "\(op) for \(p.kind)") }
            #expect(Wire.component(doc, "AdminUserPatch") == nil && Wire.component(doc, "AuditEntry") == nil)
        }
        let patch = try #require(Wire.component(admin, "AdminUserPatch"))
        #expect(Set(Wire.properties(patch).keys) == ["roles", "disabled", "verified"])
        #expect(patch["additionalProperties"] as? Bool == false)
        let roles = try #require(Wire.properties(patch)["roles"] as? [String: Any])
        #expect(Wire.allowed(roles["items"]) == ["editor"], "the schema's roles")
        let update = try #require(Wire.operation(admin, "PATCH", "/v1/admin/users/{id}"))
        let content = try #require((update["requestBody"] as? [String: Any])?["content"] as? [String: Any])
        #expect(content["application/merge-patch+json"] != nil)
        let list = try #require(Wire.operation(admin, "GET", "/v1/admin/users"))
        let query = (list["parameters"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(Set(query).isSuperset(of: ["filter", "sort", "limit", "cursor"]))
        let audit = try #require(Wire.operation(admin, "GET", "/v1/admin/audit"))
        let auditQuery = Set((audit["parameters"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String })
        #expect(auditQuery == ["limit", "cursor", "actor", "action", "collection"])
    }

    @Test func usersWriteSchemasProtectManagedFields() throws {
        let managed = ["email", "verified", "roles", "disabled"]
        // A signed-in user may update their own record: the write schemas exist, managed fields read-only.
        let reader = try Fixture.wire(Fixture.reader)
        #expect(operations(reader).contains("PATCH /v1/users/{id}"))
        for name in ["users", "users_replace", "users_patch"] {
            let schema = try #require(Wire.component(reader, name), "\(name)")
            #expect(Wire.properties(schema)["password"] == nil, "\(name)")
            for f in managed {
                let p = try #require(Wire.properties(schema)[f] as? [String: Any], "\(name).\(f)")
                #expect(p["readOnly"] as? Bool == true, "\(name).\(f)")
            }
            #expect((Wire.properties(schema)["name"] as? [String: Any])?["readOnly"] == nil, "\(name).name is writable")
        }
        #expect(!Wire.required(Wire.component(reader, "users_replace")).contains("email"), "a replace may omit it")
        #expect(
            (schemaProperty(reader, "users_patch", "roles")?["description"] as? String)?.contains("Managed") == true
        )

        // Admins write them.
        let admin = try Fixture.wire(Fixture.admin)
        for name in ["users", "users_create", "users_replace", "users_patch"] {
            let schema = try #require(Wire.component(admin, name), "\(name)")
            #expect(Wire.properties(schema)["password"] == nil, "\(name)")
            for f in managed {
                #expect((Wire.properties(schema)[f] as? [String: Any])?["readOnly"] == nil, "\(name).\(f)")
            }
        }
        #expect(Wire.required(Wire.component(admin, "users_create")).contains("email"))
    }
}

// MARK: - openapi-spec-validator

enum SpecValidator {
    static var executable: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/openapi-spec-validator"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    static var required: Bool { ProcessInfo.processInfo.environment["CI"] != nil }
}

@Suite struct OpenAPISpecValidatorTests {
    @Test(
        "openapi-spec-validator accepts the document",
        .enabled(
            if: SpecValidator.executable != nil || SpecValidator.required,
            "openapi-spec-validator is not on PATH (pip install openapi-spec-validator)"
        ),
        arguments: ["anonymous", "reader", "editor", "admin", "clash"]
    )
    func validatorAccepts(_ who: String) async throws {
        guard let executable = SpecValidator.executable else {
            Issue.record("openapi-spec-validator is not on PATH, and CI is set")
            return
        }
        let principals = [
            "anonymous": Fixture.anonymous, "reader": Fixture.reader, "editor": Fixture.editor, "admin": Fixture.admin,
        ]
        let bytes =
            try principals[who].map {
                OpenAPIGenerator.json(schema: try Fixture.compiled(), principal: $0, serverURL: "http://127.0.0.1:8080")
            } ?? OpenAPIGenerator.json(document: try Fixture.clashDocument())
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            "basalt-openapi-\(who)-\(UUID().uuidString).json"
        )
        try Data(bytes).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }

        let result = try await Subprocess.run([executable, file.path])
        let text = result.output
        #expect(result.succeeded, "\(text)")
        #expect(text.contains("OK"), "\(text)")
    }
}

// MARK: - HTML pages

@Suite struct DocsAndProblemPagesTests {
    @Test func docsPageRendersAndEscapes() throws {
        let html = DocsPage.html(document: try Fixture.document(Fixture.admin))
        #expect(html.hasPrefix("<!doctype html>"))
        #expect(!html.contains("<script"))
        #expect(!html.contains("<b>hidden</b>"), "user-defined values are escaped")
        #expect(html.contains("&lt;b&gt;hidden&lt;/b&gt;"))
        #expect(html.contains("^(?:[A-Za-z&lt;&gt;&amp; ].*)$"))
        #expect(html.contains("id=\"op-list_posts\""))
        #expect(html.contains("id=\"op-head_get_posts\""))
        #expect(html.contains("id=\"schema-posts_create\""))
        #expect(html.contains("maxLength 200"))
        #expect(html.contains("/v1/admin/schema"))

        let anonymous = DocsPage.html(document: try Fixture.document(Fixture.anonymous))
        #expect(!anonymous.contains("/v1/admin"))
        #expect(!anonymous.contains("secrets"))
    }

    @Test func everyCodeHasAProblemPage() {
        for code in BasaltError.Code.all {
            let page = ProblemPages.html(slug: code.slug)
            #expect(page != nil, "\(code)")
            #expect(page?.contains("<h1>\(ProblemPages.title(code))</h1>") == true, "\(code)")
            #expect(page?.contains("<span class=\"status\">\(ProblemPages.status(code))</span>") == true, "\(code)")
            #expect(ProblemPages.title(code) == Problem.title(code), "the page and the problem body agree")
            #expect(ProblemPages.status(code) == Int(Problem.status(code).code), "\(code)")
        }
        #expect(ProblemPages.html(slug: "no-such-code") == nil)
        #expect(ProblemPages.html(slug: "<script>") == nil)
        #expect(ProblemPages.title(.validationFailed) == "Validation failed")
        #expect(ProblemPages.title(.notFound) == "Not found")
    }
}

/// The fixed part of the document follows the declared HTTP surface (one description of it).
@Suite struct OpenAPISurfaceTests {
    @Test func everyDeclaredEndpointIsDocumentedAndNothingElse() async throws {
        try await TestBackend.sqlite.withRuntime { rt, _ in
            let surface = rt.makeSurface()
            let doc = OpenAPIGenerator.json(schema: rt.schemas.current, principal: Fixture.admin, serverURL: "/", surface: surface)
            let ops = operations(try #require(try JSONSerialization.jsonObject(with: Data(doc)) as? [String: Any]))
            // Record routes are documented per collection; every other declared endpoint, as declared.
            let declared = Set(
                surface.endpoints.filter { $0.inOpenAPI && !$0.path.hasPrefix("/v1/:collection") }.map { e in
                    "\(e.method.rawValue) "
                        + e.path.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }
                        .reduce("") { $0 + "/" + $1 }
                }
            )
            let fixed = ops.filter { !$0.hasSuffix("/v1/users") && !$0.contains("/v1/users/{id}") && !$0.hasPrefix("HEAD ") }
            #expect(declared.subtracting(fixed).isEmpty, "declared but undocumented: \(declared.subtracting(fixed).sorted())")
            #expect(fixed.subtracting(declared).isEmpty, "documented but not declared: \(fixed.subtracting(declared).sorted())")
            // Admin endpoints are for admins only, as their declaration says.
            let anon = OpenAPIGenerator.json(schema: rt.schemas.current, principal: Fixture.anonymous, serverURL: "/", surface: surface)
            let anonOps = operations(try #require(try JSONSerialization.jsonObject(with: Data(anon)) as? [String: Any]))
            #expect(!anonOps.contains { $0.contains("/v1/admin/") } && anonOps.contains("POST /v1/auth/login"))
        }
    }
}
