public import BasaltCore
import Foundation
import HummingbirdOTP

/// TOTP (RFC 6238: 30 s steps, 6 digits, HMAC-SHA1 — what authenticator apps expect) through
/// HummingbirdOTP, plus the base32 the apps want.
public enum OneTimePasswords {
    /// A new shared secret: 20 random characters of the base32 alphabet. HummingbirdOTP keys its
    /// HMAC with the secret's UTF-8 bytes, and the otpauth URI carries base32 of those bytes.
    public static func newSecret() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var rng = SystemRandomNumberGenerator()
        return String((0..<20).map { _ in alphabet[Int(rng.next(upperBound: UInt32(alphabet.count)))] })
    }

    /// `otpauth://totp/Issuer:label?secret=…&issuer=Issuer`
    public static func uri(secret: String, label: String, issuer: String) -> String {
        TOTP(secret: secret).createAuthenticatorURL(label: "\(issuer):\(label)", issuer: issuer)
    }

    /// The secret as an authenticator app takes it (base32 of its bytes, no padding).
    public static func base32(secret: String) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var out = ""
        var buffer = 0
        var bits = 0
        for b in secret.utf8 {
            buffer = (buffer << 8) | Int(b)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[(buffer >> (bits - 5)) & 31])
                bits -= 5
            }
        }
        if bits > 0 { out.append(alphabet[(buffer << (5 - bits)) & 31]) }
        return out
    }

    public static func code(secret: String, at time: Timestamp) -> String {
        let n = TOTP(secret: secret).compute(date: Date(timeIntervalSince1970: Double(time.millisecondsSinceEpoch) / 1000))
        let s = String(n)
        return String(repeating: "0", count: max(0, 6 - s.count)) + s
    }

    /// The time step `code` belongs to, allowing one step of drift either way; nil when it
    /// matches none. Callers store the step to refuse a replay of the same code.
    public static func matchingStep(secret: String, code: String, at time: Timestamp, after lastStep: Int64?) -> Int64? {
        guard code.count == 6, code.allSatisfy(\.isASCIIDigit) else { return nil }
        let step = time.millisecondsSinceEpoch / 30_000
        for s in [step - 1, step, step + 1] where s > (lastStep ?? Int64.min) {
            if Digest.constantTimeEqual(Self.code(secret: secret, at: Timestamp(millisecondsSinceEpoch: s * 30_000)).utf8, code.utf8) { return s }
        }
        return nil
    }

}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
