public import BasaltCore
import Yams

/// Schema files are YAML (or JSON, which is YAML). Mappings keep their order, so collections and
/// fields appear in the order the file declares them.
public enum SchemaYAML {
    public static func parse(_ text: String) throws(BasaltError) -> JSONValue {
        do {
            guard let node = try Yams.compose(yaml: text) else { return .object(JSONObject()) }
            return try json(node)
        } catch let e as BasaltError {
            throw e
        } catch {
            throw BasaltError(.badRequest, "The schema is not valid YAML: \(error)")
        }
    }

    static func json(_ node: Node) throws -> JSONValue {
        switch node {
        case .mapping(let m):
            var o = JSONObject()
            for (k, v) in m {
                guard let key = k.string else { throw BasaltError.badRequest("YAML keys must be strings") }
                o.append(key, try json(v))
            }
            return .object(o)
        case .sequence(let s):
            return .array(try s.map(json))
        case .scalar(let s):
            if s.style == .plain {
                if let b = node.bool { return .bool(b) }
                if let i = node.int { return .int(Int64(i)) }
                if let d = node.float { return .double(d) }
                if node.null != nil { return .null }
            }
            return .string(s.string)
        case .alias:
            throw BasaltError.badRequest("YAML aliases are not supported in schema files")
        }
    }

    /// YAML text of a JSON value, keys in order.
    public static func emit(_ value: JSONValue) -> String {
        var out = ""
        write(value, indent: 0, into: &out, inline: false)
        return out
    }

    static func scalar(_ v: JSONValue) -> String? {
        switch v {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .string(let s): return quote(s)
        case .array(let a)
        where a.allSatisfy({
            if case .array = $0 { return false }
            if case .object = $0 { return false }
            return true
        }):
            return "[" + a.compactMap(scalar).joined(separator: ", ") + "]"
        case .object(let o) where o.isEmpty: return "{}"
        case .array(let a) where a.isEmpty: return "[]"
        default: return nil
        }
    }

    static func quote(_ s: String) -> String {
        // JSON string syntax is valid YAML double-quoted syntax.
        let plainSafe =
            !s.isEmpty && s.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }
            && !["true", "false", "null", "yes", "no", "on", "off", "~"].contains(s.lowercased())
            && Double(s) == nil && Int(s) == nil
        if plainSafe { return s }
        var bytes: [UInt8] = []
        JSONValue.writeString(s, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    static func write(_ v: JSONValue, indent: Int, into out: inout String, inline: Bool) {
        let pad = String(repeating: " ", count: indent)
        switch v {
        case .object(let o) where !o.isEmpty:
            for (i, m) in o.members.enumerated() {
                let prefix = (inline && i == 0) ? "" : pad
                if let s = scalar(m.value) {
                    out += "\(prefix)\(quote(m.key)): \(s)\n"
                } else if case .object(let inner) = m.value, inner.members.allSatisfy({ scalar($0.value) != nil }), inner.count <= 8 {
                    out +=
                        "\(prefix)\(quote(m.key)): {" + inner.members.map { "\(quote($0.key)): \(scalar($0.value)!)" }.joined(separator: ", ") + "}\n"
                } else {
                    out += "\(prefix)\(quote(m.key)):\n"
                    write(m.value, indent: indent + 2, into: &out, inline: false)
                }
            }
        case .array(let a) where !a.isEmpty:
            for item in a {
                if let s = scalar(item) {
                    out += "\(pad)- \(s)\n"
                } else if case .object(let inner) = item, inner.members.allSatisfy({ scalar($0.value) != nil }) {
                    out += "\(pad)- {" + inner.members.map { "\(quote($0.key)): \(scalar($0.value)!)" }.joined(separator: ", ") + "}\n"
                } else {
                    out += "\(pad)- "
                    write(item, indent: indent + 2, into: &out, inline: true)
                }
            }
        default:
            out += pad + (scalar(v) ?? "null") + "\n"
        }
    }
}
