import BasaltCore
import BasaltTelemetry
import Crypto
import CryptoExtras
import Foundation
import NIOPosix

/// Hashes and verifies passwords. Implementations are memory-hard and slow on purpose, so they
/// run off the cooperative pool.
public protocol PasswordHasher: Sendable {
    /// A self-describing hash (PHC string format) of `password`.
    func hash(_ password: String) async throws -> String
    /// Whether `password` matches `stored`, and whether `stored` should be re-hashed because
    /// its parameters are weaker than the current ones.
    func verify(_ password: String, against stored: String) async throws -> PasswordCheck
}

public enum PasswordCheck: Sendable, Equatable {
    case mismatch
    case match
    /// Matches, but was hashed with older parameters: store a fresh hash.
    case matchNeedsRehash
}

/// scrypt (RFC 7914) in PHC string form: `$scrypt$ln=15,r=8,p=1$<salt>$<hash>` (base64 without
/// padding). `ln=15, r=8` is 32 MiB of memory per hash, about 60 ms on this class of machine;
/// raising the parameters makes older hashes `matchNeedsRehash` on their next successful sign-in.
public struct ScryptPasswordHasher: PasswordHasher {
    public struct Parameters: Sendable, Equatable, Comparable {
        public var logN: Int
        public var r: Int
        public var p: Int
        public init(logN: Int, r: Int, p: Int) {
            self.logN = logN
            self.r = r
            self.p = p
        }
        public static let standard = Parameters(logN: 15, r: 8, p: 1)
        /// For tests that hash many passwords; never for production.
        public static let fastForTests = Parameters(logN: 10, r: 8, p: 1)

        var cost: Int { (1 << logN) * r * p }
        public static func < (a: Parameters, b: Parameters) -> Bool { a.cost < b.cost }
    }

    public let parameters: Parameters
    static let keyBytes = 32
    static let saltBytes = 16

    public init(parameters: Parameters = .standard) {
        self.parameters = parameters
    }

    public func hash(_ password: String) async throws -> String {
        var salt = [UInt8](repeating: 0, count: Self.saltBytes)
        var rng = SystemRandomNumberGenerator()
        for i in salt.indices { salt[i] = rng.next() }
        let params = parameters
        let saltBytes = salt
        let key = try await Trace.span("password.hash") { try await Self.offload { try Self.derive(password, salt: saltBytes, params) } }
        return "$scrypt$ln=\(params.logN),r=\(params.r),p=\(params.p)$\(Self.b64(salt))$\(Self.b64(key))"
    }

    public func verify(_ password: String, against stored: String) async throws -> PasswordCheck {
        guard let phc = Self.parse(stored) else { return .mismatch }
        let key = try await Trace.span("password.verify") { try await Self.offload { try Self.derive(password, salt: phc.salt, phc.params) } }
        guard Digest.constantTimeEqual(key, phc.hash) else { return .mismatch }
        return phc.params < parameters ? .matchNeedsRehash : .match
    }

    /// A hash of a random password with the current parameters: verifying against it costs what a
    /// real verification costs, so an unknown email takes as long as a wrong password.
    public func decoy() async throws -> String {
        try await hash(Digest.randomToken(bytes: 16))
    }

    static func derive(_ password: String, salt: [UInt8], _ p: Parameters) throws -> [UInt8] {
        let key = try KDF.Scrypt.deriveKey(
            from: Array(password.utf8),
            salt: salt,
            outputByteCount: keyBytes,
            rounds: 1 << p.logN,
            blockSize: p.r,
            parallelism: p.p
        )
        return key.withUnsafeBytes { Array($0) }
    }

    /// Runs CPU-heavy work on NIO's blocking pool, never on the cooperative pool.
    static func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(work)
    }

    struct PHC {
        var params: Parameters
        var salt: [UInt8]
        var hash: [UInt8]
    }

    static func parse(_ s: String) -> PHC? {
        let parts = s.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0].isEmpty, parts[1] == "scrypt" else { return nil }
        var ln = 0
        var r = 0
        var p = 0
        for kv in parts[2].split(separator: ",") {
            let pair = kv.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, let v = Int(pair[1]) else { return nil }
            switch pair[0] {
            case "ln": ln = v
            case "r": r = v
            case "p": p = v
            default: return nil
            }
        }
        // Bounds keep a tampered row from asking for much: at most 2^17 · 128 · 16 B = 256 MiB.
        guard (1...17).contains(ln), (1...16).contains(r), (1...4).contains(p), (1 << ln) * 128 * r <= 256 << 20,
            let salt = unb64(parts[3]), let hash = unb64(parts[4]), !salt.isEmpty, hash.count == keyBytes
        else { return nil }
        return PHC(params: Parameters(logN: ln, r: r, p: p), salt: salt, hash: hash)
    }

    static func b64(_ bytes: [UInt8]) -> String {
        var s = Data(bytes).base64EncodedString()
        while s.hasSuffix("=") { s.removeLast() }
        return s
    }

    static func unb64(_ s: Substring) -> [UInt8]? {
        var t = String(s)
        while t.count % 4 != 0 { t += "=" }
        return Data(base64Encoded: t).map { Array($0) }
    }

}
