public import BasaltCore
import BasaltStorage

/// What one request is judged against, read once: the schema version and the caller, whose
/// record gives `@auth.*`. Every rule of the request compiles through it, so lists, views,
/// expansions and the guards of writes share one semantics (API.md §3, §9).
public struct RequestScope: Sendable {
    public let schema: CompiledSchema
    public let principal: Principal
    let dialect: any SQLDialect

    init(schema: CompiledSchema, principal: Principal, dialect: any SQLDialect) {
        self.schema = schema
        self.principal = principal
        self.dialect = dialect
    }

    /// `@auth.<name>`: the id or a field of the signed-in user's record. Compiled rules read only
    /// the values they bind, one by one, rather than every field of the record per request.
    func authValue(_ name: String) -> FilterLiteral {
        if name == "id" { return principal.id.flatMap(RecordID.normalize).map { .uuid($0) } ?? .null }
        guard let user = principal.user, let field = schema.authFields[name] else { return .null }
        return Self.literal(user[name] ?? .null, field.type)
    }

    /// Every `@auth.*` value, for rules compiled per request.
    var authValues: [String: FilterLiteral] {
        var v: [String: FilterLiteral] = ["id": authValue("id")]
        for name in schema.authFields.keys { v[name] = authValue(name) }
        return v
    }

    /// A stored JSON value as a filter literal of the field's type.
    static func literal(_ v: JSONValue, _ type: FieldType) -> FilterLiteral {
        switch v {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .string(let s):
            switch type {
            case .datetime: return Timestamp(rfc3339: s).map(FilterLiteral.timestamp) ?? .string(s)
            case .relation: return .uuid(s)
            default: return .string(s)
            }
        default: return .string(v.serialized())
        }
    }

    // MARK: - Grants

    public func access(_ action: AccessAction, on collection: String) -> CompiledSchema.Access {
        schema.access(action, on: collection, for: principal)
    }

    /// 401 for anonymous callers, 403 for known ones (API.md §9).
    func deny() -> BasaltError {
        principal.isAnonymous
            ? BasaltError(.unauthenticated, "Credentials are required for this action")
            : BasaltError(.forbidden, "No grant allows this action")
    }

    /// The rows `action` lets the caller reach: nil for all of them; throws when no grant's
    /// `who` matches.
    func rows(_ action: AccessAction, on collection: String) throws(BasaltError) -> SQLCondition? {
        switch access(action, on: collection) {
        case .all: return nil
        case .rows(let ps): return condition(ps)
        case .denied: throw deny()
        }
    }

    /// The grants' predicates, OR-ed, as a condition on the row `t`: compiled once per schema
    /// version with the rules' own compiler, by `compiler` where the record or `@new` differ.
    func condition(_ grants: CompiledSchema.Rules, compiler: FilterCompiler? = nil) -> SQLCondition {
        if let compiler { return SQLCondition(grants.expr, compiler) }
        guard let template = schema.ruleTemplate(grants, auth: authValue, compiler: { rules }) else {
            return SQLCondition(grants.expr, rules)
        }
        return SQLCondition(template, binds: template.binds(authValue))
    }

    // MARK: - Compilers

    /// Rules: hops read their targets as stored (the rule is the schema's, not the caller's).
    var rules: FilterCompiler {
        FilterCompiler(schema: schema.schema, dialect: dialect, authValues: authValues)
    }

    /// A caller's filter: a hop reads its target only where the caller's `view` grants allow that
    /// record; otherwise every field reached through it is null (API.md §3).
    var callerFilter: FilterCompiler {
        var c = rules
        guard !principal.bypassesGrants else { return c }
        let schema = self.schema
        let principal = self.principal
        c.hopAccess = { target in
            switch schema.access(.view, on: target, for: principal) {
            case .all: .stored
            case .rows(let ps): .visible(ps.predicates)
            case .denied: .hidden
            }
        }
        return c
    }

    /// A create or update rule: the record's stored fields from `record` (`.values` for a record
    /// not stored yet), `@new.*` from `new`.
    func writeRule(record: FilterCompiler.RecordSource, new: [String: SQLValue]) -> FilterCompiler {
        var c = rules
        c.record = record
        c.newValues = new
        return c
    }
}
