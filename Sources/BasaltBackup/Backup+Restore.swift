public import BasaltCore
public import BasaltStorage
import Crypto
import Foundation

extension Backup {
    /// A backup whose every table matched its row count and checksum.
    public struct Verified: Sendable {
        public let path: String
        public let manifest: Manifest
        public let schema: Schema
        /// The master key, when the source kept it in its database (PostgreSQL without a
        /// configured key): it is then data like any other, and travels with the backup.
        public let storedSecretKey: String?
        let tables: [Table]
    }

    /// Reads the whole file and checks it against its manifest; changes nothing.
    public static func verify(_ path: String, progress: @escaping @Sendable (String) -> Void = { _ in }) throws -> Verified {
        let reader = try GzipLineReader(path: path)
        guard let first = try reader.next(), let head = try? JSONValue.parse(first), head["format"]?.stringValue == "basalt-backup" else {
            throw BackupFileError("\(path) is not a Basalt backup")
        }
        guard head["format_version"]?.integerValue == formatVersion else {
            throw BackupFileError("\(path) is a backup format this version of Basalt does not read")
        }
        var tables: [Table] = []
        var seen: [TableEntry] = []
        var current: (table: Table, rows: Int64, hash: SHA256)?
        var manifest: Manifest?
        var schemaDocument: String?
        var storedKey: String?
        func close() {
            guard let c = current else { return }
            seen.append(TableEntry(name: c.table.name, kind: c.table.kind, rows: c.rows, sha256: Digest.hex(c.hash.finalize())))
            progress("checked \(c.table.name): \(c.rows) rows")
            current = nil
        }
        while let line = try reader.next() {
            guard manifest == nil else { throw BackupFileError("\(path) has data after its manifest") }
            if line.first == UInt8(ascii: "[") {
                guard current != nil else { throw BackupFileError("\(path) is damaged: a row outside any table") }
                current!.hash.update(data: line)
                current!.hash.update(data: [0x0A])
                current!.rows += 1
                // Two values restore needs before it loads anything.
                if current!.table.name == "_basalt_schema" || current!.table.name == "_basalt_settings" {
                    let values = try row(line, current!.table)
                    if current!.table.name == "_basalt_schema", let i = current!.table.columns.firstIndex(where: { $0.name == "document" }) {
                        schemaDocument = values[i].text
                    } else if let k = current!.table.columns.firstIndex(where: { $0.name == "key" }),
                        let v = current!.table.columns.firstIndex(where: { $0.name == "value" }), values[k].text == "secret_key"
                    {
                        storedKey = values[v].text
                    }
                }
                continue
            }
            guard let object = try? JSONValue.parse(line) else { throw BackupFileError("\(path) is damaged: a line is not JSON") }
            close()
            if let m = object["manifest"] {
                manifest = try Manifest(json: m)
            } else if let name = object["table"]?.stringValue, let kind = object["kind"]?.stringValue, let cols = object["columns"]?.arrayValue {
                let columns = try cols.map { c -> Column in
                    guard let pair = c.arrayValue, pair.count == 2, let n = pair[0].stringValue,
                        let t = pair[1].stringValue.flatMap(SQLColumnType.init(rawValue:))
                    else { throw BackupFileError("\(path) is damaged: a table header is malformed") }
                    return Column(name: n, type: t)
                }
                let table = Table(name: name, kind: kind, columns: columns)
                tables.append(table)
                current = (table, 0, SHA256())
            } else {
                throw BackupFileError("\(path) is damaged: an unknown line")
            }
        }
        guard let manifest else { throw BackupFileError("\(path) is incomplete: it ends before its manifest (an interrupted copy?)") }
        guard manifest.tables == seen else {
            let bad = zip(manifest.tables, seen).first { $0.0 != $0.1 }?.0.name ?? "the table list"
            throw BackupFileError("\(path) fails its checksums (\(bad) differs from the manifest): it is damaged; nothing was restored")
        }
        let schema = try schemaDocument.map { try Schema.decode(try JSONValue.parse($0)) } ?? .empty
        // Only Basalt's own tables and the schema's collections, each with the columns it has:
        // a file that names anything else is not one of ours, whatever its checksums say.
        for t in tables {
            let fits =
                t.kind == "internal"
                ? t.name.hasPrefix("_basalt_") && !transientTables.contains(t.name)
                : t.kind == "collection" && schema.collection(t.name).map { columns(of: $0) == t.columns } == true
            guard fits else { throw BackupFileError("\(path) holds a table \(t.name) that does not belong in a Basalt backup") }
        }
        return Verified(path: path, manifest: manifest, schema: schema, storedSecretKey: storedKey, tables: tables)
    }

    static func row(_ line: ArraySlice<UInt8>, _ table: Table) throws -> SQLRow {
        guard let values = try? JSONValue.parse(line).arrayValue, values.count == table.columns.count else {
            throw BackupFileError("a row of \(table.name) is malformed")
        }
        return try zip(values, table.columns).map { v, c in
            guard let value = SQLValue(portableJSON: v, as: c.type) else { throw BackupFileError("a value of \(table.name).\(c.name) is malformed") }
            return value
        }
    }

    /// Why a restore was refused before anything changed.
    public struct Refusal: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// Whether `store` holds data a restore would replace: any collection but the built-in
    /// `users`, or any user.
    public static func holdsData(_ store: any Store) async throws -> Bool {
        let current = try await SchemaRepository(store: store).load().schema
        if current.collections.contains(where: { $0.name != BuiltinCollections.usersName }) { return true }
        guard current.collection(BuiltinCollections.usersName) != nil else { return false }
        let n = try await store.fetchOne(SQLQuery(sql: #"SELECT count(*) FROM "users""#), types: [.int])
        return (n?.first?.int ?? 0) > 0
    }

    /// Replaces everything in `store` with the backup, in one transaction: the collection
    /// tables are dropped and created from the backup's schema, Basalt's own tables emptied and
    /// loaded, the outbox triggers installed after the rows (a restore is no stream of record
    /// events), and webhooks start from the target's outbox as it is. Refuses a store holding
    /// data unless `force`.
    public static func restore(
        _ backup: Verified,
        into store: any Store,
        force: Bool,
        dropStoredKey: Bool = false,
        progress: @escaping @Sendable (String) -> Void = { _ in }
    ) async throws {
        if !force, try await holdsData(store) {
            throw Refusal(
                description: "the store holds collections or users; restore into an empty store, or pass --force to replace everything in it"
            )
        }
        let dialect = store.dialect
        var targetTables: [String: Set<String>] = [:]
        for row in try await store.fetch(dialect.internalTablesQuery, types: [.text]) {
            guard let name = row[0].text else { continue }
            targetTables[name] = Set(try await store.fetch(dialect.columnsQuery(name), types: [.text, .text]).compactMap { $0[0].text })
        }
        for t in backup.tables where t.kind == "internal" {
            guard let have = targetTables[t.name], t.columns.allSatisfy({ have.contains($0.name) }) else {
                throw Refusal(
                    description:
                        "the backup holds \(t.name) columns this version of Basalt does not have: restore it with Basalt \(backup.manifest.basaltVersion) or newer"
                )
            }
        }
        let current = try await SchemaRepository(store: store).load().schema
        let (before, after) = MigrationPlanner(store: store).replacement(of: current, with: backup.schema)
        var statements = before
        for name in targetTables.keys.sorted() where !transientTables.contains(name) || name == "_basalt_idempotency" {
            statements.append(SQLQuery(sql: "DELETE FROM \(dialect.quote(name))"))
        }
        // Second pass: rows go in as multi-row INSERTs. Its lines are checked against the manifest
        // again before anything commits: the file may have changed since it was verified.
        let reader = try GzipLineReader(path: backup.path)
        _ = try reader.next()
        var seen: [TableEntry] = []
        var hash = SHA256()
        var rows: Int64 = 0
        var table: Table?
        var pending: [SQLRow] = []
        var loaded: Int64 = 0
        func flush() {
            guard let t = table, !pending.isEmpty else { return }
            var b = SQLBuilder(dialect)
            b.append("INSERT INTO \(dialect.quote(t.name)) (\(t.columns.map { dialect.quote($0.name) }.joined(separator: ", "))) VALUES ")
            for (i, r) in pending.enumerated() {
                b.append(i == 0 ? "(" : ", (")
                b.bindList(r)
                b.append(")")
            }
            statements.append(SQLQuery(sql: b.sql, binds: b.binds))
            loaded += Int64(pending.count)
            pending.removeAll(keepingCapacity: true)
        }
        var perStatement = 1
        while let line = try reader.next() {
            if line.first == UInt8(ascii: "["), let t = table {
                hash.update(data: line)
                hash.update(data: [0x0A])
                rows += 1
                pending.append(try row(line, t))
                if pending.count >= perStatement { flush() }
                if loaded > 0, loaded % 50_000 == 0, pending.isEmpty { progress("read \(loaded) rows") }
                continue
            }
            flush()
            if let t = table {
                seen.append(TableEntry(name: t.name, kind: t.kind, rows: rows, sha256: Digest.hex(hash.finalize())))
                progress("read \(t.name)")
            }
            hash = SHA256()
            rows = 0
            table = nil
            guard let name = try JSONValue.parse(line)["table"]?.stringValue, let t = backup.tables.first(where: { $0.name == name }) else {
                continue
            }
            table = t
            // Both engines bound a statement's parameters (SQLite 32,766): stay well under.
            perStatement = max(1, min(200, 20_000 / max(1, t.columns.count)))
        }
        flush()
        guard seen == backup.manifest.tables else {
            throw BackupFileError("\(backup.path) changed after it was verified; nothing was restored")
        }
        statements.append(
            SQLQuery(sql: #"UPDATE "_basalt_webhooks" SET "since_sequence" = (SELECT COALESCE(max("sequence"), 0) FROM "_basalt_events")"#)
        )
        if dropStoredKey { statements.append(SQLQuery(sql: #"DELETE FROM "_basalt_settings" WHERE "key" = 'secret_key'"#)) }
        statements += after
        progress("writing \(loaded) rows in one transaction")
        do {
            try await store.migrate(statements)
        } catch let error as StoreError {
            // The transaction rolled back. A store that was empty and holds data now was restored
            // into by someone else meanwhile (two restores at once): say so, not SQLite's words.
            if !force, (try? await holdsData(store)) == true {
                throw Refusal(
                    description: "the store was changed while this restore ran (another restore at the same time?); this one restored nothing"
                )
            }
            throw error
        }
        try await store.refreshStatistics(tables: backup.schema.collections.map(\.name))
    }
}
