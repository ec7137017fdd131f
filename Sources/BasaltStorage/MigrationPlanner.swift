public import BasaltCore
import Foundation

/// The one way schemas change: diff the wanted schema against the live one, mark destructive
/// steps, and produce the SQL that applies the change in one transaction together with the new
/// schema document and a history entry.
public struct MigrationPlanner: Sendable {
    public let store: any Store
    public init(store: any Store) { self.store = store }

    var dialect: any SQLDialect { store.dialect }

    public func plan(from current: Schema, to wanted: Schema) async throws -> MigrationPlan {
        var steps: [MigrationPlan.Step] = []
        var statements: [SQLQuery] = []
        let ddl = TableDDL(dialect: dialect)

        // Drops first (referrers before their targets is not needed: relations to a dropped
        // collection are gone from `wanted`, and SQLite migrates with foreign keys off).
        for c in current.collections where wanted.collection(c.name) == nil {
            let rows = try await count(c.name, nonNull: nil)
            steps.append(
                .init(
                    action: "drop_collection",
                    collection: c.name,
                    field: nil,
                    detail: "drop collection \(c.name) (\(rows) records)",
                    destructive: rows > 0
                )
            )
            statements.append(SQLQuery(sql: "DROP TABLE \(dialect.quote(c.name))\(dialect.columnChangeStrategy == .alterInPlace ? " CASCADE" : "")"))
        }
        // Creates in dependency order so foreign keys name existing tables.
        let created = Self.dependencyOrder(wanted.collections.filter { current.collection($0.name) == nil })
        for c in created {
            steps.append(
                .init(
                    action: "create_collection",
                    collection: c.name,
                    field: nil,
                    detail: "create collection \(c.name) with \(c.fields.count) fields",
                    destructive: false
                )
            )
            statements.append(SQLQuery(sql: ddl.createTable(c)))
        }
        for c in created {
            for ix in ddl.indexes(c) { statements.append(SQLQuery(sql: ix.sql)) }
        }
        for new in wanted.collections {
            guard let old = current.collection(new.name) else { continue }
            let (s, q) = try await alter(old, new, ddl: ddl)
            steps += s
            statements += q
        }
        if current.roles != wanted.roles {
            steps.append(.init(action: "update_roles", collection: nil, field: nil, detail: "update roles", destructive: false))
        }
        if !statements.isEmpty {
            // The migration's own row changes are no record events; the outbox triggers follow
            // the new columns.
            statements = dialect.suspendEventTriggers(current.collections.map(\.name)).map { SQLQuery(sql: $0) } + statements
            statements += wanted.collections.flatMap(dialect.eventTriggers).map { SQLQuery(sql: $0) }
        }
        return MigrationPlan(steps: steps, statements: statements, wanted: wanted)
    }

    func alter(_ old: CollectionSchema, _ new: CollectionSchema, ddl: TableDDL) async throws -> ([MigrationPlan.Step], [SQLQuery]) {
        var steps: [MigrationPlan.Step] = []
        var sql: [SQLQuery] = []
        let table = dialect.quote(new.name)
        var rows: Int64?
        func rowCount() async throws -> Int64 {
            if let rows { return rows }
            let n = try await count(new.name, nonNull: nil)
            rows = n
            return n
        }
        var needsRebuild = false
        var added: [FieldSchema] = []
        var changedTypes: Set<String> = []
        for f in old.fields where new.field(f.name) == nil {
            let n = try await count(new.name, nonNull: f.name)
            steps.append(
                .init(
                    action: "drop_field",
                    collection: new.name,
                    field: f.name,
                    detail: "drop field \(new.name).\(f.name) (\(n) values)",
                    destructive: n > 0
                )
            )
            if f.type == .relation || dialect.columnChangeStrategy == .rebuildTable { needsRebuild = true }
        }
        for f in new.fields {
            guard let o = old.field(f.name) else {
                added.append(f)
                var destructive = false
                if f.required && f.defaultValue == nil { destructive = try await rowCount() > 0 }
                steps.append(
                    .init(
                        action: "add_field",
                        collection: new.name,
                        field: f.name,
                        detail: "add field \(new.name).\(f.name) (\(f.type.rawValue))"
                            + (destructive ? "; existing records have no value for a required field" : ""),
                        destructive: destructive
                    )
                )
                continue
            }
            if o.type != f.type || o.target != f.target || o.onDelete != f.onDelete {
                let widening = Self.isWidening(from: o.type, to: f.type) && o.target == f.target
                let n = o.type == f.type ? 0 : try await count(new.name, nonNull: f.name)
                let destructive = !widening && n > 0 && o.type != f.type
                steps.append(
                    .init(
                        action: "alter_field",
                        collection: new.name,
                        field: f.name,
                        detail: "change \(new.name).\(f.name) from \(describe(o)) to \(describe(f))"
                            + (destructive ? " (\(n) values cannot be converted and become null)" : ""),
                        destructive: destructive
                    )
                )
                if o.type != f.type { changedTypes.insert(f.name) }
                needsRebuild = true
            } else if o.required != f.required && f.required && f.defaultValue == nil {
                let n = try await rowCount()
                let nulls = n - (try await count(new.name, nonNull: f.name))
                steps.append(
                    .init(
                        action: "alter_field",
                        collection: new.name,
                        field: f.name,
                        detail: "make \(new.name).\(f.name) required (\(nulls) records have no value)",
                        destructive: nulls > 0
                    )
                )
            } else if o != f {
                steps.append(
                    .init(
                        action: "alter_field",
                        collection: new.name,
                        field: f.name,
                        detail: "change constraints of \(new.name).\(f.name)",
                        destructive: false
                    )
                )
            }
        }
        if old.access != new.access {
            steps.append(
                .init(
                    action: "update_access",
                    collection: new.name,
                    field: nil,
                    detail: "update access rules of \(new.name)",
                    destructive: false
                )
            )
        }
        let oldIndexes = ddl.indexes(old)
        let newIndexes = ddl.indexes(new)
        if old.indexes != new.indexes {
            steps.append(
                .init(
                    action: "update_indexes",
                    collection: new.name,
                    field: nil,
                    detail: "update indexes of \(new.name)",
                    destructive: false
                )
            )
        }

        if needsRebuild && dialect.columnChangeStrategy == .rebuildTable {
            // SQLite: new table, copy the surviving columns, swap. Indexes go with the old table.
            let tmp = "_basalt_rebuild_" + new.name
            sql.append(SQLQuery(sql: ddl.createTable(new, as: tmp)))
            var targetCols = SystemField.allCases.map { dialect.quote($0.rawValue) }
            var sourceCols = targetCols
            for f in new.fields {
                guard let o = old.field(f.name) else { continue }
                targetCols.append(dialect.quote(f.name))
                if changedTypes.contains(f.name) {
                    sourceCols.append(
                        Self.isWidening(from: o.type, to: f.type)
                            ? "CAST(\(dialect.quote(f.name)) AS \(dialect.columnType(f.type)))" : "NULL"
                    )
                } else {
                    sourceCols.append(dialect.quote(f.name))
                }
            }
            sql.append(
                SQLQuery(
                    sql:
                        "INSERT INTO \(dialect.quote(tmp)) (\(targetCols.joined(separator: ", "))) SELECT \(sourceCols.joined(separator: ", ")) FROM \(table)"
                )
            )
            sql.append(SQLQuery(sql: "DROP TABLE \(table)"))
            sql.append(SQLQuery(sql: "ALTER TABLE \(dialect.quote(tmp)) RENAME TO \(table)"))
            for f in added where f.defaultValue != nil { sql.append(fill(f, table: table)) }
            for ix in newIndexes { sql.append(SQLQuery(sql: ix.sql)) }
            return (steps, sql)
        }

        // In place: indexes that go away first, then columns, then new indexes.
        let newNames = Set(newIndexes.map(\.name))
        let oldNames = Set(oldIndexes.map(\.name))
        for ix in oldIndexes where !newNames.contains(ix.name) { sql.append(SQLQuery(sql: ddl.dropIndex(ix.name))) }
        for f in old.fields where new.field(f.name) == nil {
            sql.append(SQLQuery(sql: "ALTER TABLE \(table) DROP COLUMN \(dialect.quote(f.name))"))
        }
        for f in added {
            var def = "ALTER TABLE \(table) ADD COLUMN \(dialect.quote(f.name)) \(dialect.columnType(f.type))"
            if let references = ddl.references(f) { def += " " + references }
            sql.append(SQLQuery(sql: def))
            if f.defaultValue != nil { sql.append(fill(f, table: table)) }
        }
        for f in new.fields {
            guard let o = old.field(f.name), o.type != f.type || o.target != f.target || o.onDelete != f.onDelete else { continue }
            // PostgreSQL only (SQLite rebuilt above).
            let col = dialect.quote(f.name)
            if o.type != f.type {
                let castType = dialect.columnType(f.type).replacingOccurrences(of: " COLLATE \"C\"", with: "")
                let using = Self.isWidening(from: o.type, to: f.type) ? "CAST(\(col) AS \(castType))" : "NULL"
                sql.append(SQLQuery(sql: "ALTER TABLE \(table) ALTER COLUMN \(col) TYPE \(dialect.columnType(f.type)) USING \(using)"))
            }
            let fkName = dialect.quote("\(new.name)_\(f.name)_fkey")
            if o.type == .relation {
                sql.append(SQLQuery(sql: "ALTER TABLE \(table) DROP CONSTRAINT IF EXISTS \(fkName)"))
            }
            if let references = ddl.references(f) {
                sql.append(SQLQuery(sql: "ALTER TABLE \(table) ADD CONSTRAINT \(fkName) FOREIGN KEY (\(col)) \(references)"))
            }
        }
        for ix in newIndexes where !oldNames.contains(ix.name) { sql.append(SQLQuery(sql: ix.sql)) }
        return (steps, sql)
    }

    /// Targets before the collections that reference them (PostgreSQL checks a foreign key's table
    /// exists at CREATE TABLE). Cycles keep declaration order.
    static func dependencyOrder(_ cs: [CollectionSchema]) -> [CollectionSchema] {
        var out: [CollectionSchema] = []
        var placed = Set<String>()
        var visiting = Set<String>()
        let byName = Dictionary(cs.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        func visit(_ c: CollectionSchema) {
            if placed.contains(c.name) || visiting.contains(c.name) { return }
            visiting.insert(c.name)
            for f in c.fields where f.type == .relation {
                if let t = f.target, t != c.name, let target = byName[t] { visit(target) }
            }
            visiting.remove(c.name)
            placed.insert(c.name)
            out.append(c)
        }
        cs.forEach(visit)
        return out
    }

    func fill(_ f: FieldSchema, table: String) -> SQLQuery {
        var b = SQLBuilder(dialect)
        b.append("UPDATE \(table) SET \(dialect.quote(f.name)) = ")
        b.bind(SQLValue(json: f.defaultValue ?? .null, type: f.type))
        b.append(" WHERE \(dialect.quote(f.name)) IS NULL")
        return b.query
    }

    func describe(_ f: FieldSchema) -> String {
        f.type == .relation ? "relation to \(f.target ?? "?") (\(f.onDelete.rawValue))" : f.type.rawValue
    }

    /// Type changes that keep every value.
    static func isWidening(from a: FieldType, to b: FieldType) -> Bool {
        if a == b { return true }
        if a == .integer && b == .number { return true }
        if b == .text && (a.isTextual) { return true }
        return false
    }

    func count(_ table: String, nonNull field: String?) async throws -> Int64 {
        var sql = "SELECT COUNT(*) FROM \(dialect.quote(table))"
        if let field { sql += " WHERE \(dialect.quote(field)) IS NOT NULL" }
        let row = try await store.fetchOne(SQLQuery(sql: sql), types: [.int])
        return row?.first?.int ?? 0
    }
}

extension MigrationPlanner {
    /// What replaces every collection table at once (a restore): `before` drops the current
    /// tables and creates the wanted ones, with their indexes but no outbox triggers, so the rows
    /// loaded next are no record events; `after` installs the triggers.
    public func replacement(of current: Schema, with wanted: Schema) -> (before: [SQLQuery], after: [SQLQuery]) {
        let ddl = TableDDL(dialect: dialect)
        var before = dialect.suspendEventTriggers(current.collections.map(\.name)).map { SQLQuery(sql: $0) }
        let cascade = dialect.columnChangeStrategy == .alterInPlace ? " CASCADE" : ""
        for c in current.collections { before.append(SQLQuery(sql: "DROP TABLE IF EXISTS \(dialect.quote(c.name))\(cascade)")) }
        let created = Self.dependencyOrder(wanted.collections)
        before += created.map { SQLQuery(sql: ddl.createTable($0)) }
        before += created.flatMap { ddl.indexes($0).map { SQLQuery(sql: $0.sql) } }
        return (before, wanted.collections.flatMap(dialect.eventTriggers).map { SQLQuery(sql: $0) })
    }
}
