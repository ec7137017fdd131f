public import BasaltCore
public import BasaltStorage
import Crypto

/// Opaque keyset cursors: base64url of the last row's sort values and a hash of the query,
/// HMAC-signed so a client can neither forge one nor replay it on another query or as another
/// caller.
public struct CursorCodec: Sendable {
    let secret: [UInt8]
    public init(secret: [UInt8]) { self.secret = secret }
    var key: SymmetricKey { SymmetricKey(data: secret) }

    public func encode(values: [SQLValue], queryHash: String) -> String {
        let payload = JSONValue.array([.string(queryHash), .array(values.map(\.portableJSON))]).serializedBytes()
        let mac = HMAC<SHA256>.authenticationCode(for: payload, using: key)
        return Base64URL.encode(payload) + "." + Base64URL.encode(Array(mac))
    }

    public func decode(_ cursor: String, queryHash: String, types: [SQLColumnType]) throws(BasaltError) -> [SQLValue] {
        let bad = BasaltError.badRequest("The cursor is invalid or belongs to another query")
        let parts = cursor.split(separator: ".")
        guard parts.count == 2, let payload = Base64URL.decode(String(parts[0])), let mac = Base64URL.decode(String(parts[1])),
            HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: payload, using: key),
            case .array(let top)? = try? JSONValue.parse(payload), top.count == 2, top[0].stringValue == queryHash,
            case .array(let vals) = top[1], vals.count == types.count
        else { throw bad }
        var out: [SQLValue] = []
        for (v, t) in zip(vals, types) {
            guard let sv = SQLValue(portableJSON: v, as: t) else { throw bad }
            out.append(sv)
        }
        return out
    }

    public static func queryHash(_ parts: [String]) -> String {
        String(Digest.sha256Hex(parts.joined(separator: "\u{1F}")).prefix(24))
    }
}
