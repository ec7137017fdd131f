import Foundation

/// The encodings that make a UTF-8 message 7-bit safe, and the transport's dot-stuffing.
/// Pure functions; the tests pin each one.
enum MIMEEncoding {
    static let crlf: [UInt8] = [UInt8(ascii: "\r"), UInt8(ascii: "\n")]

    // MARK: RFC 2045 §6.7 quoted-printable

    /// Encodes `text` as quoted-printable lines, each ending in CRLF. Line breaks (`\r\n`, `\n`,
    /// `\r`) become CRLF; one trailing line break is not an extra empty line. Encoded lines are
    /// at most 76 characters, split with soft line breaks (`=` CRLF) that never cut an `=XX`.
    static func quotedPrintable(_ text: String) -> [UInt8] {
        var lines = Self.splitLines(text)
        if lines.last?.isEmpty == true { lines.removeLast() }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + text.utf8.count / 8)
        for line in lines {
            Self.appendQuotedPrintableLine(line, to: &out)
            out += Self.crlf
        }
        return out
    }

    private static func appendQuotedPrintableLine(_ line: [UInt8], to out: inout [UInt8]) {
        var lineLength = 0
        for (index, byte) in line.enumerated() {
            let isLast = index == line.count - 1
            let isWhitespace = byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
            let literal = isWhitespace ? !isLast : (33...126).contains(byte) && byte != UInt8(ascii: "=")
            let tokenLength = literal ? 1 : 3
            // 75 characters and the soft break's "=" make 76; the last token needs no "=" after it.
            let limit = isLast ? 76 : 75
            if lineLength + tokenLength > limit {
                out += [UInt8(ascii: "=")] + Self.crlf
                lineLength = 0
            }
            if literal {
                out.append(byte)
            } else {
                out += Self.hexEscape(byte)
            }
            lineLength += tokenLength
        }
    }

    private static func hexEscape(_ byte: UInt8) -> [UInt8] {
        let digits = Array("0123456789ABCDEF".utf8)
        return [UInt8(ascii: "="), digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]]
    }

    /// The UTF-8 bytes of each line; `\r\n`, `\n` and a lone `\r` all end a line.
    static func splitLines(_ text: String) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var current: [UInt8] = []
        var previousWasCR = false
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\n") where previousWasCR:
                previousWasCR = false
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                lines.append(current)
                current = []
                previousWasCR = byte == UInt8(ascii: "\r")
            default:
                current.append(byte)
                previousWasCR = false
            }
        }
        lines.append(current)
        return lines
    }

    // MARK: RFC 2047 encoded-words

    /// Whether `text` may appear in a header as it is: printable ASCII or tab, not so long that
    /// the line would pass RFC 5322's 998-character limit, and not looking like an encoded-word.
    static func isSafeHeaderText(_ text: String) -> Bool {
        text.utf8.count <= 900
            && text.utf8.allSatisfy { (0x20...0x7E).contains($0) || $0 == UInt8(ascii: "\t") }
            && !text.contains("=?")
    }

    /// `=?UTF-8?B?…?=` words of at most 42 bytes of text each (68 characters, under RFC 2047's 75),
    /// split between Unicode scalars so each word decodes on its own.
    static func encodedWords(_ text: String) -> [String] {
        var words: [String] = []
        var chunk: [UInt8] = []
        for scalar in text.unicodeScalars {
            let bytes = Array(String(scalar).utf8)
            if chunk.count + bytes.count > 42 {
                words.append(Self.encodedWord(chunk))
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty || words.isEmpty { words.append(Self.encodedWord(chunk)) }
        return words
    }

    private static func encodedWord(_ bytes: [UInt8]) -> String {
        "=?UTF-8?B?" + Self.base64(bytes) + "?="
    }

    static func base64(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
    }

    // MARK: RFC 5322 §3.3 date

    /// `Thu, 13 Feb 2025 09:05:00 +0000` for a number of seconds since 1970, in UTC. The day
    /// always has two digits (`01 Jan`), as most mailers write it.
    static func rfc5322Date(secondsSince1970 seconds: Int64) -> String {
        let (days, secondOfDay) = Self.floorDivide(seconds, 86_400)
        let (year, month, day) = Self.civilDate(daysSince1970: days)
        let weekday = Int(Self.floorDivide(days + 4, 7).remainder)  // 1970-01-01 was a Thursday
        let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func twoDigits(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let time = "\(twoDigits(secondOfDay / 3600)):\(twoDigits(secondOfDay / 60 % 60)):\(twoDigits(secondOfDay % 60))"
        return "\(weekdays[weekday]), \(twoDigits(day)) \(months[Int(month) - 1]) \(year) \(time) +0000"
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        let remainder = (value % divisor + divisor) % divisor
        return ((value - remainder) / divisor, remainder)
    }

    /// Proleptic Gregorian year, month (1–12) and day for a day count since 1970-01-01, by the
    /// era arithmetic of Howard Hinnant's "chrono-compatible low-level date algorithms".
    private static func civilDate(daysSince1970 days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = days + 719_468  // days since 0000-03-01
        let era = Self.floorDivide(shifted, 146_097).quotient
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153  // March is 0
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    // MARK: RFC 5321 §4.5.2 transparency

    /// The DATA payload: every line starting with "." gets another "."; then the `.` CRLF
    /// terminator. `message` must end with CRLF.
    static func dotStuffed(_ message: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(message.count + 16)
        var atLineStart = true
        for byte in message {
            if atLineStart && byte == UInt8(ascii: ".") { out.append(UInt8(ascii: ".")) }
            out.append(byte)
            atLineStart = byte == UInt8(ascii: "\n")
        }
        if !(out.count >= 2 && out[out.count - 2] == UInt8(ascii: "\r") && out[out.count - 1] == UInt8(ascii: "\n")) {
            out += Self.crlf
        }
        out += [UInt8(ascii: ".")] + Self.crlf
        return out
    }
}
