public import BasaltCore
public import BasaltStorage
import Synchronization

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
    /// The fields of the users collection: `@auth.<field>` in rules.
    let authFields: [String: FieldSchema]
    /// Rules compiled to SQL as callers need them (`ruleTemplate`).
    private let templates = Mutex<[RuleKey: [SQLTemplate]]>([:])
    /// More distinct compiled rules than any schema has grants times null patterns: past it,
    /// rules compile per request rather than the cache growing without bound.
    static let templateLimit = 4096

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
        let users = schema.collection(BuiltinCollections.usersName)?.fields ?? []
        self.authFields = Dictionary(users.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
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
        case rows(Rules)
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
        var mask: UInt64 = 0
        for (i, g) in grants.enumerated() where Self.whoMatches(g.who, p) {
            matched = true
            guard let rule = parsed[i] else { return .all }
            predicates.append(rule)
            if i < 64 { mask |= 1 << UInt64(i) }
        }
        // Past 64 grants the mask cannot name them: such rules are compiled per request.
        let key = grants.count <= 64 ? RuleKey(collection: collection, action: action, grants: mask) : nil
        return matched ? .rows(Rules(predicates: predicates, key: key)) : .denied
    }

    /// The grants' predicates OR-ed and compiled once per set of grants and per pattern of null
    /// `@auth` values, for conditions on the table's own rows with hops read as stored (the
    /// rules' meaning, API.md §9); nil when it cannot be kept.
    func ruleTemplate(_ rules: Rules, auth: (String) -> FilterLiteral, compiler: () -> FilterCompiler) -> SQLTemplate? {
        guard let key = rules.key else { return nil }
        let cached = templates.withLock { $0[key]?.first { $0.fits(auth) } }
        if let cached { return cached }
        let template = SQLTemplate(rules.expr, compiler: compiler())
        return templates.withLock { all in
            guard all.count < Self.templateLimit else { return template }
            all[key, default: []].append(template)
            return template
        }
    }

    /// The predicates of the grants a caller matched for one action on one collection.
    public struct Rules: Sendable {
        public let predicates: [FilterExpr]
        /// Which grants they are: nil past 64 grants (their compiled SQL is not kept).
        let key: RuleKey?
        /// Any of them.
        public var expr: FilterExpr { predicates.count == 1 ? predicates[0] : .or(predicates) }
    }

    struct RuleKey: Hashable, Sendable {
        let collection: String
        let action: AccessAction
        let grants: UInt64
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
