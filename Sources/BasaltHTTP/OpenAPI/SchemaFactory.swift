import BasaltAuth
import BasaltCore
import BasaltServices
import Foundation
import OpenAPIKit

extension OpenAPIGenerator {
    // MARK: - Schemas

    /// JSON Schemas derived from collection definitions.
    struct SchemaFactory: Namespace {
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
