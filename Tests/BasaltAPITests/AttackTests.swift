import Basalt
import BasaltAuth
import BasaltCore
import BasaltHTTP
import BasaltServices
import BasaltTesting
import Crypto
import Foundation
import HTTPTypes
import Testing

/// Forges compact JWS tokens the way an attacker would.
enum Forge {
    static func b64(_ s: String) -> String { Base64URL.encode(Array(s.utf8)) }

    static func token(header: String, payload: String, sign: (String) throws -> [UInt8]) rethrows -> String {
        let input = b64(header) + "." + b64(payload)
        return input + "." + Base64URL.encode(try sign(input))
    }

    static func claims(
        _ sub: String,
        iss: String = "http://127.0.0.1:8080",
        aud: String = "basalt",
        exp: Int64? = nil,
        nbf: Int64? = nil,
        roles: String = "[]"
    ) -> String {
        let now = Int64(Date().timeIntervalSince1970)
        return
            #"{"iss":"\#(iss)","sub":"\#(sub)","aud":"\#(aud)","exp":\#(exp ?? now + 600),"iat":\#(now),"nbf":\#(nbf ?? now),"jti":"j","roles":\#(roles),"scope":""}"#
    }
}

@Suite("Attacks on tokens and accounts all fail")
struct AttackTests {
    @Test(arguments: TestBackend.all)
    func forgedAndDefectiveTokensAre401(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: IdentityFixtures.schema) { api in
            let ada = try await api.signUp("ada@example.com")
            #expect(try await api.get("/v1/auth/me", auth: ada.auth).status == .ok)  // the control
            let real = try DecodedJWT(ada.accessToken)
            let kid = try #require(real.header["kid"]?.stringValue)
            let tokens = api.runtime.auth.tokens
            let now = Int64(Date().timeIntervalSince1970)
            let jwks = try await api.get("/.well-known/jwks.json", auth: .none)
            let x = try #require(jwks["keys"]?.arrayValue?.first?["x"]?.stringValue)
            let publicKeyBytes = try #require(Base64URL.decode(x))
            let payload = Forge.claims(ada.id, roles: #"["editor"]"#)
            var forged: [(String, String)] = []

            // alg: none, with and without a signature part.
            forged.append(("alg none", Forge.b64(#"{"alg":"none","typ":"JWT","kid":"\#(kid)"}"#) + "." + Forge.b64(payload) + "."))
            forged.append(("alg None", Forge.b64(#"{"alg":"None","kid":"\#(kid)"}"#) + "." + Forge.b64(payload) + "."))
            // HS256 keyed with the published public key (algorithm confusion).
            forged.append(
                (
                    "HS256 with public key",
                    Forge.token(header: #"{"alg":"HS256","typ":"JWT","kid":"\#(kid)"}"#, payload: payload) { input in
                        Array(HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: publicKeyBytes)))
                    }
                )
            )
            // RS256 / ES256 where EdDSA is expected (validly signed with the attacker's own keys).
            let p256 = P256.Signing.PrivateKey()
            forged.append(
                (
                    "ES256",
                    try Forge.token(header: #"{"alg":"ES256","typ":"JWT","kid":"\#(kid)"}"#, payload: payload) { input in
                        Array(try p256.signature(for: Array(input.utf8)).rawRepresentation)
                    }
                )
            )
            forged.append(
                (
                    "RS256 header",
                    Forge.token(header: #"{"alg":"RS256","typ":"JWT","kid":"\#(kid)"}"#, payload: payload) { _ in Array(repeating: 7, count: 256) }
                )
            )
            // EdDSA signed by a key that is not ours, under our kid and under an unknown kid.
            let mine = Curve25519.Signing.PrivateKey()
            forged.append(
                (
                    "foreign key, our kid",
                    try Forge.token(header: #"{"alg":"EdDSA","typ":"JWT","kid":"\#(kid)"}"#, payload: payload) {
                        Array(try mine.signature(for: Array($0.utf8)))
                    }
                )
            )
            forged.append(
                (
                    "unknown kid",
                    try Forge.token(header: #"{"alg":"EdDSA","typ":"JWT","kid":"attacker"}"#, payload: payload) {
                        Array(try mine.signature(for: Array($0.utf8)))
                    }
                )
            )
            forged.append(
                (
                    "no kid",
                    try Forge.token(header: #"{"alg":"EdDSA","typ":"JWT"}"#, payload: payload) { Array(try mine.signature(for: Array($0.utf8))) }
                )
            )
            // Tampered payload: roles raised, signature kept.
            let parts = ada.accessToken.split(separator: ".").map(String.init)
            forged.append(("tampered payload", parts[0] + "." + Forge.b64(payload) + "." + parts[2]))
            // Signature stripped, or truncated.
            forged.append(("no signature", parts[0] + "." + parts[1] + "."))
            forged.append(("truncated signature", parts[0] + "." + parts[1] + "." + String(parts[2].dropLast(4))))
            // Properly signed by the server's own key, but with bad claims.
            func signed(_ c: AccessClaims) async throws -> String { try await tokens.sign(c) }
            let sid = try #require(try JSONValue.parse(Base64URL.decode(parts[1]) ?? [])["sid"]?.stringValue)
            let base = tokens.claims(subject: ada.id, session: sid, roles: [], now: .now())
            var c = base
            c.exp = now - 120
            c.iat = now - 1000
            c.nbf = now - 1000
            forged.append(("expired", try await signed(c)))
            c = base
            c.nbf = now + 600
            forged.append(("not yet valid", try await signed(c)))
            c = base
            c.iss = "https://evil.example"
            forged.append(("wrong iss", try await signed(c)))
            c = base
            c.aud = "other-service"
            forged.append(("wrong aud", try await signed(c)))
            c = base
            c.sub = "00000000-0000-7000-8000-000000000000"
            forged.append(("unknown subject", try await signed(c)))
            c = base
            c.sid = RecordID.make()
            forged.append(("a session that does not exist", try await signed(c)))
            // One token, one spelling: padding, or other low bits in the signature's last character.
            forged.append(("padded", ada.accessToken + "=="))
            forged.append(("padded payload", parts[0] + "." + parts[1] + "=." + parts[2]))
            let last = parts[2].last!
            let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
            let sibling = alphabet[alphabet.firstIndex(of: last)! ^ 1]  // same high bits, another unused low bit
            forged.append(("low bits of the last character", parts[0] + "." + parts[1] + "." + parts[2].dropLast() + String(sibling)))
            forged.append(("garbage", "not.a.jwt"))
            forged.append(("two parts", parts[0] + "." + parts[1]))

            for (what, token) in forged {
                let r = try await api.get("/v1/auth/me", auth: .bearer(token))
                #expect(r.status == .unauthorized, "\(what) was accepted: \(r.status)")
                #expect(r.problem == "unauthenticated", "\(what)")
                #expect(r.header("WWW-Authenticate")?.contains("invalid_token") == true, "\(what)")
                // Never anonymous either: a public read with a bad token is still 401.
                #expect(try await api.get("/v1/notes", auth: .bearer(token)).status == .unauthorized, "\(what)")
            }
            // The verifier itself names each reason (so each test above fails if its check goes).
            let t = Timestamp.now()
            #expect(await tokens.verify(forged.first { $0.0 == "expired" }!.1, now: t).failure == .expired)
            #expect(await tokens.verify(forged.first { $0.0 == "not yet valid" }!.1, now: t).failure == .notYetValid)
            #expect(await tokens.verify(forged.first { $0.0 == "wrong iss" }!.1, now: t).failure == .issuer)
            #expect(await tokens.verify(forged.first { $0.0 == "wrong aud" }!.1, now: t).failure == .audience)
            #expect(await tokens.verify(forged.first { $0.0 == "unknown kid" }!.1, now: t).failure == .unknownKey)
            #expect(await tokens.verify(forged.first { $0.0 == "alg none" }!.1, now: t).failure == .algorithm)
            #expect(await tokens.verify(forged.first { $0.0 == "HS256 with public key" }!.1, now: t).failure == .algorithm)
            #expect(await tokens.verify(forged.first { $0.0 == "ES256" }!.1, now: t).failure == .algorithm)
            #expect(await tokens.verify(forged.first { $0.0 == "tampered payload" }!.1, now: t).failure == .signature)
            #expect(await tokens.verify(forged.first { $0.0 == "foreign key, our kid" }!.1, now: t).failure == .signature)
            // A verified token's signature verdict is remembered; its time is checked on every use.
            let good = try await signed(base)
            #expect(await tokens.verify(good, now: t).failure == nil)
            #expect(await tokens.verify(good, now: Timestamp(millisecondsSinceEpoch: t.millisecondsSinceEpoch + 3_600_000)).failure == .expired)
            #expect(await tokens.verify(good, now: t).failure == nil)
        }
    }

    /// Sign-in is throttled per email and address (API.md §8, §11): known and unknown emails alike,
    /// and failures from one address never lock the owner out from another.
    @Test(arguments: TestBackend.all)
    func signInIsThrottledPerEmailWithoutRevealingAccounts(_ backend: TestBackend) async throws {
        try await backend.withApp(
            schema: IdentityFixtures.schema,
            configure: {
                // A quota of 5 a minute (and the default lockout): the 6th attempt is refused however
                // slowly the machine runs. Client addresses come from X-Forwarded-For of loopback.
                $0.auth.throttle = .init(attemptsPerMinutePerEmail: 5)
                $0.http.trustedProxies = ["127.0.0.1"]
            }
        ) { api in
            _ = try await api.post("/v1/auth/register", #"{"email":"ada@example.com","password":"correct horse battery"}"#, auth: .none)
            let attacker = ["X-Forwarded-For": "198.51.100.7"]
            for email in ["ada@example.com", "ghost@example.com"] {
                for _ in 0..<5 {
                    let r = try await api.post(
                        "/v1/auth/login",
                        #"{"email":"\#(email)","password":"wrong wrong wrong"}"#,
                        auth: .none,
                        headers: attacker
                    )
                    #expect(r.status == .unauthorized)
                }
                // Refused now from that address — even with the right password, and just the same
                // for an unknown email.
                let locked = try await api.post(
                    "/v1/auth/login",
                    #"{"email":"\#(email)","password":"correct horse battery"}"#,
                    auth: .none,
                    headers: attacker
                )
                #expect(locked.status == .tooManyRequests, "\(email)")
                #expect(locked.problem == "rate-limited")
                #expect(Int(locked.header("Retry-After") ?? "") ?? 0 >= 1)
            }
            // A flood from that address, refused there, does not count against the email elsewhere
            // (the per-email ceiling is 50 here: ten times one address's quota).
            for _ in 0..<60 {
                _ = try await api.post(
                    "/v1/auth/login",
                    #"{"email":"ada@example.com","password":"wrong wrong wrong"}"#,
                    auth: .none,
                    headers: attacker
                )
            }
            // The owner, from another address, signs in.
            let owner = try await api.post(
                "/v1/auth/login",
                #"{"email":"ada@example.com","password":"correct horse battery"}"#,
                auth: .none,
                headers: ["X-Forwarded-For": "203.0.113.9"]
            )
            #expect(owner.status == .ok, "\(owner.text)")
        }
    }

    @Test(arguments: TestBackend.all)
    func authEndpointsHaveTheirOwnStricterQuota(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: IdentityFixtures.schema, configure: { $0.http.authPerMinute = 3 }) { api in
            for i in 0..<3 {
                let r = try await api.post("/v1/auth/password/forgot", #"{"email":"x\#(i)@example.com"}"#, auth: .none)
                #expect(r.status == .accepted)
                #expect(r.header("RateLimit-Policy") == "\"auth\";q=3;w=60")
            }
            let over = try await api.post("/v1/auth/password/forgot", #"{"email":"y@example.com"}"#, auth: .none)
            #expect(over.status == .tooManyRequests && over.header("Retry-After") != nil)
            // The same route spelled with an empty segment is the same quota.
            let sneaky = try await api.post("//v1/auth/password/forgot", #"{"email":"z@example.com"}"#, auth: .none)
            #expect(sneaky.status == .tooManyRequests, "\(sneaky.status)")
            #expect(try await api.get("/v1/notes", auth: .none).status == .unauthorized)  // other routes unaffected
        }
    }
}

extension Result {
    var failure: Failure? { if case .failure(let f) = self { f } else { nil } }
}

@Suite("Refused credentials are rate limited before any work")
struct RefusedCredentialTests {
    @Test(arguments: TestBackend.all)
    func anAddressSendingBadTokensIsSlowedDown(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: IdentityFixtures.schema, configure: { $0.http.authPerMinute = 5 }) { api in
            for i in 0..<5 {
                let r = try await api.get("/v1/notes", auth: .bearer(i % 2 == 0 ? "bsk_nope\(i)" : "eyJhbGciOiJFZERTQSJ9.e30.sig\(i)"))
                #expect(r.status == .unauthorized)
            }
            let slowed = try await api.get("/v1/notes", auth: .bearer("bsk_nope-again"))
            #expect(slowed.status == .tooManyRequests && slowed.header("Retry-After") != nil)
            // Even a good credential from that address waits: the point is to stop guessing.
            #expect(try await api.get("/v1/notes").status == .tooManyRequests)
            // Anonymous requests are not credentials and are not affected by this counter.
            #expect(try await api.get("/v1/notes", auth: .none).status == .unauthorized)
        }
    }
}
