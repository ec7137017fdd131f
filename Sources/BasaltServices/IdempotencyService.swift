import BasaltCore
public import BasaltStorage

/// `Idempotency-Key` (IETF httpapi draft): the first response for (key, caller, method, path)
/// is kept 24 h; a retry with the same body replays it, another body is 422, a retry while the
/// first runs is 409. The record of a successful write commits in the write's own transaction.
public struct IdempotencyService: Sendable {
    let store: any Store
    public static let lifetimeMillis: Int64 = 24 * 3600 * 1000
    public init(store: any Store) { self.store = store }

    public enum Begin: Sendable {
        case proceed(keyHash: String)
        case replay(status: Int, headers: [(String, String)], body: String?)
        case inFlight
        case mismatch
    }

    public static func isValidKey(_ k: String) -> Bool {
        (1...255).contains(k.utf8.count) && k.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E }
    }

    public func begin(key: String, caller: String, method: String, path: String, body: [UInt8]) async throws -> Begin {
        let keyHash = Digest.sha256Hex([key, caller, method, path].joined(separator: "\u{1F}"))
        let requestHash = Digest.sha256Hex(body)
        let now = Timestamp.now().millisecondsSinceEpoch
        for _ in 0..<2 {
            var ins = SQLBuilder(store.dialect)
            ins.append("INSERT INTO \"_basalt_idempotency\" (\"key_hash\", \"request_hash\", \"state\", \"created_at\") VALUES (")
            ins.bind(.text(keyHash)); ins.append(", "); ins.bind(.text(requestHash)); ins.append(", 'running', "); ins.bind(.int(now)); ins.append(")")
            do {
                _ = try await store.write([SQLStatement(ins.query)])
                return .proceed(keyHash: keyHash)
            } catch StoreError.uniqueViolation {
                var sel = SQLBuilder(store.dialect)
                sel.append("SELECT \"request_hash\", \"state\", \"status\", \"headers\", \"body\", \"created_at\" FROM \"_basalt_idempotency\" WHERE \"key_hash\" = ")
                sel.bind(.text(keyHash))
                guard let r = try await store.fetchOne(sel.query, types: [.text, .text, .int, .text, .text, .int]) else { continue }
                if now - (r[5].int ?? 0) > Self.lifetimeMillis {
                    try await forget(keyHash)
                    continue
                }
                if r[0].text != requestHash { return .mismatch }
                if r[1].text == "running" { return .inFlight }
                let headers = (try? JSONValue.parse(r[3].text ?? "[]"))?.arrayValue?.compactMap { pair -> (String, String)? in
                    guard let a = pair.arrayValue, a.count == 2, let k = a[0].stringValue, let v = a[1].stringValue else { return nil }
                    return (k, v)
                } ?? []
                return .replay(status: Int(r[2].int ?? 200), headers: headers, body: r[4].text)
            }
        }
        return .inFlight
    }

    /// The statement that completes the record; run it in the write's transaction or alone.
    public func completion(keyHash: String, status: Int, headers: [(String, String)], body: String?) -> SQLStatement {
        var b = SQLBuilder(store.dialect)
        b.append("UPDATE \"_basalt_idempotency\" SET \"state\" = 'done', \"status\" = ")
        b.bind(.int(Int64(status)))
        b.append(", \"headers\" = ")
        b.bind(.text(JSONValue.array(headers.map { .array([.string($0.0), .string($0.1)]) }).serialized()))
        b.append(", \"body\" = ")
        b.bind(body.map { .text($0) } ?? .null)
        b.append(" WHERE \"key_hash\" = ")
        b.bind(.text(keyHash))
        return SQLStatement(b.query)
    }

    public func complete(keyHash: String, status: Int, headers: [(String, String)], body: String?) async throws {
        _ = try await store.write([completion(keyHash: keyHash, status: status, headers: headers, body: body)])
    }

    /// Drops a record whose response must not be replayed (5xx, 429, 409 in flight).
    public func forget(_ keyHash: String) async throws {
        var b = SQLBuilder(store.dialect)
        b.append("DELETE FROM \"_basalt_idempotency\" WHERE \"key_hash\" = ")
        b.bind(.text(keyHash))
        _ = try await store.write([SQLStatement(b.query)])
    }

    /// Deletes expired records; run on a schedule.
    public func purge() async throws {
        var b = SQLBuilder(store.dialect)
        b.append("DELETE FROM \"_basalt_idempotency\" WHERE \"created_at\" < ")
        b.bind(.int(Timestamp.now().millisecondsSinceEpoch - Self.lifetimeMillis))
        _ = try await store.write([SQLStatement(b.query)])
    }
}
