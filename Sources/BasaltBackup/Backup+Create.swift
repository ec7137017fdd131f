import BasaltCore
public import BasaltStorage
import Crypto
import Foundation

extension Backup {
    /// Writes a backup of `store` to `path` from one snapshot, while the store keeps serving.
    /// `progress` hears about each table and every 50,000 rows.
    @discardableResult
    public static func create(
        from store: any Snapshotting,
        to path: String,
        basaltVersion: String,
        secretKeyID: String,
        progress: @escaping @Sendable (String) -> Void = { _ in }
    ) async throws -> Manifest {
        let writer = try GzipLineWriter(path: path)
        let sink = TableSink(writer: writer)
        return try await store.withSnapshot { snap in
            try writer.write(JSONValue.object(JSONObject([("format", "basalt-backup"), ("format_version", .int(formatVersion))])).serializedBytes())
            let (schema, schemaVersion) = try await storedSchema(snap)
            var entries: [TableEntry] = []
            for table in try await tables(of: snap, schema: schema) {
                try writer.write(header(table).serializedBytes())
                sink.start()
                let names = table.columns.map { snap.dialect.quote($0.name) }.joined(separator: ", ")
                let types = table.columns.map(\.type)
                try await snap.scan(SQLQuery(sql: "SELECT \(names) FROM \(snap.dialect.quote(table.name))"), types: types) { row in
                    try sink.write(row)
                    if sink.rows % 50_000 == 0 { progress("\(table.name): \(sink.rows) rows") }
                }
                progress("\(table.name): \(sink.rows) rows")
                entries.append(TableEntry(name: table.name, kind: table.kind, rows: sink.rows, sha256: sink.digest()))
            }
            let manifest = Manifest(
                basaltVersion: basaltVersion,
                store: snap.dialect.name == "sqlite" ? "sqlite" : "postgresql",
                createdAt: .now(),
                schemaVersion: schemaVersion,
                secretKeyID: secretKeyID,
                tables: entries
            )
            try writer.write(JSONValue.object(JSONObject([("manifest", manifest.json)])).serializedBytes())
            try writer.finish()
            return manifest
        }
    }

    static func header(_ t: Table) -> JSONValue {
        .object(
            JSONObject([
                ("table", .string(t.name)), ("kind", .string(t.kind)),
                ("columns", .array(t.columns.map { .array([.string($0.name), .string($0.type.rawValue)]) })),
            ])
        )
    }

    /// The schema as stored in the snapshot (so it matches the tables read beside it).
    static func storedSchema(_ snap: any Snapshot) async throws -> (Schema, Int64) {
        let rows = try await snap.fetch(SQLQuery(sql: #"SELECT "version", "document" FROM "_basalt_schema" WHERE "id" = 1"#), types: [.int, .text])
        guard let row = rows.first, let doc = row[1].text else { return (.empty, 0) }
        return (try Schema.decode(try JSONValue.parse(doc)), row[0].int ?? 0)
    }

    /// Every table a backup holds: Basalt's own tables but the transient ones (columns as the
    /// database declares them), then each collection's (columns from the schema).
    static func tables(of snap: any Snapshot, schema: Schema) async throws -> [Table] {
        var out: [Table] = []
        for row in try await snap.fetch(snap.dialect.internalTablesQuery, types: [.text]) {
            guard let name = row[0].text, !transientTables.contains(name) else { continue }
            let columns = try await snap.fetch(snap.dialect.columnsQuery(name), types: [.text, .text]).map {
                Column(name: $0[0].text ?? "", type: columnType(declared: $0[1].text ?? ""))
            }
            out.append(Table(name: name, kind: "internal", columns: columns))
        }
        for c in schema.collections { out.append(Table(name: c.name, kind: "collection", columns: columns(of: c))) }
        return out
    }

    static func columns(of c: CollectionSchema) -> [Column] {
        RecordTable.columns(of: c).map { Column(name: $0.name, type: $0.type) }
    }
}

/// Encodes one table's rows to the file and keeps its count and checksum. Used only from the
/// synchronous row callback of one scan at a time.
final class TableSink: @unchecked Sendable {
    let writer: GzipLineWriter
    private(set) var rows: Int64 = 0
    private var hash = SHA256()

    init(writer: GzipLineWriter) { self.writer = writer }

    func start() {
        rows = 0
        hash = SHA256()
    }

    func write(_ row: SQLRow) throws {
        var line = JSONValue.array(row.map(\.portableJSON)).serializedBytes()
        line.append(0x0A)
        hash.update(data: line)
        try writer.write(line.dropLast())
        rows += 1
    }

    func digest() -> String { Digest.hex(hash.finalize()) }
}
