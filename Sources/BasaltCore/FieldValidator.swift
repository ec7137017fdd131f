import Foundation

/// Checks one JSON value against a field's type and constraints and normalizes it
/// (datetimes to canonical UTC milliseconds, relation ids to lowercase, numbers to doubles).
public enum FieldValidator {
    public static let maxJSONBytes = 1 << 20

    public static func check(_ value: JSONValue, field f: FieldSchema, pointer: String) -> Result<JSONValue, FieldError> {
        func err(_ code: FieldError.Code, _ message: String) -> Result<JSONValue, FieldError> {
            .failure(FieldError(field: pointer, code: code, message: message))
        }
        if value.isNull {
            return f.required ? err(.required, "\(f.name) is required") : .success(.null)
        }
        switch f.type {
        case .text, .email, .url:
            guard let s = value.stringValue else { return err(.type, "\(f.name) must be a string") }
            if s.utf8.contains(0) { return err(.format, "\(f.name) must not contain U+0000") }
            let n = Double(s.unicodeScalars.count)
            if let min = f.min, n < min { return err(.min, "\(f.name) must have at least \(fmt(min)) characters") }
            if let max = f.max, n > max { return err(.max, "\(f.name) must have at most \(fmt(max)) characters") }
            if f.type == .email, !isEmail(s) { return err(.format, "\(f.name) must be an email address") }
            if f.type == .url, !isURL(s) { return err(.format, "\(f.name) must be an absolute URL") }
            if let p = f.pattern {
                guard let re = try? Regex(p), (try? re.wholeMatch(in: s)) != nil else {
                    return err(.pattern, "\(f.name) must match \(p)")
                }
            }
            return .success(value)
        case .integer:
            guard let i = value.integerValue else { return err(.type, "\(f.name) must be an integer") }
            if let min = f.min, Double(i) < min { return err(.min, "\(f.name) must be at least \(fmt(min))") }
            if let max = f.max, Double(i) > max { return err(.max, "\(f.name) must be at most \(fmt(max))") }
            return .success(.int(i))
        case .number:
            guard let d = value.numberValue else { return err(.type, "\(f.name) must be a number") }
            if let min = f.min, d < min { return err(.min, "\(f.name) must be at least \(fmt(min))") }
            if let max = f.max, d > max { return err(.max, "\(f.name) must be at most \(fmt(max))") }
            return .success(.double(d))
        case .boolean:
            guard value.boolValue != nil else { return err(.type, "\(f.name) must be true or false") }
            return .success(value)
        case .datetime:
            guard let s = value.stringValue else { return err(.type, "\(f.name) must be an RFC 3339 date-time string") }
            guard let t = Timestamp(rfc3339: s) else { return err(.format, "\(f.name) must be an RFC 3339 date-time") }
            return .success(.string(t.rfc3339))
        case .select:
            guard let s = value.stringValue else { return err(.type, "\(f.name) must be a string") }
            guard f.values.contains(s) else {
                return err(.enum, "\(f.name) must be one of \(f.values.joined(separator: ", "))")
            }
            return .success(value)
        case .json:
            if value.serializedBytes().count > maxJSONBytes { return err(.max, "\(f.name) is larger than 1 MiB") }
            // PostgreSQL's jsonb and text cannot hold U+0000; refuse it on every backend alike.
            if containsNUL(value) { return err(.format, "\(f.name) must not contain U+0000") }
            return .success(value)
        case .relation:
            guard let s = value.stringValue else { return err(.type, "\(f.name) must be a record id") }
            guard let id = RecordID.normalize(s) else { return err(.format, "\(f.name) must be a UUID") }
            return .success(.string(id))
        }
    }

    static func containsNUL(_ v: JSONValue) -> Bool {
        switch v {
        case .string(let s): return s.utf8.contains(0)
        case .array(let a): return a.contains(where: containsNUL)
        case .object(let o): return o.members.contains { $0.key.utf8.contains(0) || containsNUL($0.value) }
        default: return false
        }
    }

    static func fmt(_ d: Double) -> String {
        d.rounded() == d && abs(d) < 9e15 ? String(Int64(d)) : String(d)
    }

    /// A pragmatic addr-spec check: local@domain, no whitespace, a dotted domain.
    public static func isEmail(_ s: String) -> Bool {
        // RFC 5321 dot-atom local part (ASCII atext) and a host name of LDH labels whose last
        // label starts with a letter — exactly the pattern the OpenAPI document publishes, which
        // is why the local part's 64-octet limit is not enforced (a pattern cannot say it without
        // look-ahead). Internationalized addresses (SMTPUTF8, U-labels) are not accepted yet: IDN
        // domains can be given in punycode (xn--…).
        guard s.utf8.count <= 254 else { return false }
        let parts = s.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty else { return false }
        let atext = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-".utf8)
        let atoms = parts[0].utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard atoms.allSatisfy({ !$0.isEmpty && $0.allSatisfy(atext.contains) }) else { return false }
        let labels = parts[1].utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard labels.count >= 2, labels.allSatisfy(isHostLabel), let tld = labels.last?.first, isASCIILetter(tld) else { return false }
        return true
    }

    static func isASCIILetter(_ c: UInt8) -> Bool { (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) }

    /// 1–63 letters, digits and hyphens, not starting or ending with a hyphen.
    static func isHostLabel(_ l: Substring.UTF8View.SubSequence) -> Bool {
        guard (1...63).contains(l.count), l.first != UInt8(ascii: "-"), l.last != UInt8(ascii: "-") else { return false }
        return l.allSatisfy { isASCIILetter($0) || (0x30...0x39).contains($0) || $0 == UInt8(ascii: "-") }
    }

    /// `scheme://host[...]` with an RFC 3986 scheme and no whitespace.
    public static func isURL(_ s: String) -> Bool {
        guard !s.contains(where: { $0.isWhitespace || $0.isNewline }), let r = s.range(of: "://") else { return false }
        let scheme = s[s.startIndex..<r.lowerBound]
        guard let first = scheme.unicodeScalars.first, ("a"..."z").contains(first) || ("A"..."Z").contains(first),
            scheme.unicodeScalars.allSatisfy({
                ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "+.-".unicodeScalars.contains($0)
            })
        else { return false }
        let rest = s[r.upperBound...]
        let host = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        return !host.isEmpty
    }
}
