public import BasaltCore
public import BasaltStorage
import Synchronization

/// API keys (`bsk_…`): shown once, stored as SHA-256 digests (a key is 256 random bits, so a
/// fast digest is enough — a leaked table yields no usable key), optionally expiring, revocable.
public final class ApiKeyService: Sendable {
    let store: any Store
    /// Digest → (principal, expiry, cached at). Saves a database read per request; entries live
    /// `cacheSeconds`, and revocation through this process drops them at once.
    let cache = Mutex<[String: (Principal, Int64?, Int64)]>([:])
    let cacheMillis: Int64 = 5_000

    public init(store: any Store) { self.store = store }

    public struct Created: Sendable {
        public var key: String
        public var record: JSONValue
    }

    /// `also(id)`: statements that commit with the key (its audit entry), or with nothing.
    public func create(name: String, admin: Bool, roles: [String], expiresAt: Timestamp?,
                       also: (String) -> [SQLStatement] = { _ in [] }) async throws -> Created {
        guard !name.isEmpty, name.count <= 200 else {
            throw BasaltError.validation([FieldError(field: "/name", code: .required, message: "name is required (at most 200 characters)")])
        }
        let key = "bsk_" + Digest.randomToken(bytes: 32)
        let id = RecordID.make()
        let now = Timestamp.now()
        var b = SQLBuilder(store.dialect)
        b.append("INSERT INTO \"_basalt_api_keys\" (\"id\", \"name\", \"key_hash\", \"prefix\", \"admin\", \"roles\", \"created_at\", \"expires_at\") VALUES (")
        let values: [SQLValue] = [.text(id), .text(name), .text(Digest.sha256Hex(key)), .text(String(key.prefix(12))), .int(admin ? 1 : 0),
                                  .text(JSONValue.array(roles.map { .string($0) }).serialized()), .int(now.millisecondsSinceEpoch),
                                  expiresAt.map { .int($0.millisecondsSinceEpoch) } ?? .null]
        b.bindList(values)
        b.append(")")
        _ = try await store.write([SQLStatement(b.query)] + also(id))
        var rec = Self.json(id: id, name: name, prefix: String(key.prefix(12)), admin: admin, roles: roles, createdAt: now, expiresAt: expiresAt, lastUsed: nil)
        if case .object(var o) = rec {
            o.append("key", .string(key))
            rec = .object(o)
        }
        return Created(key: key, record: rec)
    }

    static func json(id: String, name: String, prefix: String, admin: Bool, roles: [String], createdAt: Timestamp, expiresAt: Timestamp?, lastUsed: Timestamp?) -> JSONValue {
        .object(JSONObject([
            ("id", .string(id)), ("name", .string(name)), ("prefix", .string(prefix)), ("admin", .bool(admin)),
            ("roles", .array(roles.map { .string($0) })), ("created_at", .string(createdAt.rfc3339)),
            ("expires_at", expiresAt.map { .string($0.rfc3339) } ?? .null), ("last_used_at", lastUsed.map { .string($0.rfc3339) } ?? .null),
        ]))
    }

    public func list() async throws -> [JSONValue] {
        let rows = try await store.fetch(SQLQuery(sql: "SELECT \"id\", \"name\", \"prefix\", \"admin\", \"roles\", \"created_at\", \"expires_at\", \"last_used_at\" FROM \"_basalt_api_keys\" WHERE \"revoked_at\" IS NULL ORDER BY \"created_at\" DESC"),
                                         types: [.text, .text, .text, .int, .text, .int, .int, .int])
        return rows.map { r in
            Self.json(id: r[0].text ?? "", name: r[1].text ?? "", prefix: r[2].text ?? "", admin: r[3].int == 1,
                      roles: Self.roles(r[4].text), createdAt: Timestamp(millisecondsSinceEpoch: r[5].int ?? 0),
                      expiresAt: r[6].int.map(Timestamp.init(millisecondsSinceEpoch:)), lastUsed: r[7].int.map(Timestamp.init(millisecondsSinceEpoch:)))
        }
    }

    public func revoke(id: String) async throws {
        var b = SQLBuilder(store.dialect)
        b.append("UPDATE \"_basalt_api_keys\" SET \"revoked_at\" = ")
        b.bind(.int(Timestamp.now().millisecondsSinceEpoch))
        b.append(" WHERE \"id\" = ")
        b.bind(.text(id))
        b.append(" AND \"revoked_at\" IS NULL")
        do {
            _ = try await store.write([SQLStatement(b.query, expect: .one)])
        } catch StoreError.expectationFailed {
            throw BasaltError.notFound("There is no API key with this id")
        }
        cache.withLock { $0 = [:] }
    }

    static func roles(_ text: String?) -> [String] {
        ((try? JSONValue.parse(text ?? "[]"))?.arrayValue ?? []).compactMap(\.stringValue)
    }

    /// The principal of a presented key, or nil when it is unknown, expired or revoked.
    public func authenticate(_ key: String) async throws -> Principal? {
        let digest = Digest.sha256Hex(key)
        let now = Timestamp.now().millisecondsSinceEpoch
        if let hit = cache.withLock({ $0[digest] }), now - hit.2 < cacheMillis {
            if let exp = hit.1, exp <= now { return nil }
            return hit.0
        }
        var b = SQLBuilder(store.dialect)
        b.append("SELECT \"id\", \"admin\", \"roles\", \"expires_at\" FROM \"_basalt_api_keys\" WHERE \"key_hash\" = ")
        b.bind(.text(digest))
        b.append(" AND \"revoked_at\" IS NULL")
        guard let r = try await store.fetchOne(b.query, types: [.text, .int, .text, .int]) else { return nil }
        let p = Principal(kind: r[1].int == 1 ? .admin : .subject, id: r[0].text, roles: Set(Self.roles(r[2].text)))
        cache.withLock {
            if $0.count > 10_000 { $0 = [:] }
            $0[digest] = (p, r[3].int, now)
        }
        if let exp = r[3].int, exp <= now { return nil }
        // Last use, at the cache's granularity: one small write per key per 5 s at most. Best
        // effort: a database that cannot take writes (a full disk) must not refuse valid keys.
        _ = try? await store.write([store.statement("UPDATE \"_basalt_api_keys\" SET \"last_used_at\" = \(now) WHERE \"key_hash\" = \(digest)")])
        return p
    }
}
