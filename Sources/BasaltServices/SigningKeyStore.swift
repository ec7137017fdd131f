public import BasaltAuth
public import BasaltCore
public import BasaltStorage
import Crypto

/// Persists the access-token signing keys in `_basalt_signing_keys`, private halves sealed with
/// the deployment's master key.
public struct SigningKeyStore: Sendable {
    public let store: any Store
    let box: SecretBox

    public init(store: any Store, box: SecretBox) {
        self.store = store
        self.box = box
    }

    struct StoredKey: StoredRow {
        static let columns: [SQLColumnType] = [.text, .text, .int, .int]
        var kid: String
        /// The private half, sealed with the master key.
        var sealedPrivateKey: String
        var createdAt: Int64
        var retiredAt: Int64?
        init(_ r: inout RowReader) {
            kid = r.text() ?? ""
            sealedPrivateKey = r.text() ?? ""
            createdAt = r.int() ?? 0
            retiredAt = r.int()
        }
    }

    public func load() async throws -> [SigningKey] {
        let rows = try await store.fetch(
            """
            SELECT "kid", "private_key", "created_at", "retired_at" FROM "_basalt_signing_keys" ORDER BY "created_at"
            """,
            as: StoredKey.self
        )
        return try rows.map { k in
            let raw = try box.open(k.sealedPrivateKey)
            return SigningKey(
                kid: k.kid,
                privateKey: try Curve25519.Signing.PrivateKey(rawRepresentation: raw),
                createdAt: Timestamp(millisecondsSinceEpoch: k.createdAt),
                retiredAt: k.retiredAt.map(Timestamp.init(millisecondsSinceEpoch:))
            )
        }
    }

    /// Adds a new key and retires the current ones (they stay published until their tokens
    /// expire), and forgets keys retired longer ago than `keep`. Returns the new key's id.
    @discardableResult
    public func rotate(now: Timestamp = .now(), keep: Duration = .seconds(86_400)) async throws -> String {
        let key = SigningKey.generate(at: now)
        let t = now.millisecondsSinceEpoch
        let sealed = try box.seal(Array(key.privateKey.rawRepresentation))
        _ = try await store.write([
            store.statement("UPDATE \"_basalt_signing_keys\" SET \"retired_at\" = \(t) WHERE \"retired_at\" IS NULL"),
            store.statement("DELETE FROM \"_basalt_signing_keys\" WHERE \"retired_at\" < \(t - Int64(keep.components.seconds) * 1000)"),
            store.statement(
                """
                INSERT INTO "_basalt_signing_keys" ("kid", "private_key", "created_at") VALUES (\(key.kid), \(sealed), \(t))
                """
            ),
        ])
        return key.kid
    }

    /// The keys, creating the first one when there is none.
    public func loadOrCreate() async throws -> [SigningKey] {
        let keys = try await load()
        if keys.contains(where: { $0.retiredAt == nil }) { return keys }
        try await rotate()
        return try await load()
    }
}
