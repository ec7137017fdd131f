public import BasaltCore
public import Crypto
import Foundation
public import JWTKit
import Synchronization

/// The claims of an access token (API.md §8).
public struct AccessClaims: Sendable, Equatable, Codable, JWTPayload {
    public var iss: String
    public var sub: String
    public var aud: String
    public var exp: Int64
    public var iat: Int64
    public var nbf: Int64
    public var jti: String
    /// The session (refresh-token family) the token belongs to: ending the session ends the token.
    public var sid: String
    public var roles: [String]
    public var scope: String
    /// The OAuth client the token was issued to (RFC 9068 `client_id`); absent for Basalt's own
    /// sign-in. Such a token's `scope` narrows what its subject may do (API.md §8.1).
    public var clientID: String?

    enum CodingKeys: String, CodingKey {
        case iss, sub, aud, exp, iat, nbf, jti, sid, roles, scope
        case clientID = "client_id"
    }

    public init(
        iss: String,
        sub: String,
        aud: String,
        exp: Int64,
        iat: Int64,
        nbf: Int64,
        jti: String,
        sid: String,
        roles: [String],
        scope: String,
        clientID: String? = nil
    ) {
        self.iss = iss
        self.sub = sub
        self.aud = aud
        self.exp = exp
        self.iat = iat
        self.nbf = nbf
        self.jti = jti
        self.sid = sid
        self.roles = roles
        self.scope = scope
        self.clientID = clientID
    }

    /// Time claims are checked by `AccessTokens.verify` against its clock, not here.
    public func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// The claims of an OpenID Connect ID token (Core §2): issued to a client (`aud`) about a user.
public struct IDTokenClaims: Sendable, Equatable, Codable, JWTPayload {
    public var iss: String
    public var sub: String
    public var aud: String
    public var exp: Int64
    public var iat: Int64
    public var authTime: Int64
    public var nonce: String?
    public var email: String?
    public var emailVerified: Bool?

    enum CodingKeys: String, CodingKey {
        case iss, sub, aud, exp, iat, nonce, email
        case authTime = "auth_time"
        case emailVerified = "email_verified"
    }

    public init(iss: String, sub: String, aud: String, exp: Int64, iat: Int64, authTime: Int64, nonce: String?, email: String?, emailVerified: Bool?)
    {
        self.iss = iss
        self.sub = sub
        self.aud = aud
        self.exp = exp
        self.iat = iat
        self.authTime = authTime
        self.nonce = nonce
        self.email = email
        self.emailVerified = emailVerified
    }

    /// Only ever signed here; relying parties verify it.
    public func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// One Ed25519 signing key. `retiredAt` is set when a newer key takes over; the public half
/// stays published until every token it signed has expired.
public struct SigningKey: Sendable {
    public var kid: String
    public var privateKey: Curve25519.Signing.PrivateKey
    public var createdAt: Timestamp
    public var retiredAt: Timestamp?

    public init(kid: String, privateKey: Curve25519.Signing.PrivateKey, createdAt: Timestamp, retiredAt: Timestamp?) {
        self.kid = kid
        self.privateKey = privateKey
        self.createdAt = createdAt
        self.retiredAt = retiredAt
    }

    public static func generate(at now: Timestamp) -> SigningKey {
        let key = Curve25519.Signing.PrivateKey()
        // The kid is a thumbprint-like digest of the public key: stable and unguessable.
        let kid = String(Digest.sha256Hex(Array(key.publicKey.rawRepresentation)).prefix(16))
        return SigningKey(kid: kid, privateKey: key, createdAt: now, retiredAt: nil)
    }
}

/// Why a presented access token was refused. Never shown verbatim to clients (every refusal is
/// the same 401); kept for logs and tests.
public enum TokenRejection: Error, Sendable, Equatable {
    case malformed, algorithm, unknownKey, signature, expired, notYetValid, issuer, audience
}

/// Signs and verifies access JWTs (`alg: EdDSA`, `typ: JWT`, `kid`) with jwt-kit, and renders
/// the JWKS. The header is checked strictly before jwt-kit sees the token: jwt-kit would fall
/// back to its default key for an unknown `kid`, and we want exactly one algorithm.
public final class AccessTokens: Sendable {
    public struct Settings: Sendable {
        public var issuer: String
        public var audience: String
        public var lifetime: Duration
        /// Tolerated clock difference between replicas for `exp`/`nbf`.
        public var leeway: Duration
        public init(issuer: String, audience: String = "basalt", lifetime: Duration = .seconds(900), leeway: Duration = .seconds(30)) {
            self.issuer = issuer
            self.audience = audience
            self.lifetime = lifetime
            self.leeway = leeway
        }
    }

    struct KeyState: Sendable {
        var keys: [SigningKey]
        var collection: JWTKeyCollection
        var kids: Set<String>
        /// Counts installs: what was judged under one key set is not reused under the next.
        var generation: UInt64 = 0
        /// Tokens whose signature already verified under these keys, with their claims. A
        /// signature check is the bulk of authenticating a request (an Ed25519 verification
        /// costs more than the database read of the record); a token's bytes cannot change, so
        /// its verdict is reused. Time, issuer and audience are re-checked on every use; kept
        /// with the key set so that a verdict reached under the old keys is never stored under
        /// the new ones; dropped when the map is full; only exact token strings ever hit
        /// (`CredentialCheck.bearerToken` lets only base64url characters through).
        var verified: [String: AccessClaims] = [:]
    }

    public let settings: Settings
    let state: Mutex<KeyState>
    static let verifiedCapacity = 20_000

    public init(settings: Settings, keys: [SigningKey]) async {
        self.settings = settings
        state = Mutex(await Self.makeState(keys))
    }

    static func makeState(_ keys: [SigningKey]) async -> KeyState {
        let collection = JWTKeyCollection()
        for k in keys {
            await collection.add(eddsa: EdDSA.PrivateKey(backing: k.privateKey), kid: JWKIdentifier(string: k.kid))
        }
        return KeyState(keys: keys, collection: collection, kids: Set(keys.map(\.kid)))
    }

    /// Replaces the key set (after a rotation, or when another replica rotated).
    public func install(_ keys: [SigningKey]) async {
        var s = await Self.makeState(keys)
        state.withLock {
            s.generation = $0.generation &+ 1
            $0 = s
        }
    }

    public var keys: [SigningKey] { state.withLock { $0.keys } }

    /// Changes with every `install`.
    public var generation: UInt64 { state.withLock { $0.generation } }

    /// Until when (milliseconds, exclusive) a token with these claims passes the time checks of
    /// `verify` (its expiry, with the leeway).
    public func validUntil(_ claims: AccessClaims) -> Int64 {
        (min(claims.exp, Int64.max / 2000) + Int64(settings.leeway.components.seconds)) * 1000
    }

    public func knows(kid: String) -> Bool { state.withLock { $0.kids.contains(kid) } }

    /// The key new tokens are signed with: the newest one not retired.
    var activeKey: SigningKey? {
        state.withLock { $0.keys.filter { $0.retiredAt == nil }.max { $0.createdAt < $1.createdAt } }
    }

    /// Claims for a new token for `subject`, valid from `now` for the configured lifetime.
    public func claims(
        subject: String,
        session: String,
        roles: [String],
        scope: String = "",
        clientID: String? = nil,
        now: Timestamp
    )
        -> AccessClaims
    {
        let iat = now.millisecondsSinceEpoch / 1000
        return AccessClaims(
            iss: settings.issuer,
            sub: subject,
            aud: settings.audience,
            exp: iat + Int64(settings.lifetime.components.seconds),
            iat: iat,
            nbf: iat,
            jti: RecordID.make(at: now),
            sid: session,
            roles: roles.sorted(),
            scope: scope,
            clientID: clientID
        )
    }

    public func sign(_ claims: some JWTPayload) async throws -> String {
        guard let key = activeKey else { throw BasaltError(.unavailable, "No signing key is configured") }
        let collection = state.withLock { $0.collection }
        var header = JWTHeader()
        header.typ = "JWT"
        return try await collection.sign(claims, kid: JWKIdentifier(string: key.kid), header: header)
    }

    /// The claims of a valid token, or the reason it is refused.
    public func verify(_ token: String, now: Timestamp) async -> Result<AccessClaims, TokenRejection> {
        if let claims = state.withLock({ $0.verified[token] }) { return checkClaims(claims, now: now) }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        // One token, one spelling: each part must be exactly the canonical unpadded base64url of
        // its bytes (no `=`, no stray low bits in the last character), so that no other string
        // verifies as the same token (RFC 7515 §2, RFC 4648 §3.5).
        guard parts.count == 3, token.utf8.count <= 8192,
            parts.allSatisfy({ p in Base64URL.decode(String(p)).map { Base64URL.encode($0) == p } ?? false }),
            let headerBytes = Base64URL.decode(String(parts[0])),
            case .object(let header)? = try? JSONValue.parse(String(decoding: headerBytes, as: UTF8.self))
        else { return .failure(.malformed) }
        guard header["alg"]?.stringValue == "EdDSA", header["crit"] == nil,
            header["typ"].map({ $0.stringValue?.uppercased() == "JWT" }) ?? true
        else { return .failure(.algorithm) }
        guard let kid = header["kid"]?.stringValue else { return .failure(.unknownKey) }
        let (known, collection, generation) = state.withLock { ($0.kids.contains(kid), $0.collection, $0.generation) }
        guard known else { return .failure(.unknownKey) }
        let claims: AccessClaims
        do {
            claims = try await collection.verify(token, as: AccessClaims.self)
        } catch {
            return .failure(error is DecodingError ? .malformed : .signature)
        }
        let result = checkClaims(claims, now: now)
        if case .success = result {
            state.withLock { s in
                guard s.generation == generation else { return }
                if s.verified.count >= Self.verifiedCapacity { s.verified = [:] }
                s.verified[token] = claims
            }
        }
        return result
    }

    func checkClaims(_ claims: AccessClaims, now: Timestamp) -> Result<AccessClaims, TokenRejection> {
        // Expiry is `validUntil`'s, so that what is kept until then agrees with this check.
        if now.millisecondsSinceEpoch >= validUntil(claims) { return .failure(.expired) }
        let t = now.millisecondsSinceEpoch / 1000
        let leeway = Int64(settings.leeway.components.seconds)
        if claims.nbf - leeway > t || claims.iat - leeway > t { return .failure(.notYetValid) }
        if claims.iss != settings.issuer { return .failure(.issuer) }
        if claims.aud != settings.audience { return .failure(.audience) }
        return .success(claims)
    }

    /// `/.well-known/jwks.json`: every key whose tokens may still be live.
    public func jwks(now: Timestamp) -> JSONValue {
        let lifetimeMs = Int64(settings.lifetime.components.seconds) * 1000
        let live = keys.filter { k in
            guard let r = k.retiredAt else { return true }
            return r.millisecondsSinceEpoch + lifetimeMs + Int64(settings.leeway.components.seconds) * 1000 > now.millisecondsSinceEpoch
        }
        return .object(
            JSONObject([
                (
                    "keys",
                    .array(
                        live.sorted { $0.createdAt > $1.createdAt }.map { k in
                            .object(
                                JSONObject([
                                    ("kty", .string("OKP")), ("crv", .string("Ed25519")), ("use", .string("sig")), ("alg", .string("EdDSA")),
                                    ("kid", .string(k.kid)), ("x", .string(Base64URL.encode(Array(k.privateKey.publicKey.rawRepresentation)))),
                                ])
                            )
                        }
                    )
                )
            ])
        )
    }
}
