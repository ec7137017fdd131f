public import BasaltCore

/// One identity provider users may sign in with (API.md §8.1): an OpenID Connect provider found
/// by its issuer, or a plain OAuth 2.0 one with explicit endpoints and a userinfo endpoint.
public struct OAuthProvider: Sendable, Equatable {
    public enum TokenAuth: String, Sendable { case basic, post }

    public var name: String
    /// OpenID Connect: endpoints and keys come from `{issuer}/.well-known/openid-configuration`.
    public var issuer: String?
    public var authorizationEndpoint: String?
    public var tokenEndpoint: String?
    public var userinfoEndpoint: String?
    public var jwksURI: String?
    /// GitHub: the user's addresses with their verification (its userinfo has none).
    public var emailsEndpoint: String?
    public var clientID: String
    public var clientSecret: String
    public var scopes: [String]
    public var tokenAuth: TokenAuth = .basic
    /// Plain OAuth 2.0: which userinfo members hold the subject, the email and its verification
    /// (nil: an email from this provider is never taken as verified).
    public var subjectField = "sub"
    public var emailField = "email"
    public var emailVerifiedField: String? = "email_verified"

    public var isOpenIDConnect: Bool { issuer != nil }

    public init(name: String, clientID: String, clientSecret: String, scopes: [String]) {
        self.name = name
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.scopes = scopes
    }

    /// The common providers need only a client id and secret.
    public static func preset(_ preset: String, name: String, clientID: String, clientSecret: String, tenant: String?) -> OAuthProvider? {
        var p = OAuthProvider(name: name, clientID: clientID, clientSecret: clientSecret, scopes: ["openid", "email", "profile"])
        switch preset {
        case "google": p.issuer = "https://accounts.google.com"
        case "gitlab": p.issuer = "https://gitlab.com"
        case "microsoft":
            // `common` and `organizations` publish the issuer as a template on the token's `tid`.
            p.issuer = "https://login.microsoftonline.com/\(tenant ?? "common")/v2.0"
        case "apple":
            p.issuer = "https://appleid.apple.com"
            p.scopes = ["openid", "email"]
            p.tokenAuth = .post
        case "github":
            p.authorizationEndpoint = "https://github.com/login/oauth/authorize"
            p.tokenEndpoint = "https://github.com/login/oauth/access_token"
            p.userinfoEndpoint = "https://api.github.com/user"
            p.emailsEndpoint = "https://api.github.com/user/emails"
            p.scopes = ["read:user", "user:email"]
            p.tokenAuth = .post
            p.subjectField = "id"
            p.emailVerifiedField = nil
        default: return nil
        }
        return p
    }

    /// `BASALT_OAUTH_PROVIDERS`: a JSON array of providers — `{"name", "preset"?, "issuer"?,
    /// "authorization_endpoint"?, "token_endpoint"?, "userinfo_endpoint"?, "client_id",
    /// "client_secret", "scopes"?, "token_auth"?, "subject_field"?, "email_field"?,
    /// "email_verified_field"?, "tenant"?}`.
    public static func parse(_ text: String) throws(BasaltError) -> [OAuthProvider] {
        guard case .array(let items)? = try? JSONValue.parse(text) else {
            throw BasaltError.badRequest("oauth_providers must be a JSON array of providers")
        }
        var out: [OAuthProvider] = []
        for (i, item) in items.enumerated() {
            let s: (String) -> String? = { item[$0]?.stringValue }
            guard let name = s("name"), SchemaNames.isValidName(name), let id = s("client_id"), !id.isEmpty else {
                throw BasaltError.badRequest("oauth_providers[\(i)] needs a name (^[a-z][a-z0-9_]*$) and a client_id")
            }
            guard name != "exchange" else { throw BasaltError.badRequest("oauth_providers: exchange is a reserved name") }
            guard !out.contains(where: { $0.name == name }) else { throw BasaltError.badRequest("oauth_providers names \(name) twice") }
            let secret = s("client_secret") ?? ""
            var p: OAuthProvider
            if let preset = s("preset") {
                guard let made = Self.preset(preset, name: name, clientID: id, clientSecret: secret, tenant: s("tenant")) else {
                    throw BasaltError.badRequest("oauth_providers[\(i)]: presets are google, apple, microsoft, github, gitlab")
                }
                p = made
            } else {
                p = OAuthProvider(name: name, clientID: id, clientSecret: secret, scopes: ["openid", "email", "profile"])
            }
            if let v = s("issuer") { p.issuer = v.hasSuffix("/") ? String(v.dropLast()) : v }
            if let v = s("authorization_endpoint") { p.authorizationEndpoint = v }
            if let v = s("token_endpoint") { p.tokenEndpoint = v }
            if let v = s("userinfo_endpoint") { p.userinfoEndpoint = v }
            if let v = item["scopes"]?.arrayValue { p.scopes = v.compactMap(\.stringValue) }
            if let v = s("token_auth") {
                guard let a = TokenAuth(rawValue: v) else { throw BasaltError.badRequest("oauth_providers[\(i)].token_auth is basic or post") }
                p.tokenAuth = a
            }
            if let v = s("subject_field") { p.subjectField = v }
            if let v = s("email_field") { p.emailField = v }
            if item["email_verified_field"] != nil { p.emailVerifiedField = s("email_verified_field") }
            if p.issuer == nil && (p.authorizationEndpoint == nil || p.tokenEndpoint == nil || p.userinfoEndpoint == nil) {
                throw BasaltError.badRequest(
                    "oauth_providers[\(i)] needs an issuer (OpenID Connect) or authorization, token and userinfo endpoints"
                )
            }
            out.append(p)
        }
        return out
    }
}

/// Outbound HTTP for talking to providers; the runtime gives one with timeouts and a size limit.
public protocol OutboundHTTP: Sendable {
    func send(_ method: String, _ url: String, headers: [(String, String)], body: [UInt8]?) async throws -> (status: Int, body: [UInt8])
}
