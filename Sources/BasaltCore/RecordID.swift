import Crypto

/// Record ids: lowercase canonical UUIDs, UUIDv7 (RFC 9562) when the server makes them, so new
/// rows land at the right edge of the primary-key B-tree.
public enum RecordID {
    /// A new UUIDv7: 48-bit Unix milliseconds, version 7, 74 random bits.
    public static func make(at time: Timestamp = .now()) -> String {
        var rng = IdentifierRandom()
        let r1 = rng.next() as UInt64
        let r2 = rng.next() as UInt64
        let ms = UInt64(max(0, time.millisecondsSinceEpoch))
        // 48 bits of time, then version 7 and 12 random bits, variant 10 and 62 random bits.
        let high = ms << 16 | 0x7000 | (r1 & 0x0FFF)
        let low = 0x8000_0000_0000_0000 | (r2 & 0x3FFF_FFFF_FFFF_FFFF)
        return String(unsafeUninitializedCapacity: 36) { out in
            var at = 0
            for (n, group) in groups.enumerated() {
                if n > 0 {
                    out[at] = 0x2D
                    at += 1
                }
                let word = group.low ? low : high
                for k in 0..<group.nibbles {
                    out[at] = hex[Int((word >> UInt64(group.shift - 4 * k)) & 0xF)]
                    at += 1
                }
            }
            return at
        }
    }

    /// The 8-4-4-4-12 groups of the text: which word, its first nibble's shift, how many nibbles.
    static let groups: [(low: Bool, shift: Int, nibbles: Int)] = [(false, 60, 8), (false, 28, 4), (false, 12, 4), (true, 60, 4), (true, 44, 12)]

    static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// Whether `u` is a UUID in canonical 8-4-4-4-12 lowercase form. Walked as a buffer: a walk
    /// by `String.UTF8View` index cost about 1,500 instructions an id, asked several times a request.
    static func isCanonical(_ u: String.UTF8View) -> Bool {
        if let verdict = u.withContiguousStorageIfAvailable({ isCanonical($0) }) { return verdict }
        return Array(u).withUnsafeBufferPointer { isCanonical($0) }
    }

    static func isCanonical(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard b.count == 36 else { return false }
        for i in 0..<36 {
            let c = b[i]
            if i == 8 || i == 13 || i == 18 || i == 23 {
                if c != 0x2D { return false }
            } else if !((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66)) {
                return false
            }
        }
        return true
    }

    /// The canonical lowercase form of a UUID in 8-4-4-4-12 form, or nil if `text` is not one.
    public static func normalize(_ text: String) -> String? {
        guard text.utf8.count == 36 else { return nil }
        // Ids arrive canonical almost always (they are what the server handed out): that is
        // answered with the text itself, without copying it.
        if isCanonical(text.utf8) { return text }
        let lowered = String(decoding: text.utf8.map { (0x41...0x46).contains($0) ? $0 + 0x20 : $0 }, as: UTF8.self)
        return isCanonical(lowered.utf8) ? lowered : nil
    }
}

/// Small helpers for secrets and digests shared by services.
public enum Digest {
    public static func sha256Hex(_ s: String) -> String { sha256Hex(Array(s.utf8)) }

    /// Equality whose time depends on the length only, not on where the first difference is:
    /// for secrets (hashes, one-time codes, tokens).
    public static func constantTimeEqual(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for (x, y) in zip(a, b) { diff |= x ^ y }
        return diff == 0
    }

    public static func sha256Hex(_ bytes: [UInt8]) -> String { hex(SHA256.hash(data: bytes)) }

    public static func sha256(_ bytes: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: bytes)) }

    /// The 16 lowercase hex digits of `v` (a trace or span id).
    public static func hex(_ v: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { out in
            for i in 0..<16 { out[15 - i] = RecordID.hex[Int((v >> (UInt64(i) * 4)) & 0xF)] }
            return 16
        }
    }

    /// Lowercase hex of `bytes` (a digest, say).
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity(64)
        for b in bytes {
            out.append(RecordID.hex[Int(b >> 4)])
            out.append(RecordID.hex[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func randomToken(bytes n: Int) -> String {
        var rng = SystemRandomNumberGenerator()
        let raw = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return Base64URL.encode(raw)
    }
}

/// base64url without padding (RFC 4648 §5).
public enum Base64URL {
    static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    public static func encode(_ data: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity((data.count * 4 + 2) / 3)
        var i = 0
        while i + 2 < data.count {
            let n = UInt32(data[i]) << 16 | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2])
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], alphabet[Int(n & 63)]]
            i += 3
        }
        let rest = data.count - i
        if rest == 1 {
            let n = UInt32(data[i]) << 16
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)]]
        } else if rest == 2 {
            let n = UInt32(data[i]) << 16 | UInt32(data[i + 1]) << 8
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)]]
        }
        return String(decoding: out, as: UTF8.self)
    }
    public static func decode(_ s: String) -> [UInt8]? {
        var vals = [UInt8]()
        vals.reserveCapacity(s.utf8.count)
        for c in s.utf8 {
            switch c {
            case 0x41...0x5A: vals.append(c - 0x41)
            case 0x61...0x7A: vals.append(c - 0x61 + 26)
            case 0x30...0x39: vals.append(c - 0x30 + 52)
            case 0x2D: vals.append(62)
            case 0x5F: vals.append(63)
            default: return nil
            }
        }
        if vals.count % 4 == 1 { return nil }
        var out = [UInt8]()
        var i = 0
        while i < vals.count {
            let chunk = vals[i..<min(i + 4, vals.count)]
            var n: UInt32 = 0
            for (k, v) in chunk.enumerated() { n |= UInt32(v) << UInt32(18 - 6 * k) }
            out.append(UInt8(n >> 16 & 0xFF))
            if chunk.count > 2 { out.append(UInt8(n >> 8 & 0xFF)) }
            if chunk.count > 3 { out.append(UInt8(n & 0xFF)) }
            i += 4
        }
        return out
    }
}
