import BasaltCore
public import BasaltStorage
import Foundation
internal import GRDB

extension SQLiteStore: Snapshotting {
    /// Copies the database with SQLite's online backup API into a temporary file and reads the
    /// copy: the copy is one moment of the database, and long reads of it hold back neither
    /// writers nor the WAL checkpoints (a long read transaction on the live file would pin the log).
    public func withSnapshot<T: Sendable>(_ body: @escaping @Sendable (any Snapshot) async throws -> T) async throws -> T {
        // Beside the database, not in the system's temporary folder: on the same file system (a
        // small tmpfs would not hold it) and as protected as the database itself if a crash
        // leaves it behind.
        let folder = (walPath as NSString).deletingLastPathComponent + "/.snapshot-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/data.db"
        try await pool.read { db in
            let copy = try DatabaseQueue(path: path)
            try copy.writeWithoutTransaction { dest in try db.backup(to: dest) }
            try copy.close()
        }
        var config = Configuration()
        config.readonly = true
        let copy = try DatabaseQueue(path: path, configuration: config)
        do {
            let value = try await body(SQLiteSnapshot(queue: copy))
            try copy.close()
            return value
        } catch {
            try? copy.close()
            throw error
        }
    }
}

struct SQLiteSnapshot: Snapshot {
    let queue: DatabaseQueue
    var dialect: any SQLDialect { SQLiteDialect() }

    func scan(_ query: SQLQuery, types: [SQLColumnType], row: @Sendable (SQLRow) throws -> Void) async throws {
        do {
            try await queue.read { db in
                let stmt = try db.makeStatement(sql: query.sql)
                try stmt.setArguments(SQLiteStore.arguments(query.binds))
                let cursor = try Row.fetchCursor(stmt)
                while let r = try cursor.next() { try row(SQLiteStore.decode(r, types)) }
            }
        } catch let e as StoreError {
            throw e
        } catch {
            throw SQLiteStore.translate(error, tag: 0)
        }
    }
}
