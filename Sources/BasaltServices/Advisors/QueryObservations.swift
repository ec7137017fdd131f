import BasaltCore
public import BasaltStorage
import Synchronization

/// What the server saw of its list queries, per shape (collection, filter without its literals,
/// sort): how often, how fast, and one recent query to ask the planner about. In memory only,
/// bounded in shapes and samples, never shown (the sample's values are a caller's input).
public final class QueryObservations: Sendable {
    public struct Shape: Sendable, Hashable {
        public var collection: String
        /// The filter with `?` for each literal (`status = ? && views > ?`), empty for none.
        public var filter: String
        public var sort: String
    }

    public struct Summary: Sendable {
        public var shape: Shape
        public var count: Int
        /// How many of them asked for `total=true`.
        public var totals: Int
        public var p50: Double
        public var p95: Double
        public var p99: Double
        /// The most recent query of this shape, to explain.
        public var sample: SQLQuery
        /// Fields compared for equality, compared by range, sorted on — the order an index serves them.
        public var equalities: [String]
        public var ranges: [String]
        public var sortFields: [String]
    }

    struct Entry {
        var count = 0
        var totals = 0
        var latencies: [Double] = []
        var next = 0
        var sample: SQLQuery
        var equalities: [String]
        var ranges: [String]
        var sortFields: [String]
    }

    /// At most this many shapes are followed (new ones are ignored once full).
    public static let maxShapes = 256
    /// Latency samples kept per shape (the most recent).
    static let samples = 512

    let entries = Mutex<[Shape: Entry]>([:])

    public init() {}

    /// Notes one list query: `filter` as checked, `sort` as the fields it orders by.
    func record(
        collection: String,
        filter: FilterExpr?,
        sort: [String],
        total: Bool,
        query: SQLQuery,
        milliseconds: Double
    ) {
        let (text, eq, range) = filter.map(Self.describe) ?? ("", [], [])
        let shape = Shape(collection: collection, filter: text, sort: sort.joined(separator: ","))
        entries.withLock { all in
            if all[shape] == nil {
                guard all.count < Self.maxShapes else { return }
                all[shape] = Entry(sample: query, equalities: eq, ranges: range, sortFields: sort)
            }
            all[shape]!.count += 1
            if total { all[shape]!.totals += 1 }
            all[shape]!.sample = query
            if all[shape]!.latencies.count < Self.samples {
                all[shape]!.latencies.append(milliseconds)
            } else {
                all[shape]!.latencies[all[shape]!.next] = milliseconds
                all[shape]!.next = (all[shape]!.next + 1) % Self.samples
            }
        }
    }

    public func summaries() -> [Summary] {
        entries.withLock { all in
            all.map { shape, e in
                let sorted = e.latencies.sorted()
                func pct(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
                return Summary(
                    shape: shape,
                    count: e.count,
                    totals: e.totals,
                    p50: pct(0.5),
                    p95: pct(0.95),
                    p99: pct(0.99),
                    sample: e.sample,
                    equalities: e.equalities,
                    ranges: e.ranges,
                    sortFields: e.sortFields
                )
            }
            .sorted { ($0.count, $0.shape.filter) > ($1.count, $1.shape.filter) }
        }
    }

    /// The filter's text without literals, and the fields of this collection it compares for
    /// equality and by range in its top-level conjunction (what a composite index can serve).
    static func describe(_ e: FilterExpr) -> (String, [String], [String]) {
        var eq: [String] = []
        var range: [String] = []
        func path(_ o: FilterOperand) -> String {
            switch o {
            case .field(let p): p.hop.map { "\(p.field).\($0.field)" } ?? p.field
            case .literal: "?"
            case .auth(let f, _): "@auth.\(f)"
            case .new(let p): "@new.\(p.field)"
            }
        }
        func own(_ o: FilterOperand) -> String? {
            if case .field(let p) = o, p.hop == nil { return p.field }
            return nil
        }
        func text(_ e: FilterExpr, top: Bool) -> String {
            switch e {
            case .and(let parts): return parts.map { text($0, top: top) }.joined(separator: " && ")
            case .or(let parts): return "(" + parts.map { text($0, top: false) }.joined(separator: " || ") + ")"
            case .not(let inner): return "!(" + text(inner, top: false) + ")"
            case .compare(let l, let op, let r):
                if top, let f = own(l) ?? own(r) {
                    switch op {
                    case .eq: if !eq.contains(f) { eq.append(f) }
                    case .lt, .le, .gt, .ge: if !range.contains(f) { range.append(f) }
                    default: break
                    }
                }
                return "\(path(l)) \(op.rawValue) \(path(r))"
            case .inList(let o, _):
                if top, let f = own(o), !eq.contains(f) { eq.append(f) }
                return "\(path(o)) in (?)"
            case .isNull(let o, let negated): return "\(path(o)) is \(negated ? "not " : "")null"
            case .constant(let b): return b ? "true" : "false"
            }
        }
        let t = text(e, top: true)
        return (t, eq, range.filter { !eq.contains($0) })
    }
}
