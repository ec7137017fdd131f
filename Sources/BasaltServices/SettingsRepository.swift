import BasaltCore
public import BasaltStorage

/// Deployment-wide values kept in the database (shared by every replica).
public struct SettingsRepository: Sendable {
    let store: any Store
    public init(store: any Store) { self.store = store }

    /// The value under `key`, creating it with `make()` the first time.
    public func value(_ key: String, orCreate make: () -> String) async throws -> String {
        if let v = try await read(key) { return v }
        var b = SQLBuilder(store.dialect)
        b.append("INSERT INTO \"_basalt_settings\" (\"key\", \"value\") VALUES (")
        b.bind(.text(key)); b.append(", "); b.bind(.text(make())); b.append(")")
        do { _ = try await store.write([SQLStatement(b.query)]) } catch StoreError.uniqueViolation {}  // another replica won
        return try await read(key) ?? ""
    }

    func read(_ key: String) async throws -> String? {
        var b = SQLBuilder(store.dialect)
        b.append("SELECT \"value\" FROM \"_basalt_settings\" WHERE \"key\" = ")
        b.bind(.text(key))
        return try await store.fetchOne(b.query, types: [.text])?.first?.text
    }
}
