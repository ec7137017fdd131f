public import BasaltCore
import Crypto
import Foundation

/// Encrypts secrets at rest (signing keys, TOTP seeds) with AES-256-GCM under the deployment's
/// master key, so a copy of the database alone does not yield them.
public struct SecretBox: Sendable {
    let key: SymmetricKey

    /// `material`: 32 bytes of key.
    public init(keyBytes material: [UInt8]) throws(BasaltError) {
        guard material.count == 32 else { throw BasaltError(.internalError, "The secret key must be 32 bytes") }
        key = SymmetricKey(data: material)
    }

    /// Parses a configured key: 64 hex digits or base64/base64url of 32 bytes.
    public init(encoded: String) throws(BasaltError) {
        let s = encoded.trimmingCharacters(in: .whitespacesAndNewlines)
        if s.count == 64, let bytes = Self.hex(s) {
            try self.init(keyBytes: bytes)
        } else if let bytes = Base64URL.decode(
            s.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .trimmingCharacters(in: CharacterSet(charactersIn: "="))
        ), bytes.count == 32 {
            try self.init(keyBytes: bytes)
        } else {
            throw BasaltError(.badRequest, "The secret key must be 32 bytes as 64 hex digits or base64")
        }
    }

    /// A fingerprint of the key, never the key: says which key a backup's sealed secrets need.
    public var keyID: String {
        key.withUnsafeBytes { String(Digest.sha256Hex(Array("basalt-secret-key-id:".utf8) + Array($0)).prefix(16)) }
    }

    public static func generateEncoded() -> String {
        let k = SymmetricKey(size: .bits256)
        return k.withUnsafeBytes { Base64URL.encode(Array($0)) }
    }

    public func seal(_ plaintext: [UInt8]) throws -> String {
        let box = try AES.GCM.seal(plaintext, using: key)
        guard let combined = box.combined else { throw BasaltError(.internalError, "Sealing failed") }
        return "v1." + Base64URL.encode(Array(combined))
    }

    public func open(_ sealed: String) throws -> [UInt8] {
        guard sealed.hasPrefix("v1."), let bytes = Base64URL.decode(String(sealed.dropFirst(3))) else {
            throw BasaltError(.internalError, "A sealed secret is malformed")
        }
        do {
            return Array(try AES.GCM.open(AES.GCM.SealedBox(combined: bytes), using: key))
        } catch {
            throw BasaltError(.internalError, "A sealed secret cannot be opened: is BASALT_SECRET_KEY the one it was sealed with?")
        }
    }

    static func hex(_ s: String) -> [UInt8]? {
        var out: [UInt8] = []
        var it = s.utf8.makeIterator()
        while let a = it.next() {
            guard let b = it.next(), let h = nibble(a), let l = nibble(b) else { return nil }
            out.append(h << 4 | l)
        }
        return out
    }

    static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
