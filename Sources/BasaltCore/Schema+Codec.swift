// Schema ⇄ JSON, in the document shape of API.md §12 (the YAML file uses the same tree).

extension Schema {
    /// Decodes and validates a whole schema document. Every problem is reported as a field error
    /// whose pointer locates it in the document; a schema with any error is refused whole.
    public static func decode(_ json: JSONValue) throws(BasaltError) -> Schema {
        var errors: [FieldError] = []
        guard case .object(let root) = json else {
            throw BasaltError.validation([FieldError(field: "", code: .type, message: "the schema must be an object")])
        }
        for (key, _) in root where key != "collections" && key != "roles" {
            errors.append(FieldError(field: FieldError.pointer(key), code: .unknownField, message: "unknown member \(key)"))
        }
        var schema = Schema()
        if let rolesValue = root["roles"], !rolesValue.isNull {
            if case .object(let roles) = rolesValue, roles.count > SchemaNames.maxRoles {
                errors.append(FieldError(field: "/roles", code: .max, message: "at most \(SchemaNames.maxRoles) roles"))
            } else if case .object(let roles) = rolesValue {
                for (name, def) in roles {
                    let ptr = "/roles/\(name)"
                    guard SchemaNames.isValidName(name) else {
                        errors.append(FieldError(field: ptr, code: .pattern, message: "invalid role name \(name)"))
                        continue
                    }
                    var inherits: [String] = []
                    if case .object(let o) = def, let inh = o["inherits"] {
                        if let list = inh.arrayValue?.compactMap(\.stringValue), list.count == inh.arrayValue?.count {
                            inherits = list
                        } else {
                            errors.append(FieldError(field: ptr + "/inherits", code: .type, message: "inherits must be a list of role names"))
                        }
                    } else if !def.isNull, def.objectValue == nil {
                        errors.append(FieldError(field: ptr, code: .type, message: "a role must be an object"))
                    }
                    schema.roles.append(RoleDefinition(name: name, inherits: inherits))
                }
            } else {
                errors.append(FieldError(field: "/roles", code: .type, message: "roles must be an object"))
            }
        }
        if let collectionsValue = root["collections"], !collectionsValue.isNull {
            if case .object(let cols) = collectionsValue, cols.count > SchemaNames.maxCollections {
                errors.append(FieldError(field: "/collections", code: .max, message: "at most \(SchemaNames.maxCollections) collections"))
            } else if case .object(let cols) = collectionsValue {
                for (name, def) in cols {
                    if let c = CollectionSchema.decode(name: name, def, pointer: "/collections/\(name)", errors: &errors) {
                        schema.collections.append(c)
                    }
                }
            } else {
                errors.append(FieldError(field: "/collections", code: .type, message: "collections must be an object"))
            }
        }
        schema.validateReferences(errors: &errors)
        if !errors.isEmpty { throw BasaltError.validation(errors) }
        return schema
    }

    /// Checks what no single collection can: relation targets, role names and inheritance.
    /// Schemas assembled in code (a collection added through the admin API) go through this.
    public func validate() throws(BasaltError) {
        var errors: [FieldError] = []
        validateReferences(errors: &errors)
        if !errors.isEmpty { throw BasaltError.validation(errors) }
    }

    /// Cross-collection checks: relation targets, role inheritance, index fields.
    func validateReferences(errors: inout [FieldError]) {
        let roleNames = Set(roles.map(\.name))
        let inheritance = Dictionary(roles.map { ($0.name, $0.inherits) }, uniquingKeysWith: { first, _ in first })
        let collectionNames = Set(collections.map(\.name))
        for r in roles {
            for parent in r.inherits where !roleNames.contains(parent) {
                errors.append(FieldError(field: "/roles/\(r.name)/inherits", code: .notFound, message: "unknown role \(parent)"))
            }
        }
        // Role inheritance must be acyclic.
        for r in roles {
            var seen: Set<String> = []
            var stack = r.inherits
            while let next = stack.popLast() {
                if next == r.name {
                    errors.append(FieldError(field: "/roles/\(r.name)/inherits", code: .invalid, message: "role inheritance has a cycle"))
                    break
                }
                if seen.insert(next).inserted { stack += inheritance[next] ?? [] }
            }
        }
        for c in collections {
            for f in c.fields where f.type == .relation {
                // Built-in collections (users) exist in every schema, declared or not.
                if let t = f.target, !collectionNames.contains(t), t != BuiltinCollections.usersName {
                    errors.append(
                        FieldError(
                            field: "/collections/\(c.name)/fields/\(f.name)/collection",
                            code: .notFound,
                            message: "unknown collection \(t)"
                        )
                    )
                }
            }
            for g in AccessAction.allCases.flatMap({ c.access[$0] }) {
                if case .roles(let rs) = g.who {
                    for r in rs where !roleNames.contains(r) {
                        errors.append(FieldError(field: "/collections/\(c.name)/access", code: .notFound, message: "unknown role \(r)"))
                    }
                }
            }
        }
    }

    public func encode() -> JSONValue {
        var cols = JSONObject()
        for c in collections { cols.append(c.name, c.encodeBody()) }
        var roleObj = JSONObject()
        for r in roles {
            var o = JSONObject()
            if !r.inherits.isEmpty { o.append("inherits", .array(r.inherits.map { .string($0) })) }
            roleObj.append(r.name, .object(o))
        }
        var root = JSONObject()
        root.append("collections", .object(cols))
        root.append("roles", .object(roleObj))
        return .object(root)
    }
}

extension CollectionSchema {
    /// Decodes one collection definition (`{fields, indexes, access}`). A bad name is reported at
    /// `namePointer` (where the name was written: a key of `collections`, or a `name` member).
    public static func decode(
        name: String,
        _ json: JSONValue,
        pointer ptr: String,
        namePointer: String? = nil,
        errors: inout [FieldError]
    ) -> CollectionSchema? {
        let before = errors.count
        let namePtr = namePointer ?? ptr
        if !SchemaNames.isValidName(name) {
            errors.append(FieldError(field: namePtr, code: .pattern, message: "collection names match ^[a-z][a-z0-9_]{0,62}$"))
        } else if SchemaNames.reservedCollections.contains(name) || name.hasPrefix("_") {
            errors.append(FieldError(field: namePtr, code: .invalid, message: "\(name) is a reserved name"))
        } else if let prefix = SchemaNames.reservedPrefixes.first(where: { name.hasPrefix($0) }) {
            // The storage engines' own namespaces: SQLite refuses such tables, PostgreSQL reserves them.
            errors.append(FieldError(field: namePtr, code: .invalid, message: "names starting with \(prefix) are reserved"))
        }
        guard case .object(let o) = json else {
            errors.append(FieldError(field: ptr, code: .type, message: "a collection must be an object"))
            return nil
        }
        for (k, _) in o where !["fields", "indexes", "access", "name"].contains(k) {
            errors.append(FieldError(field: ptr + "/" + k, code: .unknownField, message: "unknown member \(k)"))
        }
        var fields: [FieldSchema] = []
        if case .object(let fo)? = o["fields"], fo.count > SchemaNames.maxFields {
            errors.append(FieldError(field: ptr + "/fields", code: .max, message: "at most \(SchemaNames.maxFields) fields"))
        } else if case .object(let fo)? = o["fields"] {
            for (fname, fdef) in fo {
                if let f = FieldSchema.decode(name: fname, fdef, pointer: ptr + "/fields/" + fname, errors: &errors) {
                    fields.append(f)
                }
            }
        } else if let fv = o["fields"], !fv.isNull {
            errors.append(FieldError(field: ptr + "/fields", code: .type, message: "fields must be an object"))
        }
        var indexes: [IndexSchema] = []
        if case .array(let ia)? = o["indexes"], ia.count > SchemaNames.maxIndexes {
            errors.append(FieldError(field: ptr + "/indexes", code: .max, message: "at most \(SchemaNames.maxIndexes) indexes"))
        } else if case .array(let ia)? = o["indexes"] {
            for (n, iv) in ia.enumerated() {
                let ip = ptr + "/indexes/\(n)"
                var names: [JSONValue] = []
                var unique = false
                switch iv {
                case .array(let a): names = a
                case .object(let io):
                    names = io["fields"]?.arrayValue ?? []
                    unique = io["unique"]?.boolValue ?? false
                    for (k, _) in io where k != "fields" && k != "unique" {
                        errors.append(FieldError(field: ip + "/" + k, code: .unknownField, message: "unknown member \(k)"))
                    }
                default: break
                }
                let fieldNames = names.compactMap(\.stringValue)
                if fieldNames.isEmpty || fieldNames.count != names.count {
                    errors.append(FieldError(field: ip, code: .type, message: "an index lists one or more field names"))
                    continue
                }
                for fnm in fieldNames where fields.first(where: { $0.name == fnm }) == nil && SystemField(rawValue: fnm) == nil {
                    errors.append(FieldError(field: ip, code: .notFound, message: "unknown field \(fnm)"))
                }
                if Set(fieldNames).count != fieldNames.count {
                    errors.append(FieldError(field: ip, code: .invalid, message: "an index names a field once"))
                }
                indexes.append(IndexSchema(fields: fieldNames, unique: unique))
            }
        } else if let iv = o["indexes"], !iv.isNull {
            errors.append(FieldError(field: ptr + "/indexes", code: .type, message: "indexes must be a list"))
        }
        var access = AccessRules()
        if case .object(let ao)? = o["access"] {
            for (k, v) in ao {
                let ap = ptr + "/access/" + k
                guard let action = AccessAction(rawValue: k) else {
                    errors.append(FieldError(field: ap, code: .unknownField, message: "unknown action \(k)"))
                    continue
                }
                if case .array(let grants) = v, grants.count > SchemaNames.maxGrants {
                    // Every request of the action walks its grants.
                    errors.append(FieldError(field: ap, code: .max, message: "at most \(SchemaNames.maxGrants) grants an action"))
                    continue
                }
                guard case .array(let grants) = v else {
                    errors.append(FieldError(field: ap, code: .type, message: "grants must be a list"))
                    continue
                }
                for (n, g) in grants.enumerated() {
                    if let grant = Grant.decode(g, pointer: ap + "/\(n)", errors: &errors) { access[action].append(grant) }
                }
            }
        } else if let av = o["access"], !av.isNull {
            errors.append(FieldError(field: ptr + "/access", code: .type, message: "access must be an object"))
        }
        guard errors.count == before else { return nil }
        return CollectionSchema(name: name, fields: fields, indexes: indexes, access: access)
    }

    /// `{fields, indexes, access}` as in the schema document.
    public func encodeBody() -> JSONValue {
        var fo = JSONObject()
        for f in fields { fo.append(f.name, f.encode()) }
        var o = JSONObject()
        o.append("fields", .object(fo))
        o.append(
            "indexes",
            .array(
                indexes.map { ix in
                    ix.unique
                        ? .object(JSONObject([("fields", .array(ix.fields.map { .string($0) })), ("unique", .bool(true))]))
                        : .array(ix.fields.map { .string($0) })
                }
            )
        )
        var ao = JSONObject()
        for a in AccessAction.allCases where !access[a].isEmpty {
            ao.append(a.rawValue, .array(access[a].map { $0.encode() }))
        }
        o.append("access", .object(ao))
        return .object(o)
    }

    /// The admin API's collection object: `{name, fields, indexes, access}`.
    public func encodeWithName() -> JSONValue {
        var o = JSONObject([("name", .string(name))])
        if case .object(let body) = encodeBody() { o.members += body.members }
        return .object(o)
    }
}

extension FieldSchema {
    static let knownKeys: Set<String> = [
        "type", "required", "unique", "min", "max", "pattern", "default", "values", "collection", "on_delete",
    ]

    public static func decode(name: String, _ json: JSONValue, pointer ptr: String, errors: inout [FieldError]) -> FieldSchema? {
        let before = errors.count
        if !SchemaNames.isValidName(name) {
            errors.append(FieldError(field: ptr, code: .pattern, message: "field names match ^[a-z][a-z0-9_]{0,62}$"))
        } else if SchemaNames.reservedFields.contains(name) {
            errors.append(FieldError(field: ptr, code: .invalid, message: "\(name) is a reserved field name"))
        }
        guard case .object(let o) = json else {
            errors.append(FieldError(field: ptr, code: .type, message: "a field must be an object"))
            return nil
        }
        for (k, _) in o where !knownKeys.contains(k) {
            errors.append(FieldError(field: ptr + "/" + k, code: .unknownField, message: "unknown member \(k)"))
        }
        guard let typeName = o["type"]?.stringValue, let type = FieldType(rawValue: typeName) else {
            errors.append(
                FieldError(
                    field: ptr + "/type",
                    code: .enum,
                    message: "type is one of \(FieldType.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            )
            return nil
        }
        var f = FieldSchema(name: name, type: type)
        func bool(_ k: String) -> Bool {
            guard let v = o[k], !v.isNull else { return false }
            if let b = v.boolValue { return b }
            errors.append(FieldError(field: ptr + "/" + k, code: .type, message: "\(k) must be a boolean"))
            return false
        }
        func number(_ k: String) -> Double? {
            guard let v = o[k], !v.isNull else { return nil }
            if let d = v.numberValue { return d }
            errors.append(FieldError(field: ptr + "/" + k, code: .type, message: "\(k) must be a number"))
            return nil
        }
        f.required = bool("required")
        f.unique = bool("unique")
        f.min = number("min")
        f.max = number("max")
        if let mn = f.min, let mx = f.max, mn > mx {
            errors.append(FieldError(field: ptr + "/min", code: .invalid, message: "min is greater than max"))
        }
        if [.boolean, .json, .relation, .select, .datetime].contains(type), f.min != nil || f.max != nil {
            errors.append(FieldError(field: ptr, code: .invalid, message: "min and max do not apply to \(type.rawValue)"))
        }
        if let p = o["pattern"], !p.isNull {
            if let s = p.stringValue, type == .text {
                if (try? Regex(s)) == nil {
                    errors.append(FieldError(field: ptr + "/pattern", code: .pattern, message: "pattern is not a valid regular expression"))
                }
                f.pattern = s
            } else {
                errors.append(FieldError(field: ptr + "/pattern", code: .type, message: "pattern is a string, for text fields"))
            }
        }
        if type == .select {
            if let vs = o["values"]?.arrayValue, !vs.isEmpty, vs.allSatisfy({ $0.stringValue != nil }) {
                f.values = vs.compactMap(\.stringValue)
                if Set(f.values).count != f.values.count {
                    errors.append(FieldError(field: ptr + "/values", code: .invalid, message: "values must be distinct"))
                }
            } else {
                errors.append(FieldError(field: ptr + "/values", code: .required, message: "a select field lists its values"))
            }
        } else if o["values"] != nil {
            errors.append(FieldError(field: ptr + "/values", code: .invalid, message: "values apply to select fields"))
        }
        if type == .relation {
            if let t = o["collection"]?.stringValue {
                f.target = t
            } else {
                errors.append(FieldError(field: ptr + "/collection", code: .required, message: "a relation names its collection"))
            }
            if let od = o["on_delete"], !od.isNull {
                if let s = od.stringValue, let v = OnDelete(rawValue: s) {
                    f.onDelete = v
                } else {
                    errors.append(FieldError(field: ptr + "/on_delete", code: .enum, message: "on_delete is restrict, cascade or set_null"))
                }
            }
            if f.onDelete == .setNull, f.required {
                errors.append(FieldError(field: ptr + "/on_delete", code: .invalid, message: "set_null needs an optional field"))
            }
        } else if o["collection"] != nil || o["on_delete"] != nil {
            errors.append(FieldError(field: ptr + "/collection", code: .invalid, message: "collection and on_delete apply to relation fields"))
        }
        if let d = o["default"], !d.isNull {
            if type == .relation {
                errors.append(FieldError(field: ptr + "/default", code: .invalid, message: "a relation has no default"))
            } else if case .failure(let e) = FieldValidator.check(d, field: f, pointer: ptr + "/default") {
                errors.append(e)
            } else {
                f.defaultValue = d
            }
        }
        if type == .json, f.unique {
            errors.append(FieldError(field: ptr + "/unique", code: .invalid, message: "json fields cannot be unique"))
        }
        return errors.count == before ? f : nil
    }

    public func encode() -> JSONValue {
        var o = JSONObject([("type", .string(type.rawValue))])
        if required { o.append("required", true) }
        if unique { o.append("unique", true) }
        if let min { o.append("min", Self.number(min)) }
        if let max { o.append("max", Self.number(max)) }
        if let pattern { o.append("pattern", .string(pattern)) }
        if !values.isEmpty { o.append("values", .array(values.map { .string($0) })) }
        if let target { o.append("collection", .string(target)) }
        if type == .relation { o.append("on_delete", .string(onDelete.rawValue)) }
        if let defaultValue { o.append("default", defaultValue) }
        return .object(o)
    }

    static func number(_ d: Double) -> JSONValue {
        if d.rounded() == d, abs(d) < 9e15 { return .int(Int64(d)) }
        return .double(d)
    }
}

extension Grant {
    static func decode(_ json: JSONValue, pointer ptr: String, errors: inout [FieldError]) -> Grant? {
        guard case .object(let o) = json else {
            errors.append(FieldError(field: ptr, code: .type, message: "a grant is an object"))
            return nil
        }
        for (k, _) in o where !["who", "roles", "where"].contains(k) {
            errors.append(FieldError(field: ptr + "/" + k, code: .unknownField, message: "unknown member \(k)"))
        }
        var who: Who
        if let w = o["who"]?.stringValue {
            switch w {
            case "public": who = .public
            case "authenticated": who = .authenticated
            default:
                errors.append(FieldError(field: ptr + "/who", code: .enum, message: "who is public or authenticated"))
                return nil
            }
            if o["roles"] != nil {
                errors.append(FieldError(field: ptr + "/roles", code: .invalid, message: "a grant has who or roles, not both"))
            }
        } else if let rs = o["roles"]?.arrayValue, !rs.isEmpty, rs.allSatisfy({ $0.stringValue != nil }) {
            who = .roles(rs.compactMap(\.stringValue))
        } else {
            errors.append(FieldError(field: ptr, code: .required, message: "a grant names who or roles"))
            return nil
        }
        var rule: String?
        if let r = o["where"], !r.isNull {
            guard let s = r.stringValue else {
                errors.append(FieldError(field: ptr + "/where", code: .type, message: "where is a filter expression"))
                return nil
            }
            rule = s
        }
        return Grant(who: who, rule: rule)
    }

    func encode() -> JSONValue {
        var o = JSONObject()
        switch who {
        case .public: o.append("who", "public")
        case .authenticated: o.append("who", "authenticated")
        case .roles(let rs): o.append("roles", .array(rs.map { .string($0) }))
        }
        if let rule { o.append("where", .string(rule)) }
        return .object(o)
    }
}
