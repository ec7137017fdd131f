import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A webhook's URL, checked: `http`/`https`, a host, no credentials. Whether its addresses may
/// be called is `AddressPolicy`'s question, asked at registration and again at every delivery.
public struct WebhookTarget: Sendable, Equatable {
    public let url: String
    public let scheme: String
    /// Without IPv6 brackets.
    public let host: String

    public enum Problem: Error, Equatable {
        case invalid(String)
        case forbidden(String)
    }

    public init(_ text: String) throws(Problem) {
        guard text.utf8.count <= 2048, let c = URLComponents(string: text), let scheme = c.scheme?.lowercased(),
            scheme == "http" || scheme == "https"
        else { throw .invalid("url must be an absolute http or https URL") }
        guard let raw = c.host, !raw.isEmpty else { throw .invalid("url must name a host") }
        guard c.user == nil && c.password == nil else { throw .invalid("url must not carry credentials") }
        url = text
        self.scheme = scheme
        host = raw.hasPrefix("[") && raw.hasSuffix("]") ? String(raw.dropFirst().dropLast()) : raw.lowercased()
    }

    /// The host as an address, when it is one.
    public var literalAddress: String? { AddressPolicy.parse(host) == nil ? nil : host }

    /// Names that mean this machine whatever DNS says (RFC 6761).
    public var isLocalName: Bool {
        let h = host.hasSuffix(".") ? String(host.dropLast()) : host
        return h == "localhost" || h.hasSuffix(".localhost")
    }
}

/// Which addresses webhooks may call: none that reaches this machine or a private network —
/// loopback, RFC 1918, carrier-grade NAT, link-local (cloud metadata services live there),
/// unique-local, multicast, unspecified and reserved ranges, and IPv6 forms embedding such an
/// IPv4 address — unless the deployment allows private targets.
public struct AddressPolicy: Sendable {
    public let allowPrivate: Bool
    public init(allowPrivate: Bool) { self.allowPrivate = allowPrivate }

    public func permits(_ address: String) -> Bool {
        allowPrivate || !Self.isInternal(address)
    }

    enum Address {
        case v4(UInt32)
        case v6([UInt8])
    }

    static func parse(_ text: String) -> Address? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return .v4(UInt32(bigEndian: v4.s_addr)) }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return .v6(withUnsafeBytes(of: v6) { Array($0) })
        }
        return nil
    }

    /// Whether `address` (an IPv4 or IPv6 literal) is internal; text that is no address is.
    public static func isInternal(_ address: String) -> Bool {
        switch parse(address) {
        case .v4(let a): return isInternal(v4: a)
        case .v6(let b): return isInternal(v6: b)
        case nil: return true
        }
    }

    static func isInternal(v4 a: UInt32) -> Bool {
        let blocked: [(UInt32, Int)] = [
            (0x0000_0000, 8),  // "this network"
            (0x0A00_0000, 8),  // 10/8
            (0x6440_0000, 10),  // 100.64/10 carrier-grade NAT
            (0x7F00_0000, 8),  // loopback
            (0xA9FE_0000, 16),  // 169.254/16 link-local
            (0xAC10_0000, 12),  // 172.16/12
            (0xC000_0000, 24),  // 192.0.0/24 protocol assignments
            (0xC000_0200, 24),  // 192.0.2/24 documentation
            (0xC0A8_0000, 16),  // 192.168/16
            (0xC612_0000, 15),  // 198.18/15 benchmarking
            (0xC633_6400, 24),  // 198.51.100/24 documentation
            (0xCB00_7100, 24),  // 203.0.113/24 documentation
            (0xE000_0000, 4),  // multicast
            (0xF000_0000, 4),  // reserved, broadcast
        ]
        return blocked.contains { net, bits in a >> (32 - bits) == net >> (32 - bits) }
    }

    static func isInternal(v6 b: [UInt8]) -> Bool {
        let embedded = UInt32(b[12]) << 24 | UInt32(b[13]) << 16 | UInt32(b[14]) << 8 | UInt32(b[15])
        if b[0..<15].allSatisfy({ $0 == 0 }) { return true }  // :: and ::1
        if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF { return isInternal(v4: embedded) }  // ::ffff:a.b.c.d
        if b[0..<12].allSatisfy({ $0 == 0 }) { return isInternal(v4: embedded) }  // ::a.b.c.d (deprecated)
        if b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xFF && b[3] == 0x9B { return isInternal(v4: embedded) }  // 64:ff9b::/96 NAT64
        if b[0] == 0x20 && b[1] == 0x02 {  // 2002::/16 6to4
            return isInternal(v4: UInt32(b[2]) << 24 | UInt32(b[3]) << 16 | UInt32(b[4]) << 8 | UInt32(b[5]))
        }
        if b[0] & 0xFE == 0xFC { return true }  // fc00::/7 unique-local
        if b[0] == 0xFE && b[1] & 0xC0 == 0x80 { return true }  // fe80::/10 link-local
        if b[0] == 0xFE && b[1] & 0xC0 == 0xC0 { return true }  // fec0::/10 site-local (deprecated)
        if b[0] == 0xFF { return true }  // multicast
        if b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0D && b[3] == 0xB8 { return true }  // 2001:db8::/32 documentation
        return false
    }
}
