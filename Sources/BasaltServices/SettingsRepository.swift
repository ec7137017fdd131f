import BasaltCore
public import BasaltStorage

/// Deployment-wide values kept in the database (shared by every replica).
public struct SettingsRepository: Sendable {
    let store: any Store
    public init(store: any Store) { self.store = store }

    /// The value under `key`, creating it with `make()` the first time.
    public func value(_ key: String, orCreate make: () -> String) async throws -> String {
        if let v = try await read(key) { return v }
        let insert = store.statement("INSERT INTO \"_basalt_settings\" (\"key\", \"value\") VALUES (\(key), \(make()))")
        do { _ = try await store.write([insert]) } catch StoreError.uniqueViolation {}  // another replica won
        return try await read(key) ?? ""
    }

    struct Setting: StoredRow {
        static let columns: [SQLColumnType] = [.text]
        var value: String?
        init(_ r: inout RowReader) { value = r.text() }
    }

    func read(_ key: String) async throws -> String? {
        try await store.fetchOne("SELECT \"value\" FROM \"_basalt_settings\" WHERE \"key\" = \(key)", as: Setting.self)?.value
    }
}
