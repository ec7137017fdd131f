public import BasaltCore

/// Who is asking. Built by the HTTP edge from credentials; services authorize against it.
public struct Principal: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case anonymous
        /// An admin API key or admin user: bypasses grants.
        case admin
        /// A user or a role-scoped API key.
        case subject
        /// Basalt itself, acting for an auth flow (registration): grants do not apply, but the
        /// managed fields of `users` stay protected and nothing is audited as an admin bypass.
        case system
    }
    public var kind: Kind
    /// The subject id (user id, API key id); nil when anonymous.
    public var id: String?
    /// Effective roles, inherited ones included.
    public var roles: Set<String>
    /// Client address, for anonymous idempotency and rate-limit keys.
    public var clientAddress: String
    /// The signed-in user's record (`@auth.<field>` in rules); nil for API keys and anonymous callers.
    public var user: JSONObject?
    /// The request id, for the audit log.
    public var requestID: String?
    /// Set for an OAuth token: its client and the scopes that narrow the grants (API.md §8.1).
    public var oauth: OAuthGrant?

    public init(kind: Kind, id: String? = nil, roles: Set<String> = [], clientAddress: String = "") {
        self.kind = kind
        self.id = id
        self.roles = roles
        self.clientAddress = clientAddress
    }

    public static func anonymous(_ address: String) -> Principal { Principal(kind: .anonymous, clientAddress: address) }
    public var isAdmin: Bool { kind == .admin }
    public var isAnonymous: Bool { kind == .anonymous }
    /// Whether grants are bypassed (admins and Basalt's own flows).
    public var bypassesGrants: Bool { kind == .admin || kind == .system }
    /// Whether this is a signed-in user (not an API key).
    public var isUser: Bool { user != nil }
    public static let system = Principal(kind: .system, id: "basalt")
    /// Partition key for caller-scoped state (cursors, idempotency keys).
    public var callerKey: String {
        switch kind {
        case .anonymous: "anon:" + clientAddress
        case .admin: "admin:" + (id ?? "")
        case .subject: "sub:" + (id ?? "")
        case .system: "system"
        }
    }
}
