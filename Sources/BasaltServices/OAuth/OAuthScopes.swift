public import BasaltCore

/// The scopes of the authorization server (API.md §8.1): the OpenID Connect ones and
/// `{collection}:read` / `{collection}:write`. A collection scope narrows what the caller's grants
/// allow on that collection; it never widens them. `write` includes `read` (a write needs the
/// record to be visible, API.md §9).
public enum OAuthScopes {
    public static let identity: Set<String> = ["openid", "profile", "email", "offline_access"]

    /// Space-separated scope tokens (RFC 6749 §3.3), duplicates dropped, order kept.
    public static func parse(_ text: String) -> [String] {
        var seen = Set<String>()
        return text.split(separator: " ", omittingEmptySubsequences: true).map(String.init).filter { seen.insert($0).inserted }
    }

    /// Whether `scope` is a scope this server knows: an identity scope or `{name}:read|write`
    /// with a well-formed collection name (the collection need not exist yet).
    public static func isValid(_ scope: String) -> Bool {
        if identity.contains(scope) { return true }
        guard let colon = scope.lastIndex(of: ":") else { return false }
        let name = scope[..<colon]
        let verb = scope[scope.index(after: colon)...]
        return (verb == "read" || verb == "write") && SchemaNames.isValidName(String(name))
    }

}

/// What an OAuth token narrows its subject to: the client it was issued to and its collection
/// scopes. Absent on Basalt's own sign-in tokens and API keys.
public struct OAuthGrant: Sendable, Equatable {
    public var clientID: String
    /// The collection scopes.
    public var scopes: Set<String>
    /// `openid`, `profile`, `email`, `offline_access` as granted.
    public var identityScopes: Set<String>

    public init(clientID: String, scope: String) {
        self.clientID = clientID
        let all = OAuthScopes.parse(scope)
        scopes = Set(all.filter { !OAuthScopes.identity.contains($0) })
        identityScopes = Set(all.filter { OAuthScopes.identity.contains($0) })
    }

    /// Whether the scopes admit `action` on `collection` at all (the grants decide the rest).
    public func allows(_ action: AccessAction, on collection: String) -> Bool {
        if scopes.contains(collection + ":write") { return true }
        switch action {
        case .list, .view: return scopes.contains(collection + ":read")
        default: return false
        }
    }
}
