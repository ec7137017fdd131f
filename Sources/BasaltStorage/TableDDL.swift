public import BasaltCore

/// The physical shape of a collection: `CREATE TABLE` and the indexes Basalt keeps for it.
public struct TableDDL: Sendable {
    public let dialect: any SQLDialect

    public init(dialect: any SQLDialect) { self.dialect = dialect }

    public func createTable(_ c: CollectionSchema, as tableName: String? = nil) -> String {
        var cols = [dialect.systemColumnsDDL()]
        var fks: [String] = []
        for f in c.fields {
            cols.append("\(dialect.quote(f.name)) \(dialect.columnType(f.type))")
            if let references = references(f) { fks.append("FOREIGN KEY (\(dialect.quote(f.name))) \(references)") }
        }
        return "CREATE TABLE \(dialect.quote(tableName ?? c.name)) (\((cols + fks).joined(separator: ", ")))\(dialect.tableSuffix)"
    }

    /// `REFERENCES target (id) ON DELETE … DEFERRABLE INITIALLY DEFERRED` for a relation field, the
    /// one definition used by CREATE TABLE, ADD COLUMN and ADD CONSTRAINT. Deferred to commit so a
    /// batch may write a record and its referrer in either order.
    public func references(_ f: FieldSchema) -> String? {
        guard f.type == .relation, let target = f.target else { return nil }
        let action =
            switch f.onDelete {
            case .restrict: "RESTRICT"
            case .cascade: "CASCADE"
            case .setNull: "SET NULL"
            }
        return "REFERENCES \(dialect.quote(target)) (\(dialect.quote("id"))) ON DELETE \(action) DEFERRABLE INITIALLY DEFERRED"
    }

    public struct Index: Sendable, Equatable {
        public var name: String
        public var sql: String
        /// Fields whose values it constrains (unique indexes), for naming a 409's field.
        public var uniqueFields: [String]
    }

    /// Every index Basalt maintains for a collection: keyset order on `created_at`, one per
    /// relation (every foreign key gets an index), one per unique field, and the declared ones.
    /// Names are derived from content, so a diff by name finds what to create and drop.
    public func indexes(_ c: CollectionSchema) -> [Index] {
        var out: [Index] = []
        func add(_ terms: [String], unique: Bool, uniqueFields: [String], label: String) {
            var t = terms
            if !dialect.indexesCarryPrimaryKey && !unique { t.append(dialect.indexTerm(dialect.quote("id"))) }
            let body = "(\(t.joined(separator: ", ")))"
            let name = "bx_" + String(Digest.sha256Hex(c.name + "|" + label + "|" + body + "|" + (unique ? "u" : "")).prefix(20))
            out.append(
                Index(
                    name: name,
                    sql: "CREATE \(unique ? "UNIQUE " : "")INDEX \(dialect.quote(name)) ON \(dialect.quote(c.name)) \(body)",
                    uniqueFields: uniqueFields
                )
            )
        }
        add([dialect.indexTerm(dialect.quote("created_at"))], unique: false, uniqueFields: [], label: "created_at")
        for f in c.fields where f.type == .relation {
            add([dialect.indexTerm(dialect.quote(f.name))], unique: false, uniqueFields: [], label: "rel:" + f.name)
        }
        for f in c.fields where f.unique {
            // Emails are unique case-insensitively (API.md §2).
            let term = f.type == .email ? "lower(\(dialect.quote(f.name)))" : dialect.quote(f.name)
            add([term], unique: true, uniqueFields: [f.name], label: "unique:" + f.name)
        }
        for ix in c.indexes {
            let terms = ix.fields.map { ix.unique ? dialect.quote($0) : dialect.indexTerm(dialect.quote($0)) }
            add(terms, unique: ix.unique, uniqueFields: ix.unique ? ix.fields : [], label: "index")
        }
        var seen = Set<String>()
        return out.filter { seen.insert($0.name).inserted }
    }

    public func dropIndex(_ name: String) -> String { "DROP INDEX IF EXISTS \(dialect.quote(name))" }
}
