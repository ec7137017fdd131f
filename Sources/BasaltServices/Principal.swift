public import BasaltCore

/// Who is asking. Built by the HTTP edge from credentials; services authorize against it.
public struct Principal: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case anonymous
        /// An admin API key or admin user: bypasses grants.
        case admin
        /// A user or a role-scoped API key.
        case subject
    }
    public var kind: Kind
    /// The subject id (user id, API key id); nil when anonymous.
    public var id: String?
    /// Effective roles, inherited ones included.
    public var roles: Set<String>
    /// Client address, for anonymous idempotency and rate-limit keys.
    public var clientAddress: String

    public init(kind: Kind, id: String? = nil, roles: Set<String> = [], clientAddress: String = "") {
        self.kind = kind
        self.id = id
        self.roles = roles
        self.clientAddress = clientAddress
    }

    public static func anonymous(_ address: String) -> Principal { Principal(kind: .anonymous, clientAddress: address) }
    public var isAdmin: Bool { kind == .admin }
    public var isAnonymous: Bool { kind == .anonymous }
    /// Partition key for caller-scoped state (cursors, idempotency keys).
    public var callerKey: String {
        switch kind {
        case .anonymous: "anon:" + clientAddress
        case .admin: "admin:" + (id ?? "")
        case .subject: "sub:" + (id ?? "")
        }
    }
}
