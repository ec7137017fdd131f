public import BasaltCore
public import BasaltStorage

/// API keys (`bsk_…`): shown once, stored as SHA-256 digests (a key is 256 random bits, so a
/// fast digest is enough — a leaked table yields no usable key), optionally expiring, revocable.
public final class ApiKeyService: Sendable {
    let store: any Store
    /// Digest → (principal, expiry, cached at). Saves a database read per request; entries live
    /// `cacheSeconds`, and revocation through this process drops them at once.
    /// A key read before a revocation that has since committed is not kept.
    let cache = InvalidatingCache<String, (Principal, Int64?, Int64)>(capacity: 10_000)
    let cacheMillis: Int64 = 5_000

    public init(store: any Store) { self.store = store }

    public struct Created: Sendable {
        public var key: String
        public var record: JSONValue
    }

    /// `also(id)`: statements that commit with the key (its audit entry), or with nothing.
    public func create(
        name: String,
        admin: Bool,
        roles: [String],
        expiresAt: Timestamp?,
        also: (String) -> [SQLStatement] = { _ in [] }
    ) async throws -> Created {
        guard !name.isEmpty, name.count <= 200 else {
            throw BasaltError.validation([FieldError(field: "/name", code: .required, message: "name is required (at most 200 characters)")])
        }
        let key = "bsk_" + Digest.randomToken(bytes: 32)
        let id = RecordID.make()
        let now = Timestamp.now()
        let prefix = String(key.prefix(12))
        let rolesJSON = JSONValue.array(roles.map { .string($0) }).serialized()
        let insert = store.statement(
            """
            INSERT INTO "_basalt_api_keys" ("id", "name", "key_hash", "prefix", "admin", "roles", "created_at", "expires_at")
            VALUES (\(id), \(name), \(Digest.sha256Hex(key)), \(prefix), \(admin), \(rolesJSON),
                    \(now.millisecondsSinceEpoch), \(expiresAt?.millisecondsSinceEpoch))
            """
        )
        _ = try await store.write([insert] + also(id))
        var rec = Self.json(id: id, name: name, prefix: prefix, admin: admin, roles: roles, createdAt: now, expiresAt: expiresAt, lastUsed: nil)
        if case .object(var o) = rec {
            o.append("key", .string(key))
            rec = .object(o)
        }
        return Created(key: key, record: rec)
    }

    static func json(
        id: String,
        name: String,
        prefix: String,
        admin: Bool,
        roles: [String],
        createdAt: Timestamp,
        expiresAt: Timestamp?,
        lastUsed: Timestamp?
    ) -> JSONValue {
        .object(
            JSONObject([
                ("id", .string(id)), ("name", .string(name)), ("prefix", .string(prefix)), ("admin", .bool(admin)),
                ("roles", .array(roles.map { .string($0) })), ("created_at", .string(createdAt.rfc3339)),
                ("expires_at", expiresAt.map { .string($0.rfc3339) } ?? .null), ("last_used_at", lastUsed.map { .string($0.rfc3339) } ?? .null),
            ])
        )
    }

    struct KeyRow: StoredRow {
        static let columns: [SQLColumnType] = [.text, .text, .text, .int, .text, .int, .int, .int]
        var id: String
        var name: String
        var prefix: String
        var admin: Bool
        /// The role names as a JSON array.
        var roles: String?
        var createdAt: Int64
        var expiresAt: Int64?
        var lastUsedAt: Int64?
        init(_ r: inout RowReader) {
            id = r.text() ?? ""
            name = r.text() ?? ""
            prefix = r.text() ?? ""
            admin = r.flag()
            roles = r.text()
            createdAt = r.int() ?? 0
            expiresAt = r.int()
            lastUsedAt = r.int()
        }
    }

    public func list() async throws -> [JSONValue] {
        let rows = try await store.fetch(
            """
            SELECT "id", "name", "prefix", "admin", "roles", "created_at", "expires_at", "last_used_at"
            FROM "_basalt_api_keys" WHERE "revoked_at" IS NULL ORDER BY "created_at" DESC
            """,
            as: KeyRow.self
        )
        return rows.map { k in
            Self.json(
                id: k.id,
                name: k.name,
                prefix: k.prefix,
                admin: k.admin,
                roles: Self.roles(k.roles),
                createdAt: Timestamp(millisecondsSinceEpoch: k.createdAt),
                expiresAt: k.expiresAt.map(Timestamp.init(millisecondsSinceEpoch:)),
                lastUsed: k.lastUsedAt.map(Timestamp.init(millisecondsSinceEpoch:))
            )
        }
    }

    public func revoke(id: String) async throws {
        do {
            _ = try await store.write([
                store.statement(
                    """
                    UPDATE "_basalt_api_keys" SET "revoked_at" = \(Timestamp.now().millisecondsSinceEpoch)
                    WHERE "id" = \(id) AND "revoked_at" IS NULL
                    """,
                    expect: .one
                )
            ])
        } catch StoreError.expectationFailed {
            throw BasaltError.notFound("There is no API key with this id")
        }
        cache.invalidateAll()
    }

    static func roles(_ text: String?) -> [String] {
        ((try? JSONValue.parse(text ?? "[]"))?.arrayValue ?? []).compactMap(\.stringValue)
    }

    struct PresentedKey: StoredRow {
        static let columns: [SQLColumnType] = [.text, .int, .text, .int]
        var id: String?
        var admin: Bool
        /// The role names as a JSON array.
        var roles: String?
        var expiresAt: Int64?
        init(_ r: inout RowReader) {
            id = r.text()
            admin = r.flag()
            roles = r.text()
            expiresAt = r.int()
        }
    }

    /// The principal of a presented key, or nil when it is unknown, expired or revoked.
    public func authenticate(_ key: String) async throws -> Principal? {
        let digest = Digest.sha256Hex(key)
        let now = Timestamp.now().millisecondsSinceEpoch
        if let hit = cache.value(digest), now - hit.2 < cacheMillis {
            if let exp = hit.1, exp <= now { return nil }
            return hit.0
        }
        let sql: SQL = """
            SELECT "id", "admin", "roles", "expires_at" FROM "_basalt_api_keys" WHERE "key_hash" = \(digest) AND "revoked_at" IS NULL
            """
        let before = cache.epoch()
        guard let k = try await store.fetchOne(sql, as: PresentedKey.self) else { return nil }
        let p = Principal(kind: k.admin ? .admin : .subject, id: k.id, roles: Set(Self.roles(k.roles)))
        cache.store(digest, (p, k.expiresAt, now), readAt: before)
        if let exp = k.expiresAt, exp <= now { return nil }
        // Last use, at the cache's granularity: one small write per key per 5 s at most. Best
        // effort: a database that cannot take writes (a full disk) must not refuse valid keys.
        _ = try? await store.write([store.statement("UPDATE \"_basalt_api_keys\" SET \"last_used_at\" = \(now) WHERE \"key_hash\" = \(digest)")])
        return p
    }
}
