public import BasaltCore
import Foundation
public import JWTKit

/// The claims Basalt reads from another provider's ID token (OpenID Connect Core §2).
public struct ExternalIDClaims: Sendable, Equatable, JWTPayload {
    public var iss: String
    public var sub: String
    public var aud: [String]
    public var exp: Int64
    public var iat: Int64?
    public var nonce: String?
    public var azp: String?
    public var email: String?
    /// Some providers send `"true"` as a string.
    public var emailVerified: Bool?
    /// Microsoft's tenant, which its multi-tenant issuer names.
    public var tid: String?

    enum CodingKeys: String, CodingKey {
        case iss, sub, aud, exp, iat, nonce, azp, email, tid
        case emailVerified = "email_verified"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        iss = try c.decode(String.self, forKey: .iss)
        sub = try c.decode(String.self, forKey: .sub)
        if let one = try? c.decode(String.self, forKey: .aud) {
            aud = [one]
        } else {
            aud = try c.decode([String].self, forKey: .aud)
        }
        exp = try Self.number(c, .exp) ?? 0
        iat = try Self.number(c, .iat)
        nonce = try c.decodeIfPresent(String.self, forKey: .nonce)
        azp = try c.decodeIfPresent(String.self, forKey: .azp)
        email = try c.decodeIfPresent(String.self, forKey: .email)
        if let b = try? c.decodeIfPresent(Bool.self, forKey: .emailVerified) {
            emailVerified = b
        } else {
            emailVerified = (try? c.decodeIfPresent(String.self, forKey: .emailVerified)).flatMap {
                $0 == "true" ? true : $0 == "false" ? false : nil
            }
        }
        tid = try c.decodeIfPresent(String.self, forKey: .tid)
    }

    static func number(_ c: KeyedDecodingContainer<CodingKeys>, _ k: CodingKeys) throws -> Int64? {
        if let i = try? c.decodeIfPresent(Int64.self, forKey: k) { return i }
        return try c.decodeIfPresent(Double.self, forKey: k).map { Int64($0) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(iss, forKey: .iss)
        try c.encode(sub, forKey: .sub)
        try c.encode(aud, forKey: .aud)
        try c.encode(exp, forKey: .exp)
    }

    /// Checked by `ExternalIDTokens.verify`, against its clock.
    public func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Why a provider's ID token was refused (logged, never shown verbatim).
public enum ExternalTokenRejection: Error, Sendable, Equatable {
    case malformed, algorithm, unknownKey, signature, expired, issuer, audience, nonce
}

/// Verifies ID tokens of other OpenID providers: an asymmetric algorithm, a `kid` of the
/// provider's published JWKS (never a fallback key), the signature, then `iss` (with
/// Microsoft's `{tenantid}` template filled from `tid`), `aud` (and `azp` when there are several
/// audiences), `exp` and the `nonce` the flow sent.
public enum ExternalIDTokens {
    static let algorithms: Set<String> = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]

    public static func verify(
        _ token: String,
        jwks: String,
        issuer: String,
        clientID: String,
        nonce: String?,
        now: Timestamp,
        leeway: Int64 = 60
    ) async -> Result<ExternalIDClaims, ExternalTokenRejection> {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, token.utf8.count <= 16_384, let headerBytes = Base64URL.decode(String(parts[0])),
            case .object(let header)? = try? JSONValue.parse(String(decoding: headerBytes, as: UTF8.self))
        else { return .failure(.malformed) }
        guard let alg = header["alg"]?.stringValue, algorithms.contains(alg), header["crit"] == nil else { return .failure(.algorithm) }
        guard case .object(let set)? = try? JSONValue.parse(jwks), let keys = set["keys"]?.arrayValue else { return .failure(.unknownKey) }
        // The key the header names; without a `kid`, the provider's only key (OpenID Connect
        // Core §10.1 requires a `kid` only when there are several).
        let key: JSONValue
        if let kid = header["kid"]?.stringValue {
            guard let named = keys.first(where: { $0["kid"]?.stringValue == kid }) else { return .failure(.unknownKey) }
            key = named
        } else {
            guard keys.count == 1, case .object(var only) = keys[0] else { return .failure(.unknownKey) }
            if only["kid"] == nil { only.append("kid", .string("only")) }
            key = .object(only)
        }
        let collection = JWTKeyCollection()
        let claims: ExternalIDClaims
        do {
            // Only that key, so jwt-kit cannot fall back to another one.
            try await collection.add(jwksJSON: JSONValue.object(JSONObject([("keys", .array([key]))])).serialized())
            claims = try await collection.verify(token, as: ExternalIDClaims.self)
        } catch {
            return .failure(error is DecodingError ? .malformed : .signature)
        }
        let t = now.millisecondsSinceEpoch / 1000
        if claims.exp + leeway <= t { return .failure(.expired) }
        let expectedIssuer = claims.tid.map { issuer.replacingOccurrences(of: "{tenantid}", with: $0) } ?? issuer
        if claims.iss != expectedIssuer { return .failure(.issuer) }
        if !claims.aud.contains(clientID) { return .failure(.audience) }
        if claims.aud.count > 1, let azp = claims.azp, azp != clientID { return .failure(.audience) }
        if let nonce, claims.nonce != nonce { return .failure(.nonce) }
        return .success(claims)
    }
}
