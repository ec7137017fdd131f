public import BasaltCore
import Foundation

// The outbox is filled by the database itself: every collection table has triggers that append
// one CloudEvents row per inserted, updated or deleted record to `_basalt_events`, in the writing
// transaction. Cascades, `set_null`, batches and the auth flows' own updates are covered by the
// same mechanism, with nothing to keep in step in the services. The row's `data` is the record's
// columns as a JSON object (storage form); `EventRow` decodes it with the collection's types.

extension SQLiteDialect {
    /// Three triggers per table whose bodies name the columns (SQLite has no row-to-JSON), so a
    /// migration drops them first (`suspendEventTriggers`) and creates them again at its end.
    public func eventTriggers(_ c: CollectionSchema) -> [String] {
        let table = quote(c.name)
        let collection = Self.literal(c.name)
        func object(_ row: String) -> String {
            var parts = SystemField.allCases.map { "\(Self.literal($0.rawValue)), \(row).\(quote($0.rawValue))" }
            for f in c.fields {
                // json() embeds a JSON column as a value, as PostgreSQL's to_jsonb does.
                let column = "\(row).\(quote(f.name))"
                parts.append("\(Self.literal(f.name)), \(f.type == .json ? "json(\(column))" : column)")
            }
            return "json_object(\(parts.joined(separator: ", ")))"
        }
        func trigger(_ suffix: String, _ event: String, _ type: String, _ row: String) -> String {
            """
            CREATE TRIGGER IF NOT EXISTS \(quote("_basalt_event_" + c.name + "_" + suffix)) AFTER \(event) ON \(table) BEGIN \
            INSERT INTO "_basalt_events" ("id", "type", "collection", "record_id", "time", "data") VALUES (\(Self.randomUUID), \
            \(Self.literal(type)), \(collection), \(row)."id", \(Self.nowMilliseconds), \(object(row))); END
            """
        }
        return [
            trigger("insert", "INSERT", "basalt.record.created", "NEW"),
            trigger("update", "UPDATE", "basalt.record.updated", "NEW"),
            trigger("delete", "DELETE", "basalt.record.deleted", "OLD"),
        ]
    }

    /// One writer: `AUTOINCREMENT` numbers rows in commit order as they are written.
    public var numberEvents: [String] { [] }

    public func suspendEventTriggers(_ collections: [String]) -> [String] {
        collections.flatMap { c in
            ["insert", "update", "delete"].map { "DROP TRIGGER IF EXISTS \(quote("_basalt_event_" + c + "_" + $0))" }
        }
    }

    /// A random (version 4) UUID in SQL.
    static let randomUUID =
        "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-' || "
        + "substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))"
    static let nowMilliseconds = "CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)"

    /// A SQL string literal of a collection or field name (validated names; quotes doubled anyway).
    static func literal(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "''") + "'" }
}

extension PostgresDialect {
    /// One generic trigger function (`basalt_record_event`, an internal migration) serves every
    /// table, reading the row with `to_jsonb`, so columns can change under it; this only adds the
    /// trigger where it is missing (no lock on tables that have it).
    public func eventTriggers(_ c: CollectionSchema) -> [String] {
        let name = SQLiteDialect.literal(c.name)
        return [
            """
            DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass(quote_ident(\(name))) \
            AND tgname = 'basalt_event') THEN EXECUTE format('CREATE TRIGGER basalt_event AFTER INSERT OR UPDATE OR DELETE ON %I \
            FOR EACH ROW EXECUTE FUNCTION basalt_record_event()', \(name)); END IF; END $$
            """
        ]
    }

    /// Numbers the committed, unnumbered rows in insert order, one numbering transaction at a time
    /// (an advisory lock per schema); the batch commits, and becomes visible, at once.
    public var numberEvents: [String] {
        [
            "SELECT pg_advisory_xact_lock(hashtext('basalt.events:' || current_schema()))",
            """
            WITH pending AS (SELECT "position", row_number() OVER (ORDER BY "position") AS rn FROM "_basalt_events"
                             WHERE "sequence" IS NULL ORDER BY "position" LIMIT 10000),
                 clock AS (UPDATE "_basalt_event_clock" SET "last" = "last" + (SELECT count(*) FROM pending) WHERE "id" = 1
                           RETURNING "last" - (SELECT count(*) FROM pending) AS start)
            UPDATE "_basalt_events" e SET "sequence" = clock.start + pending.rn FROM pending, clock
            WHERE e."position" = pending."position"
            """,
        ]
    }

    /// The trigger function skips rows while this transaction-local setting is on.
    public func suspendEventTriggers(_ collections: [String]) -> [String] {
        ["SELECT set_config('basalt.migrating', 'on', true)"]
    }
}
