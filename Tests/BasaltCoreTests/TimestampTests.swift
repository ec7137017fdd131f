import BasaltCore
import Foundation
import Testing

/// RFC 3339 formatting and parsing, written by hand because every record read formats two.
@Suite("Timestamps in RFC 3339")
struct TimestampTests {
    @Test func formatsKnownInstants() {
        #expect(Timestamp(millisecondsSinceEpoch: 0).rfc3339 == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp(millisecondsSinceEpoch: 1_795_253_286_123).rfc3339 == "2026-11-21T09:28:06.123Z")
        #expect(Timestamp(millisecondsSinceEpoch: -1).rfc3339 == "1969-12-31T23:59:59.999Z")
        #expect(Timestamp(millisecondsSinceEpoch: 951_782_400_000).rfc3339 == "2000-02-29T00:00:00.000Z")
        #expect(Timestamp(millisecondsSinceEpoch: 253_402_300_799_999).rfc3339 == "9999-12-31T23:59:59.999Z")
    }

    /// Every instant from year 1 to 9999 comes back from its own text, and agrees with Foundation.
    @Test func roundTripsAndAgreesWithFoundation() {
        var rng = SystemRandomNumberGenerator()
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        for _ in 0..<2_000 {
            let ms = Int64.random(in: -62_135_596_800_000...253_402_300_799_999, using: &rng)
            let t = Timestamp(millisecondsSinceEpoch: ms)
            let text = t.rfc3339
            #expect(Timestamp(rfc3339: text) == t, "\(ms) → \(text)")
            if ms >= 0 {
                let date = Date(timeIntervalSince1970: Double(ms) / 1000)
                #expect(formatter.string(from: date) == text, "\(ms)")
            }
        }
    }

    @Test func parsesOffsetsFractionsAndRefusesTheMalformed() {
        #expect(Timestamp(rfc3339: "2026-11-21T10:28:06.1234+01:00")?.millisecondsSinceEpoch == 1_795_253_286_123)
        #expect(Timestamp(rfc3339: "2026-11-21t09:28:06z")?.millisecondsSinceEpoch == 1_795_253_286_000)
        #expect(Timestamp(rfc3339: "2026-11-21 09:28:06.5Z")?.millisecondsSinceEpoch == 1_795_253_286_500)
        for bad in [
            "", "2026-11-21", "2026-02-30T00:00:00Z", "2026-11-21T24:00:00Z", "2026-11-21T09:28:06", "2026-11-21T09:28:06.Z",
            "2026-11-21T09:28:06Z ", "2026-11-21T09:28:06+1:00", "２026-11-21T09:28:06Z",
        ] {
            #expect(Timestamp(rfc3339: bad) == nil, "\(bad)")
        }
    }
}

/// HTTP's optional whitespace (spaces and tabs) around header parts.
@Suite("Optional whitespace")
struct OptionalWhitespaceTests {
    @Test func trimsSpacesAndTabsOnly() {
        #expect(" \t a b \t".trimmingOWS() == "a b")
        #expect("token".trimmingOWS() == "token")
        #expect("   ".trimmingOWS() == "")
        #expect("".trimmingOWS() == "")
        #expect("\u{00A0}x\n".trimmingOWS() == "\u{00A0}x\n")
        // Multi-byte text at either end is kept whole (bounds fall on scalar boundaries).
        #expect(" \télan café\t ".trimmingOWS() == "élan café")
        #expect("\t😀 ".trimmingOWS() == "😀")
        #expect("x: \tvälue ".split(separator: ":")[1].trimmingOWS() == "välue")
        #expect("a, b ,c".split(separator: ",").map { String($0.trimmingOWS()) } == ["a", "b", "c"])
    }
}
