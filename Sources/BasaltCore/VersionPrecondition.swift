import Foundation

/// What a write requires of the record's current version: an `If-Match` header (RFC 9110
/// §13.1.1), or a batch operation's `if_match`, parsed once at the edge.
///
/// ```swift
/// VersionPrecondition(ifMatch: #""3", "4""#)   // .oneOf([3, 4])
/// VersionPrecondition(ifMatch: "*")            // .any
/// VersionPrecondition(ifMatch: nil)            // .none: no condition
/// ```
public enum VersionPrecondition: Sendable, Equatable {
    /// No condition: a write that lost a race is simply redone.
    case none
    /// `*`: the record must exist.
    case any
    /// One of these versions (strong entity tags). An empty list never matches: weak tags and
    /// anything that is not an entity tag of ours compare unequal (strong comparison).
    case oneOf([Int64])

    public init(ifMatch raw: String?) {
        guard let raw else {
            self = .none
            return
        }
        let header = Self.entityTags(raw)
        var versions: [Int64] = []
        for raw in header.split(separator: ",") {
            let tag = String(raw.trimmingOWS())
            if tag == "*" {
                self = .any
                return
            }
            // `"3"`: a strong tag holding a version; `W/"3"` is weak and never matches here.
            if tag.hasPrefix("\""), tag.hasSuffix("\""), tag.count >= 3, let v = Int64(tag.dropFirst().dropLast()) {
                versions.append(v)
            }
        }
        self = .oneOf(versions)
    }

    /// An `If-Match` or `If-None-Match` value as written, or percent-decoded when it was sent
    /// percent-encoded: Apple's swift-openapi-generator encodes every header value as a URI
    /// component (`"3"` goes out as `%223%22`; apple/swift-openapi-generator#529 and #857), so
    /// without this no Swift client generated from our document could make a conditional
    /// request. Only values that cannot be an entity-tag list are decoded — every valid list but
    /// `*` contains a `"` — so no valid value changes meaning.
    public static func entityTags(_ header: String) -> String {
        guard header.contains("%"), !header.contains("\""), let decoded = header.removingPercentEncoding else { return header }
        return decoded
    }

    /// Whether a record at `version` satisfies it.
    public func admits(_ version: Int64) -> Bool {
        switch self {
        case .none, .any: true
        case .oneOf(let versions): versions.contains(version)
        }
    }

    /// Whether the client stated a condition (a lost race is then a 412, never a silent redo).
    public var isConditional: Bool { self != .none }
}
