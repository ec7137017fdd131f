import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Random bits for identifiers — record ids, request ids, trace and span ids — from the kernel's
/// CSPRNG (`/dev/urandom`), read 4 KiB at a time. `SystemRandomNumberGenerator` makes one `getrandom` system call
/// per 8 bytes: five per request (request id, trace and span ids) and two more per created record.
/// Secrets (tokens, keys, password salts, one-time codes) keep reading the system generator
/// directly, so no secret's bits ever sit in this process's buffer before use.
public struct IdentifierRandom: RandomNumberGenerator {
    public init() {}

    public mutating func next() -> UInt64 { Self.pool.withLock { $0.next() } }

    static let pool = Mutex(Pool())

    struct Pool {
        var words = [UInt64](repeating: 0, count: 512)
        var index = 512

        mutating func next() -> UInt64 {
            if index == words.count {
                refill()
                index = 0
            }
            defer { index += 1 }
            return words[index]
        }

        #if canImport(Glibc)
        static let urandom = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        #endif

        mutating func refill() {
            let filled = words.withUnsafeMutableBytes { buffer -> Bool in
                #if canImport(Glibc)
                // The same generator as `getrandom` (which Glibc's module does not export).
                guard Self.urandom >= 0 else { return false }
                var done = 0
                while done < buffer.count {
                    let n = read(Self.urandom, buffer.baseAddress! + done, buffer.count - done)
                    if n > 0 {
                        done += n
                    } else if n == 0 || errno != EINTR {
                        return false
                    }
                }
                return true
                #else
                arc4random_buf(buffer.baseAddress!, buffer.count)
                return true
                #endif
            }
            guard !filled else { return }
            // No /dev/urandom (a sandbox without it): the standard library's source, word by word.
            var system = SystemRandomNumberGenerator()
            for i in words.indices { words[i] = system.next() }
        }
    }
}
