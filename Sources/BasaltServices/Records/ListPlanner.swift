public import BasaltCore
import BasaltStorage

/// The query parameters of a list, as received (API.md §3).
public struct ListQuery: Sendable {
    public var filter: String?
    public var sort: String?
    public var limit: String?
    public var cursor: String?
    public var fields: String?
    public var expand: String?
    public var total: Bool
    public init(
        filter: String? = nil,
        sort: String? = nil,
        limit: String? = nil,
        cursor: String? = nil,
        fields: String? = nil,
        expand: String? = nil,
        total: Bool = false
    ) {
        self.filter = filter
        self.sort = sort
        self.limit = limit
        self.cursor = cursor
        self.fields = fields
        self.expand = expand
        self.total = total
    }
}

/// A page of a list.
public struct ListPage: Sendable {
    public var items: [JSONValue]
    public var nextCursor: String?
    public var total: Int64?
}

/// `expand=author,post.author` → a tree of relation fields, at most two levels.
struct ExpandNode: Sendable {
    var field: String
    var target: String
    var children: [ExpandNode]
}

/// Everything a list needs, decided before any I/O: the page query, the count query, the
/// cursor's scope, the narrowing and expansion of the items.
struct ListPlan {
    var table: RecordTable
    var page: SQLQuery
    var count: SQLQuery?
    var sort: [RecordTable.SortKey]
    var limit: Int
    var fields: Set<String>?
    var expand: [ExpandNode]
    var cursorHash: String
    /// The caller's filter as checked (nil: none), for the query observations.
    var filter: FilterExpr?
}

/// Turns a `ListQuery` into a `ListPlan` against one request's scope. Pure: every mistake is a
/// `400` here, before the database is asked anything.
struct ListPlanner {
    let scope: RequestScope
    let cursors: CursorCodec

    func plan(_ collection: String, _ query: ListQuery) throws(BasaltError) -> ListPlan {
        let cs = scope.schema
        let table = try cs.requireTable(collection)
        let c = table.collection
        var conditions: [SQLCondition] = []
        var checked: FilterExpr?
        if let f = query.filter, !f.isEmpty {
            do {
                checked = try FilterChecker.check(f, collection: c, schema: cs.schema)
                conditions.append(SQLCondition(checked!, scope.callerFilter))
            } catch {
                throw error.basaltError
            }
        }
        if let access = try scope.rows(.list, on: collection) { conditions.append(access) }

        var limit = 20
        if let l = query.limit {
            guard let n = Int(l), (1...200).contains(n) else { throw BasaltError.badRequest("limit must be an integer from 1 to 200") }
            limit = n
        }
        let sort = try Self.sort(query.sort, c)
        let fields = try Self.fields(query.fields, c)
        let expand = try Self.expand(query.expand, c, cs.schema)
        let hash = CursorCodec.queryHash([collection, query.filter ?? "", query.sort ?? "", scope.principal.callerKey, String(cs.version)])
        var after: [SQLValue]?
        if let cur = query.cursor, !cur.isEmpty {
            after = try cursors.decode(cur, queryHash: hash, types: sort.map(\.type))
        }
        return ListPlan(
            table: table,
            page: table.list(where: conditions, sort: sort, after: after, limit: limit + 1),
            count: query.total ? table.count(where: conditions) : nil,
            sort: sort,
            limit: limit,
            fields: fields,
            expand: expand,
            cursorHash: hash,
            filter: checked
        )
    }

    static func sort(_ text: String?, _ c: CollectionSchema) throws(BasaltError) -> [RecordTable.SortKey] {
        var keys: [RecordTable.SortKey] = []
        var seen: Set<String> = []
        let spec = (text?.isEmpty ?? true) ? "-created_at" : text!
        for raw in spec.split(separator: ",", omittingEmptySubsequences: false) {
            var name = Substring(raw)
            var desc = false
            if name.hasPrefix("-") {
                desc = true
                name = name.dropFirst()
            } else if name.hasPrefix("+") {
                name = name.dropFirst()
            }
            let n = String(name)
            // A repeated field adds nothing to the order: the first occurrence decides.
            if !seen.insert(n).inserted { continue }
            if let sys = SystemField(rawValue: n) {
                let type: SQLColumnType =
                    switch sys {
                    case .id: .uuid
                    case .createdAt, .updatedAt: .timestamp
                    case .version: .int
                    }
                keys.append(.init(field: n, descending: desc, nullable: false, type: type))
            } else if let f = c.field(n), f.type != .json {
                keys.append(.init(field: n, descending: desc, nullable: !f.required, type: SQLColumnType(f.type)))
            } else {
                throw BasaltError.badRequest("sort: \(n.isEmpty ? "an empty field name" : "\(n) is not a sortable field")")
            }
        }
        let lastDesc = keys.last?.descending ?? false
        if let i = keys.firstIndex(where: { $0.field == "id" }) {
            keys = Array(keys[...i])  // id is unique: nothing after it matters
        } else {
            keys.append(.init(field: "id", descending: lastDesc, nullable: false, type: .uuid))
        }
        return keys
    }

    static func fields(_ text: String?, _ c: CollectionSchema) throws(BasaltError) -> Set<String>? {
        guard let text, !text.isEmpty else { return nil }
        var out: Set<String> = []
        for n in text.split(separator: ",").map(String.init) {
            guard SystemField(rawValue: n) != nil || c.field(n) != nil else {
                throw BasaltError.badRequest("fields: \(n) is not a field of \(c.name)")
            }
            out.insert(n)
        }
        return out
    }

    static func expand(_ text: String?, _ c: CollectionSchema, _ schema: Schema) throws(BasaltError) -> [ExpandNode] {
        guard let text, !text.isEmpty else { return [] }
        var roots: [ExpandNode] = []
        for path in text.split(separator: ",").map(String.init) {
            let segs = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard (1...2).contains(segs.count) else { throw BasaltError.badRequest("expand: \(path) is deeper than 2 levels") }
            guard let f = c.field(segs[0]), f.type == .relation, let t = f.target else {
                throw BasaltError.badRequest("expand: \(segs[0]) is not a relation of \(c.name)")
            }
            var idx = roots.firstIndex { $0.field == segs[0] }
            if idx == nil {
                roots.append(ExpandNode(field: segs[0], target: t, children: []))
                idx = roots.count - 1
            }
            if segs.count == 2 {
                guard let tc = schema.collection(t), let f2 = tc.field(segs[1]), f2.type == .relation, let t2 = f2.target else {
                    throw BasaltError.badRequest("expand: \(segs[1]) is not a relation of \(t)")
                }
                if !roots[idx!].children.contains(where: { $0.field == segs[1] }) {
                    roots[idx!].children.append(ExpandNode(field: segs[1], target: t2, children: []))
                }
            }
        }
        return roots
    }
}
