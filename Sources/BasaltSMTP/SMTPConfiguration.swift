public import NIOSSL

/// Where and how to submit mail.
///
/// ```swift
/// let configuration = try SMTPConfiguration(url: "smtps://mailer:s3cret@smtp.example.com")
/// // or
/// let configuration = SMTPConfiguration(host: "smtp.example.com", port: 587, security: .startTLS,
///                                       username: "mailer", password: "s3cret")
/// ```
public struct SMTPConfiguration: Sendable {
    /// How the connection is protected.
    public enum Security: Sendable {
        /// Plain TCP. Credentials, if any, travel unencrypted.
        case none
        /// Plain TCP upgraded with STARTTLS (RFC 3207) before anything else is sent; a server that
        /// does not offer STARTTLS is an error, never a silent downgrade.
        case startTLS
        /// TLS from the first byte ("implicit TLS", usually port 465, RFC 8314).
        case tls
    }

    public var host: String
    public var port: Int
    public var security: Security
    /// With a username, the client authenticates with AUTH PLAIN, or AUTH LOGIN when that is the
    /// only mechanism offered. The password is never logged.
    public var username: String?
    public var password: String?
    /// The name the client gives in EHLO/HELO and in generated Message-IDs.
    public var heloName: String
    /// How long to wait for each reply (and for the TCP connection).
    public var timeout: Duration
    /// TLS settings for `.startTLS` and `.tls`; `nil` is `TLSConfiguration.makeClientConfiguration()`
    /// (system trust roots, full verification).
    public var tlsConfiguration: TLSConfiguration?

    public init(
        host: String,
        port: Int,
        security: Security = .none,
        username: String? = nil,
        password: String? = nil,
        heloName: String = "localhost",
        timeout: Duration = .seconds(30),
        tlsConfiguration: TLSConfiguration? = nil
    ) {
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.heloName = heloName
        self.timeout = timeout
        self.tlsConfiguration = tlsConfiguration
    }

    /// Parses an SMTP URL:
    /// - `smtp://user:pass@host:port` — plain (port 25); add `?starttls=true` for STARTTLS (port 587);
    /// - `smtp+starttls://…` — STARTTLS (port 587);
    /// - `smtps://…` — implicit TLS (port 465).
    ///
    /// User and password are percent-decoded (`%40` for `@`); an IPv6 host is written in brackets
    /// (`smtp://[::1]:2525`). Anything else — another scheme, a path, an unknown query parameter,
    /// a bad port — throws `SMTPError`.
    ///
    /// ```swift
    /// let configuration = try SMTPConfiguration(url: "smtp+starttls://apikey:p%40ss@smtp.example.com")
    /// ```
    public init(url: String) throws {
        let parsed = try SMTPURL(parsing: url)
        self.init(
            host: parsed.host,
            port: parsed.port,
            security: parsed.security,
            username: parsed.username,
            password: parsed.password
        )
    }
}

/// The parts of an SMTP URL. Written by hand because the grammar is small and the accepted
/// forms should be exactly the documented ones.
struct SMTPURL: Equatable {
    var security: SMTPConfiguration.Security
    var host: String
    var port: Int
    var username: String?
    var password: String?

    init(parsing url: String) throws {
        func invalid(_ reason: String) -> SMTPError { SMTPError.invalid("invalid SMTP URL: \(reason)") }

        guard let schemeEnd = url.firstRange(of: "://") else { throw invalid("expected scheme://host") }
        var security: SMTPConfiguration.Security
        var defaultPort: Int
        switch url[..<schemeEnd.lowerBound].lowercased() {
        case "smtp": (security, defaultPort) = (.none, 25)
        case "smtp+starttls": (security, defaultPort) = (.startTLS, 587)
        case "smtps": (security, defaultPort) = (.tls, 465)
        default: throw invalid("scheme must be smtp, smtp+starttls or smtps")
        }
        var rest = Substring(url[schemeEnd.upperBound...])
        guard !rest.contains("#") else { throw invalid("fragments are not allowed") }
        guard !rest.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 || $0 == 0x7F } == true })
        else { throw invalid("whitespace or control characters") }

        var query: Substring?
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        if let slash = rest.firstIndex(of: "/") {
            guard rest[slash...] == "/" else { throw invalid("paths are not allowed") }
            rest = rest[..<slash]
        }

        // Userinfo ends at the last "@": an unencoded "@" in a password is forgiven.
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            let user: Substring
            if let colon = userinfo.firstIndex(of: ":") {
                user = userinfo[..<colon]
                self.password = try Self.percentDecode(userinfo[userinfo.index(after: colon)...], invalid: invalid)
            } else {
                user = userinfo
                self.password = nil
            }
            guard !user.isEmpty else { throw invalid("empty user name") }
            self.username = try Self.percentDecode(user, invalid: invalid)
        } else {
            self.username = nil
            self.password = nil
        }

        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw invalid("unterminated IPv6 address") }
            self.host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw invalid("unexpected text after IPv6 address") }
                portText = after.dropFirst()
            }
            guard self.host.contains(":") else { throw invalid("brackets are only for IPv6 addresses") }
        } else if let colon = rest.firstIndex(of: ":") {
            self.host = String(rest[..<colon])
            portText = rest[rest.index(after: colon)...]
        } else {
            self.host = String(rest)
        }
        guard !self.host.isEmpty else { throw invalid("missing host") }
        guard !self.host.contains(where: { "@/?#[]%:".contains($0) }) || rest.hasPrefix("[") else {
            throw invalid("malformed host")
        }

        if let query {
            for parameter in query.split(separator: "&", omittingEmptySubsequences: true) {
                let pair = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = pair[0].lowercased()
                let value = pair.count > 1 ? pair[1].lowercased() : ""
                guard name == "starttls" else { throw invalid("unknown query parameter \"\(name)\"") }
                guard security != .tls else { throw invalid("smtps is implicit TLS; starttls does not apply") }
                switch value {
                case "true", "1", "yes":
                    security = .startTLS
                    defaultPort = 587
                case "false", "0", "no":
                    guard security == .none else { throw invalid("smtp+starttls cannot turn STARTTLS off") }
                default:
                    throw invalid("starttls must be true or false")
                }
            }
        }
        self.security = security

        if let portText {
            guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy(\.isASCIIDigit),
                let port = Int(portText), (1...65535).contains(port)
            else { throw invalid("port must be 1-65535") }
            self.port = port
        } else {
            self.port = defaultPort
        }
    }

    /// RFC 3986 percent-decoding to UTF-8; a stray "%" or invalid UTF-8 is an error.
    static func percentDecode(_ text: Substring, invalid: (String) -> SMTPError) throws -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue)
            else { throw invalid("bad percent-encoding") }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw invalid("percent-encoding is not UTF-8")
        }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { self.isASCII && self.isNumber }
}
