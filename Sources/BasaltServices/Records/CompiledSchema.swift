public import BasaltCore
public import BasaltStorage

/// Everything derived from one schema version, computed once when it is installed: table SQL,
/// parsed access rules, reverse relations, unique-index names. Requests read it without locking.
public final class CompiledSchema: Sendable {
    public let schema: Schema
    public let version: Int64
    public let tables: [String: RecordTable]
    /// Parsed `where` rules per collection and action, aligned with the grants.
    let rules: [String: [AccessAction: [FilterExpr?]]]
    /// Relations pointing at each collection: (referring collection, field, on_delete).
    public let referrers: [String: [(collection: String, field: String, onDelete: OnDelete)]]
    /// Unique index name → (collection, fields), to name the field of a 409.
    public let uniqueIndexes: [String: (collection: String, fields: [String])]
    /// Role → itself and every role it inherits.
    public let roleClosure: [String: Set<String>]

    public init(schema: Schema, version: Int64, dialect: any SQLDialect) throws(BasaltError) {
        self.schema = schema
        self.version = version
        var tables: [String: RecordTable] = [:]
        var rules: [String: [AccessAction: [FilterExpr?]]] = [:]
        var referrers: [String: [(collection: String, field: String, onDelete: OnDelete)]] = [:]
        var unique: [String: (collection: String, fields: [String])] = [:]
        let ddl = TableDDL(dialect: dialect)
        var errors: [FieldError] = []
        // `@auth.<field>`: the id and every field of the user record.
        var authFields: [String: ValueKind] = ["id": .id]
        for f in schema.collection(BuiltinCollections.usersName)?.fields ?? [] { authFields[f.name] = ValueKind(f.type) }
        for c in schema.collections {
            tables[c.name] = RecordTable(collection: c, dialect: dialect)
            var byAction: [AccessAction: [FilterExpr?]] = [:]
            for a in AccessAction.allCases {
                byAction[a] = c.access[a].enumerated().map { (n, g) -> FilterExpr? in
                    guard let rule = g.rule else { return nil }
                    do {
                        return try FilterChecker.check(
                            rule,
                            collection: c,
                            schema: schema,
                            allowAuth: true,
                            allowNew: a == .create || a == .update,
                            authFields: authFields
                        )
                    } catch {
                        errors.append(
                            FieldError(
                                field: "/collections/\(c.name)/access/\(a.rawValue)/\(n)/where",
                                code: .invalid,
                                message: "\(error)"
                            )
                        )
                        return nil
                    }
                }
            }
            rules[c.name] = byAction
            for f in c.fields where f.type == .relation {
                referrers[f.target ?? "", default: []].append((c.name, f.name, f.onDelete))
            }
            for ix in ddl.indexes(c) where !ix.uniqueFields.isEmpty {
                unique[ix.name] = (c.name, ix.uniqueFields)
            }
        }
        if !errors.isEmpty { throw BasaltError.validation(errors) }
        var closure: [String: Set<String>] = [:]
        let inheritance = Dictionary(schema.roles.map { ($0.name, $0.inherits) }, uniquingKeysWith: { first, _ in first })
        for r in schema.roles {
            var seen: Set<String> = [r.name]
            var stack = r.inherits
            while let n = stack.popLast() {
                if seen.insert(n).inserted { stack += inheritance[n] ?? [] }
            }
            closure[r.name] = seen
        }
        self.tables = tables
        self.rules = rules
        self.referrers = referrers
        self.uniqueIndexes = unique
        self.roleClosure = closure
    }

    public func requireTable(_ name: String) throws(BasaltError) -> RecordTable {
        guard let t = tables[name] else { throw BasaltError(.notFound, "There is no collection named \(name)") }
        return t
    }

    public func effectiveRoles(_ roles: Set<String>) -> Set<String> {
        roles.reduce(into: Set<String>()) { $0.formUnion(roleClosure[$1] ?? [$1]) }
    }

    /// What a caller may do for an action on a collection.
    public enum Access: Sendable {
        /// Every row.
        case all
        /// Rows matching any of these predicates.
        case rows([FilterExpr])
        /// No grant's `who` matches.
        case denied
    }

    public func access(_ action: AccessAction, on collection: String, for p: Principal) -> Access {
        // An OAuth token's scopes come before everything, bypasses included: they only narrow.
        if let grant = p.oauth, !grant.allows(action, on: collection) { return .denied }
        if p.bypassesGrants { return .all }
        guard let c = tables[collection]?.collection else { return .denied }
        let grants = c.access[action]
        let parsed = rules[collection]?[action] ?? []
        var predicates: [FilterExpr] = []
        var matched = false
        for (i, g) in grants.enumerated() where Self.whoMatches(g.who, p) {
            matched = true
            guard let rule = parsed[i] else { return .all }
            predicates.append(rule)
        }
        return matched ? .rows(predicates) : .denied
    }

    static func whoMatches(_ who: Grant.Who, _ p: Principal) -> Bool {
        switch who {
        case .public: true
        case .authenticated: !p.isAnonymous
        case .roles(let rs): !p.roles.isDisjoint(with: rs)
        }
    }

    /// Whether the grants for `action` are an unconditional `public` (responses may be shared by caches).
    public func isUnconditionallyPublic(_ action: AccessAction, on collection: String) -> Bool {
        guard let c = tables[collection]?.collection else { return false }
        return c.access[action].contains { $0.who == .public && $0.rule == nil }
    }
}
