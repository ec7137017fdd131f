import BasaltCore
public import BasaltStorage
import PostgresNIO

extension PostgresStore: Snapshotting {
    /// One `REPEATABLE READ READ ONLY` transaction on one connection: every read sees the
    /// database as of its first statement, while writers carry on.
    public func withSnapshot<T: Sendable>(_ body: @escaping @Sendable (any Snapshot) async throws -> T) async throws -> T {
        try await leased { conn in
            _ = try await self.run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", on: conn)
            do {
                let value = try await body(PostgresSnapshot(store: self, connection: conn))
                _ = try await self.run("COMMIT", on: conn)
                return value
            } catch {
                if (try? await self.run("ROLLBACK", on: conn)) == nil { try? await conn.close() }
                throw error
            }
        }
    }
}

struct PostgresSnapshot: Snapshot {
    let store: PostgresStore
    let connection: PostgresConnection
    /// Rows fetched from the server per round trip.
    static let batch = 2_000
    var dialect: any SQLDialect { store.dialect }

    /// Reads through a server-side cursor, so a large table never sits whole in memory.
    func scan(_ query: SQLQuery, types: [SQLColumnType], row: @Sendable (SQLRow) throws -> Void) async throws {
        do {
            try await store.execute(SQLQuery(sql: "DECLARE basalt_scan NO SCROLL CURSOR FOR " + query.sql, binds: query.binds), on: connection)
            while true {
                let (rows, _) = try await store.execute(
                    SQLQuery(sql: "FETCH FORWARD \(Self.batch) FROM basalt_scan"),
                    on: connection,
                    types: types
                )
                for r in rows { try row(r) }
                if rows.count < Self.batch { break }
            }
            try await store.execute(SQLQuery(sql: "CLOSE basalt_scan"), on: connection)
        } catch let e as StoreError {
            throw e
        } catch {
            throw PostgresStore.translate(error, tag: 0)
        }
    }
}
