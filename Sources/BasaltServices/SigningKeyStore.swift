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

    public func load() async throws -> [SigningKey] {
        let rows = try await store.fetch(SQLQuery(sql: "SELECT \"kid\", \"private_key\", \"created_at\", \"retired_at\" FROM \"_basalt_signing_keys\" ORDER BY \"created_at\""),
                                         types: [.text, .text, .int, .int])
        return try rows.map { r in
            let raw = try box.open(r[1].text ?? "")
            return SigningKey(kid: r[0].text ?? "", privateKey: try Curve25519.Signing.PrivateKey(rawRepresentation: raw),
                              createdAt: Timestamp(millisecondsSinceEpoch: r[2].int ?? 0), retiredAt: r[3].int.map(Timestamp.init(millisecondsSinceEpoch:)))
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
            SQLStatement(SQLQuery.build(store.dialect, ["UPDATE \"_basalt_signing_keys\" SET \"retired_at\" = ", SQLValue.int(t), " WHERE \"retired_at\" IS NULL"])),
            SQLStatement(SQLQuery.build(store.dialect, ["DELETE FROM \"_basalt_signing_keys\" WHERE \"retired_at\" < ",
                                                              SQLValue.int(t - Int64(keep.components.seconds) * 1000)])),
            SQLStatement(SQLQuery.build(store.dialect, [
                "INSERT INTO \"_basalt_signing_keys\" (\"kid\", \"private_key\", \"created_at\") VALUES (",
                SQLValue.text(key.kid), ", ", SQLValue.text(sealed), ", ", SQLValue.int(t), ")",
            ])),
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
