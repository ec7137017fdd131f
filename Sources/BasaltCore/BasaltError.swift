import Foundation

/// An error from below the domain (storage, the filter language) that knows what it means to a
/// client. The edge maps every error through this once, so no service keeps a copy of the mapping.
public protocol BasaltErrorConvertible: Error {
    var basaltError: BasaltError { get }
}

/// The one error type of Basalt's domain. Every failure a client may see is a `BasaltError`;
/// the HTTP edge maps `code` to a status and renders RFC 9457 problem details in one place.
public struct BasaltError: Error, Sendable, CustomStringConvertible {
    /// A struct rather than an enum so that library users' `switch`es survive new codes.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        package enum Base: String, Sendable, CaseIterable {
            case badRequest = "bad-request"
            case unauthenticated
            case mfaRequired = "mfa-required"
            case forbidden
            case notFound = "not-found"
            case methodNotAllowed = "method-not-allowed"
            case notAcceptable = "not-acceptable"
            case conflict
            case gone
            case preconditionFailed = "precondition-failed"
            case payloadTooLarge = "payload-too-large"
            case unsupportedMediaType = "unsupported-media-type"
            case validationFailed = "validation-failed"
            case rateLimited = "rate-limited"
            case internalError = "internal"
            case unavailable
        }
        package let base: Base
        package init(base: Base) { self.base = base }
        /// The slug used in `/problems/{slug}`.
        public var slug: String { base.rawValue }
        public var description: String { base.rawValue }

        public static let badRequest = Code(base: .badRequest)
        public static let unauthenticated = Code(base: .unauthenticated)
        public static let mfaRequired = Code(base: .mfaRequired)
        public static let forbidden = Code(base: .forbidden)
        public static let notFound = Code(base: .notFound)
        public static let methodNotAllowed = Code(base: .methodNotAllowed)
        public static let notAcceptable = Code(base: .notAcceptable)
        public static let conflict = Code(base: .conflict)
        public static let gone = Code(base: .gone)
        public static let preconditionFailed = Code(base: .preconditionFailed)
        public static let payloadTooLarge = Code(base: .payloadTooLarge)
        public static let unsupportedMediaType = Code(base: .unsupportedMediaType)
        public static let validationFailed = Code(base: .validationFailed)
        public static let rateLimited = Code(base: .rateLimited)
        public static let internalError = Code(base: .internalError)
        public static let unavailable = Code(base: .unavailable)
        public static var all: [Code] { Base.allCases.map { Code(base: $0) } }

        /// The code of a slug (`not-found`), for problems read back from storage.
        public init?(slug: String) {
            guard let b = Base(rawValue: slug) else { return nil }
            base = b
        }

        /// Whether the request itself was refused (a 4xx): answers worth remembering for a retry
        /// with the same idempotency key. A rate limit is about timing, not the request, and the
        /// server's own failures (internal, unavailable) may not happen again.
        public var isClientFault: Bool {
            switch base {
            case .internalError, .unavailable, .rateLimited: false
            default: true
            }
        }
    }

    public var code: Code
    /// Safe to show a client.
    public var message: String
    public var fieldErrors: [FieldError]
    /// Extra problem members (`column`, `operation_index`, …), rendered next to the standard ones.
    public var extensions: [(String, JSONValue)]
    /// Seconds to wait before trying again (429, 503); the edge sends it as `Retry-After`.
    public var retryAfter: Int?
    /// The methods a path does allow (405); the edge sends them as `Allow`.
    public var allowedMethods: [String]
    /// The `error` of a Bearer challenge (401), e.g. `invalid_token` for a credential that was
    /// sent and refused; the edge sends `WWW-Authenticate: Bearer error="…"`.
    public var bearerError: String?
    /// For logs only; never serialized.
    public var underlying: (any Error)?

    public init(
        _ code: Code,
        _ message: String,
        fieldErrors: [FieldError] = [],
        extensions: [(String, JSONValue)] = [],
        retryAfter: Int? = nil,
        allowedMethods: [String] = [],
        bearerError: String? = nil,
        underlying: (any Error)? = nil
    ) {
        self.code = code
        self.message = message
        self.fieldErrors = fieldErrors
        self.extensions = extensions
        self.retryAfter = retryAfter
        self.allowedMethods = allowedMethods
        self.bearerError = bearerError
        self.underlying = underlying
    }

    public var description: String {
        var s = "\(code): \(message)"
        if !fieldErrors.isEmpty { s += " \(fieldErrors.map { "\($0.field) \($0.code)" })" }
        if let underlying { s += " (underlying: \(String(reflecting: underlying)))" }
        return s
    }

    /// The database cannot be reached (or is shutting down): `503` with `Retry-After`, whatever
    /// the service that noticed it.
    public static func unavailable(_ underlying: (any Error)? = nil, retryAfter: Int = 1) -> BasaltError {
        BasaltError(.unavailable, "The database is unavailable; retry shortly", retryAfter: retryAfter, underlying: underlying)
    }

    /// A `422` listing the offending fields: at most `maxFieldErrors` of them, the total in the
    /// message (API.md §1: a body with 95,000 unknown members must not make an 8 MB answer).
    public static func validation(_ errors: [FieldError]) -> BasaltError {
        let n = errors.count
        var detail = n == 1 ? "1 field is invalid" : "\(n) fields are invalid"
        if n > maxFieldErrors { detail += "; the first \(maxFieldErrors) are listed" }
        return BasaltError(.validationFailed, detail, fieldErrors: Array(errors.prefix(maxFieldErrors)))
    }

    public static let maxFieldErrors = 100

    public static func badRequest(_ message: String) -> BasaltError { BasaltError(.badRequest, message) }
    public static func notFound(_ message: String = "The resource does not exist") -> BasaltError {
        BasaltError(.notFound, message)
    }
}

/// One offending field of a request body. `field` is a JSON Pointer into the body.
public struct FieldError: Error, Sendable, Equatable, Codable {
    public enum Code: String, Sendable, Codable {
        case required, type, min, max, pattern, `enum`, format, unique
        case unknownField = "unknown_field"
        case readOnly = "read_only"
        case notFound = "not_found"
        case forbiddenTarget = "forbidden_target"
        case invalid
    }
    public var field: String
    public var code: Code
    public var message: String
    public init(field: String, code: Code, message: String) {
        self.field = field
        self.code = code
        self.message = message
    }
    /// A pointer for a top-level member name, escaped per RFC 6901.
    public static func pointer(_ name: String) -> String {
        // Every field of every write gets one: the common name needs no escaping.
        guard name.utf8.contains(where: { $0 == 0x7E || $0 == 0x2F }) else { return "/" + name }
        return "/" + name.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }
}
