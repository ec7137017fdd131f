/// Evaluates a checked filter against one record in memory, with the same two-valued semantics
/// the SQL compiler produces. Used for rules on records that are not (yet) in the database:
/// `create` rules with `@new`, and the record-after-patch of `update` rules.
/// One-hop paths need another table and evaluate to false here.
public struct FilterEvaluator: Sendable {
    public var record: JSONObject
    public var new: JSONObject
    public var auth: [String: FilterLiteral]

    public init(record: JSONObject, new: JSONObject? = nil, auth: [String: FilterLiteral] = [:]) {
        self.record = record
        self.new = new ?? record
        self.auth = auth
    }

    public func evaluate(_ e: FilterExpr) -> Bool {
        switch e {
        case .and(let ps): return ps.allSatisfy(evaluate)
        case .or(let ps): return ps.contains(where: evaluate)
        case .not(let p): return !evaluate(p)
        case .constant(let b): return b
        case .isNull(let o, let negated): return (value(o) == nil) != negated
        case .inList(let o, let lits):
            guard let v = value(o) else { return false }
            return lits.contains { Self.compare(v, Self.norm($0)) == 0 }
        case .compare(let l, let op, let r):
            let a = value(l)
            let b = value(r)
            switch op {
            case .eq: return a == nil && b == nil || (a != nil && b != nil && Self.compare(a!, b!) == 0)
            case .ne: return !(a == nil && b == nil || (a != nil && b != nil && Self.compare(a!, b!) == 0))
            default:
                guard let a, let b else { return false }
                switch op {
                case .lt: return Self.compare(a, b).map { $0 < 0 } ?? false
                case .le: return Self.compare(a, b).map { $0 <= 0 } ?? false
                case .gt: return Self.compare(a, b).map { $0 > 0 } ?? false
                case .ge: return Self.compare(a, b).map { $0 >= 0 } ?? false
                case .contains, .notContains:
                    guard case .string(let x) = a, case .string(let y) = b else { return false }
                    let hit = CaseFolding.contains(x, y)
                    return op == .contains ? hit : !hit
                default: return false
                }
            }
        }
    }

    enum V: Equatable { case string(String), number(Double), bool(Bool), time(Int64) }

    func value(_ o: FilterOperand) -> V? {
        switch o {
        case .literal(let l): return Self.norm(l)
        case .auth(let n, _): return auth[n].flatMap(Self.norm)
        case .new(let n, let k): return Self.fromJSON(new[n], kind: k)
        case .field(let p):
            if p.hop != nil { return nil }
            return Self.fromJSON(record[p.field], kind: p.kind)
        }
    }

    static func fromJSON(_ j: JSONValue?, kind: ValueKind) -> V? {
        guard let j else { return nil }
        switch j {
        case .string(let s):
            if kind == .datetime, let t = Timestamp(rfc3339: s) { return .time(t.millisecondsSinceEpoch) }
            if kind == .id { return .string(RecordID.normalize(s) ?? s) }
            return .string(s)
        case .int(let i): return .number(Double(i))
        case .double(let d): return .number(d)
        case .bool(let b): return .bool(b)
        default: return nil
        }
    }

    static func norm(_ l: FilterLiteral) -> V? {
        switch l {
        case .null: nil
        case .bool(let b): .bool(b)
        case .int(let i): .number(Double(i))
        case .double(let d): .number(d)
        case .string(let s), .uuid(let s): .string(s)
        case .timestamp(let t): .time(t.millisecondsSinceEpoch)
        }
    }

    static func compare(_ a: V, _ b: V?) -> Int? {
        guard let b else { return nil }
        switch (a, b) {
        case (.string(let x), .string(let y)):
            // Code point order, as in SQL with binary/"C" collation.
            return x.unicodeScalars.lexicographicallyPrecedes(y.unicodeScalars) ? -1 : (x == y ? 0 : 1)
        case (.number(let x), .number(let y)): return x < y ? -1 : (x == y ? 0 : 1)
        case (.time(let x), .time(let y)): return x < y ? -1 : (x == y ? 0 : 1)
        case (.bool(let x), .bool(let y)): return x == y ? 0 : (x ? 1 : -1)
        default: return nil
        }
    }

}
