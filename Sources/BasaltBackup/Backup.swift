public import BasaltCore
import BasaltStorage
import Crypto
import Foundation

/// A Basalt backup: one gzip file of JSON lines, the same whatever the backend, so a SQLite
/// backup restores into PostgreSQL and back.
///
///     {"format":"basalt-backup","format_version":1}
///     {"table":"posts","kind":"collection","columns":[["id","uuid"],["created_at","timestamp"],…]}
///     ["0193…","…",1733300000000,…]          one line per row, values in the columns' order
///     …                                       (every table)
///     {"manifest":{…, "tables":[{"name":"posts","rows":10000,"sha256":"…"}, …]}}
///
/// Values are typed by their column: timestamps as Unix milliseconds, booleans as JSON booleans,
/// JSON columns as their text. Each table's checksum covers its row lines, newlines included;
/// the manifest comes last, so a truncated file has none and is refused.
public enum Backup {
    public static let formatVersion: Int64 = 1

    /// Tables that are this deployment's machinery rather than its data: which internal
    /// migrations ran (the target has its own), the outbox and its numbering (events are a
    /// stream of changes, not state: a restored store starts a new stream), replayable answers
    /// and realtime tickets (short-lived), and consumers' positions in the old outbox.
    public static let transientTables: Set<String> = [
        InternalTables.historyTable, "_basalt_events", "_basalt_event_clock", "_basalt_idempotency", "_basalt_realtime_tickets",
        "_basalt_cursors",
    ]

    public struct TableEntry: Sendable, Equatable {
        public var name: String
        /// `collection` (a schema collection's table) or `internal` (one of Basalt's own).
        public var kind: String
        public var rows: Int64
        public var sha256: String
    }

    public struct Manifest: Sendable, Equatable {
        public var basaltVersion: String
        /// The backend it was taken from: `sqlite` or `postgresql`.
        public var store: String
        public var createdAt: Timestamp
        public var schemaVersion: Int64
        /// Which master key the backup's sealed secrets (signing keys, TOTP seeds, webhook
        /// secrets) need: a fingerprint, never the key.
        public var secretKeyID: String
        public var tables: [TableEntry]

        public var json: JSONValue {
            .object(
                JSONObject([
                    ("basalt_version", .string(basaltVersion)), ("store", .string(store)), ("created_at", .string(createdAt.rfc3339)),
                    ("schema_version", .int(schemaVersion)), ("secret_key_id", .string(secretKeyID)),
                    (
                        "tables",
                        .array(
                            tables.map {
                                .object(
                                    JSONObject([
                                        ("name", .string($0.name)), ("kind", .string($0.kind)), ("rows", .int($0.rows)),
                                        ("sha256", .string($0.sha256)),
                                    ])
                                )
                            }
                        )
                    ),
                ])
            )
        }

        init(json: JSONValue) throws {
            guard let version = json["basalt_version"]?.stringValue, let store = json["store"]?.stringValue,
                let created = json["created_at"]?.stringValue.flatMap(Timestamp.init(rfc3339:)),
                let schemaVersion = json["schema_version"]?.integerValue, let key = json["secret_key_id"]?.stringValue,
                let tables = json["tables"]?.arrayValue
            else { throw BackupFileError("the backup's manifest is malformed") }
            self.basaltVersion = version
            self.store = store
            self.createdAt = created
            self.schemaVersion = schemaVersion
            self.secretKeyID = key
            self.tables = try tables.map { t in
                guard let name = t["name"]?.stringValue, let kind = t["kind"]?.stringValue, let rows = t["rows"]?.integerValue,
                    let sum = t["sha256"]?.stringValue
                else { throw BackupFileError("the backup's manifest is malformed") }
                return TableEntry(name: name, kind: kind, rows: rows, sha256: sum)
            }
        }

        init(basaltVersion: String, store: String, createdAt: Timestamp, schemaVersion: Int64, secretKeyID: String, tables: [TableEntry]) {
            self.basaltVersion = basaltVersion
            self.store = store
            self.createdAt = createdAt
            self.schemaVersion = schemaVersion
            self.secretKeyID = secretKeyID
            self.tables = tables
        }
    }

    /// A column as the file describes it.
    struct Column: Sendable, Equatable {
        var name: String
        var type: SQLColumnType
    }

    struct Table: Sendable {
        var name: String
        var kind: String
        var columns: [Column]
    }

    /// The type an internal table's declared column type reads as (they use only integers and text).
    static func columnType(declared: String) -> SQLColumnType {
        let d = declared.lowercased()
        if d.contains("int") { return .int }
        if d.contains("bool") { return .bool }
        if d.contains("real") || d.contains("double") || d.contains("numeric") { return .double }
        return .text
    }
}
