/// A UTC instant with millisecond precision: the resolution Basalt stores and returns.
/// RFC 3339 parsing and formatting are written here (no Foundation formatter) because every
/// record read formats two of them.
public struct Timestamp: Sendable, Hashable, Comparable {
    public var millisecondsSinceEpoch: Int64
    public init(millisecondsSinceEpoch: Int64) { self.millisecondsSinceEpoch = millisecondsSinceEpoch }
    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.millisecondsSinceEpoch < b.millisecondsSinceEpoch }

    /// `2026-11-27T10:08:06.123Z`
    public var rfc3339: String {
        let ms = millisecondsSinceEpoch
        let days = floorDiv(ms, 86_400_000)
        let msOfDay = ms - days * 86_400_000
        let (y, m, d) = Timestamp.civil(fromDays: days)
        let h = msOfDay / 3_600_000
        let mi = (msOfDay / 60_000) % 60
        let s = (msOfDay / 1000) % 60
        let f = msOfDay % 1000
        // Written in place: this runs twice for every record rendered.
        return String(unsafeUninitializedCapacity: 24) { out in
            _ = out.initialize(from: "0000-00-00T00:00:00.000Z".utf8)
            for (value, start, width) in [(y, 0, 4), (m, 5, 2), (d, 8, 2), (h, 11, 2), (mi, 14, 2), (s, 17, 2), (f, 20, 3)] {
                var v = value
                for i in stride(from: start + width - 1, through: start, by: -1) {
                    out[i] = UInt8(0x30 + v % 10)
                    v /= 10
                }
            }
            return 24
        }
    }

    /// Parses RFC 3339 (`date-time`): a date, `T`, a time with optional fraction, and `Z` or an offset.
    /// Fractions beyond milliseconds are truncated.
    public init?(rfc3339 text: String) {
        var text = text
        guard let ms = text.withUTF8({ Self.parse(rfc3339: $0) }) else { return nil }
        self.millisecondsSinceEpoch = ms
    }

    static func parse(rfc3339 u: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard u.count >= 20 else { return nil }
        var i = 0
        func num(_ n: Int) -> Int64? {
            guard i + n <= u.count else { return nil }
            var v: Int64 = 0
            for k in 0..<n {
                let c = u[i + k]
                guard c >= 0x30, c <= 0x39 else { return nil }
                v = v * 10 + Int64(c - 0x30)
            }
            i += n
            return v
        }
        func lit(_ c: UInt8) -> Bool {
            guard i < u.count, u[i] == c else { return false }
            i += 1
            return true
        }
        guard let y = num(4), lit(0x2D), let mo = num(2), lit(0x2D), let d = num(2) else { return nil }
        guard i < u.count, u[i] == 0x54 || u[i] == 0x74 || u[i] == 0x20 else { return nil }
        i += 1
        guard let h = num(2), lit(0x3A), let mi = num(2), lit(0x3A), let s = num(2) else { return nil }
        guard (1...12).contains(mo), d >= 1, d <= Timestamp.daysIn(month: mo, year: y), h < 24, mi < 60, s < 61 else {
            return nil
        }
        var frac: Int64 = 0
        if lit(0x2E) {
            var digits = 0
            while i < u.count, u[i] >= 0x30, u[i] <= 0x39 {
                if digits < 3 { frac = frac * 10 + Int64(u[i] - 0x30) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            if digits < 3 { for _ in digits..<3 { frac *= 10 } }
        }
        var offsetMinutes: Int64 = 0
        guard i < u.count else { return nil }
        if u[i] == 0x5A || u[i] == 0x7A {
            i += 1
        } else if u[i] == 0x2B || u[i] == 0x2D {
            let sign: Int64 = u[i] == 0x2D ? -1 : 1
            i += 1
            guard let oh = num(2), lit(0x3A), let om = num(2), oh < 24, om < 60 else { return nil }
            offsetMinutes = sign * (oh * 60 + om)
        } else {
            return nil
        }
        guard i == u.count else { return nil }
        let days = Timestamp.days(fromCivil: y, mo, d)
        let secs = days * 86400 + h * 3600 + mi * 60 + min(s, 59) - offsetMinutes * 60
        return secs * 1000 + frac
    }

    public static func now() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(millisecondsSinceEpoch: Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000)
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's days_from_civil / civil_from_days.
    static func days(fromCivil y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719468
        let era = floorDiv(z, 146097)
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }
}

@inline(__always) func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
