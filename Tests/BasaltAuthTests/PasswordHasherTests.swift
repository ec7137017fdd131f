import BasaltAuth
import BasaltCore
import Testing

@Suite("Passwords: scrypt in PHC form, policy")
struct PasswordHasherTests {
    @Test func hashesVerifyAndAreSalted() async throws {
        let h = ScryptPasswordHasher(parameters: .fastForTests)
        let a = try await h.hash("correct horse battery")
        let b = try await h.hash("correct horse battery")
        #expect(a.hasPrefix("$scrypt$ln=10,r=8,p=1$"))
        #expect(a != b)  // salted
        #expect(try await h.verify("correct horse battery", against: a) == .match)
        #expect(try await h.verify("correct horse batterY", against: a) == .mismatch)
        #expect(try await h.verify("", against: a) == .mismatch)
    }

    @Test func weakerParametersAskForARehash() async throws {
        let old = try await ScryptPasswordHasher(parameters: .fastForTests).hash("pässwörd with ümlauts")
        let current = ScryptPasswordHasher(parameters: ScryptPasswordHasher.Parameters(logN: 11, r: 8, p: 1))
        #expect(try await current.verify("pässwörd with ümlauts", against: old) == .matchNeedsRehash)
        #expect(try await current.verify("wrong", against: old) == .mismatch)
        let fresh = try await current.hash("pässwörd with ümlauts")
        #expect(try await current.verify("pässwörd with ümlauts", against: fresh) == .match)
    }

    @Test(arguments: [
        "", "plain", "$scrypt$ln=40,r=8,p=1$c2FsdA$aGFzaA", "$scrypt$ln=10,r=8$c2FsdA$aGFzaA",
        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", "$scrypt$ln=10,r=8,p=1$$",
    ])
    func malformedOrHostileHashesNeverMatch(_ stored: String) async throws {
        #expect(try await ScryptPasswordHasher(parameters: .fastForTests).verify("x", against: stored) == .mismatch)
    }

    @Test func standardParametersTakeTensOfMilliseconds() async throws {
        // Not a timing assertion: the standard cost is 32 MiB (N=2^15, r=8), the RFC 7914 interactive setting.
        let p = ScryptPasswordHasher.Parameters.standard
        #expect((1 << p.logN) * 128 * p.r == 32 << 20)
    }

    @Test func policyRefusesShortCommonAndEmailPasswords() {
        let policy = PasswordPolicy()
        #expect(policy.check("correct horse battery").isEmpty)
        #expect(policy.check("short").first?.code == .min)
        #expect(policy.check(String(repeating: "x", count: 300)).first?.code == .max)
        #expect(policy.check("Password123").first?.code == .invalid)
        #expect(policy.check("qwertyuiop").first?.code == .invalid)
        #expect(policy.check("ada.lovelace", email: "ada.lovelace@example.com").first?.code == .invalid)
        #expect(policy.check("ünïcödé1").isEmpty)  // 8 scalars
    }
}

@Suite("TOTP and sealed secrets")
struct OneTimePasswordTests {
    /// RFC 6238 Appendix B (SHA-1 seed "12345678901234567890"), last six digits.
    @Test(arguments: [(59, "287082"), (1_111_111_109, "081804"), (1_111_111_111, "050471"), (1_234_567_890, "005924"), (2_000_000_000, "279037")])
    func rfc6238Vectors(_ seconds: Int64, _ expected: String) {
        #expect(OneTimePasswords.code(secret: "12345678901234567890", at: Timestamp(millisecondsSinceEpoch: seconds * 1000)) == expected)
    }

    @Test func driftOfOneStepAndNoReplay() {
        let secret = OneTimePasswords.newSecret()
        let now = Timestamp(millisecondsSinceEpoch: 1_700_000_000_000)
        let prev = OneTimePasswords.code(secret: secret, at: Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - 30_000))
        let step = OneTimePasswords.matchingStep(secret: secret, code: prev, at: now, after: nil)
        #expect(step == now.millisecondsSinceEpoch / 30_000 - 1)
        #expect(OneTimePasswords.matchingStep(secret: secret, code: prev, at: now, after: step) == nil)  // replay
        let old = OneTimePasswords.code(secret: secret, at: Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - 90_000))
        if old != prev && old != OneTimePasswords.code(secret: secret, at: now) {
            #expect(OneTimePasswords.matchingStep(secret: secret, code: old, at: now, after: nil) == nil)
        }
        #expect(OneTimePasswords.matchingStep(secret: secret, code: "12345", at: now, after: nil) == nil)
        #expect(OneTimePasswords.matchingStep(secret: secret, code: "abcdef", at: now, after: nil) == nil)
    }

    @Test func base32AndURI() {
        #expect(OneTimePasswords.base32(secret: "12345678901234567890") == "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
        let uri = OneTimePasswords.uri(secret: "12345678901234567890", label: "ada@example.com", issuer: "Basalt")
        #expect(uri.hasPrefix("otpauth://totp/") && uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ") && uri.contains("issuer=Basalt"))
    }

    @Test func secretBoxSealsAndRefusesAnotherKey() throws {
        let box = try SecretBox(encoded: SecretBox.generateEncoded())
        let sealed = try box.seal(Array("top secret".utf8))
        #expect(!sealed.contains("top secret") && sealed.hasPrefix("v1."))
        #expect(try box.open(sealed) == Array("top secret".utf8))
        #expect(try box.seal(Array("top secret".utf8)) != sealed)  // random nonce
        let other = try SecretBox(encoded: String(repeating: "ab", count: 32))
        #expect(throws: BasaltError.self) { try other.open(sealed) }
        #expect(throws: BasaltError.self) { try SecretBox(encoded: "too short") }
    }
}
