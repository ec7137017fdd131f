import BasaltCore
import Foundation
import Testing

@Suite("Record ids: UUIDv7")
struct RecordIDTests {
    /// RFC 9562 §5.7: 48 bits of Unix milliseconds, version 7, variant 10, the rest random;
    /// canonical lowercase text that Foundation reads as the same UUID.
    @Test func madeIDsAreVersion7InTheirMillisecond() throws {
        var seen = Set<String>()
        let instants: [Int64] = [0, 1, 1_733_356_800_123, 0xFFFF_FFFF_FFFF, Timestamp.now().millisecondsSinceEpoch]
        for ms in instants {
            for _ in 0..<2000 {
                let id = RecordID.make(at: Timestamp(millisecondsSinceEpoch: ms))
                #expect(RecordID.normalize(id) == id)
                let uuid = try #require(UUID(uuidString: id))
                #expect(uuid.uuidString.lowercased() == id)
                let b = uuid.uuid
                let time = [b.0, b.1, b.2, b.3, b.4, b.5].reduce(Int64(0)) { $0 << 8 | Int64($1) }
                #expect(time == ms)
                #expect(b.6 >> 4 == 7)
                #expect(b.8 >> 6 == 0b10)
                #expect(seen.insert(id).inserted)
            }
        }
        // 74 random bits: across 10,000 ids every random nibble position takes many values.
        let randomNibbles = [15, 16, 17, 20, 21, 22, 24, 30, 35]
        for i in randomNibbles {
            let values = Set(seen.map { Array($0.utf8)[i] })
            #expect(values.count >= 12, "nibble \(i) took only \(values.count) values")
        }
    }

    @Test(
        arguments: [
            ("0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1a2b", "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1a2b"),
            ("0190A0B0-C0D0-7E0F-8A0B-0C0D0E0F1A2B", "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1a2b"),
            ("0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1A2b", "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1a2b"),
            ("0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1a2", nil), ("0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1a2bb", nil),
            ("0190a0b0c-0d0-7e0f-8a0b-0c0d0e0f1a2b", nil), ("0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1a2g", nil),
            ("0190a0b0-c0d0-7e0f-8a0b_0c0d0e0f1a2b", nil), ("0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1aé", nil), ("", nil),
        ] as [(String, String?)]
    )
    func normalizeAnswersTheCanonicalForm(_ text: String, _ canonical: String?) {
        #expect(RecordID.normalize(text) == canonical)
    }
}
