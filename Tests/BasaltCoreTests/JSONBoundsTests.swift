import Testing

@testable import BasaltCore

/// API.md §1: objects of at most 10,000 members, duplicates found in linear time. The work is
/// counted, not timed: name comparisons per member stay constant as objects grow (they grew
/// with the member count before, which made 100,000 members cost up to a minute of CPU).
@Suite("JSON: bounded objects, linear duplicate detection")
struct JSONBoundsTests {
    func object(_ n: Int, extra: String = "") -> [UInt8] {
        Array(("{" + (0..<n).map { #""\#(String($0, radix: 36))":0"# }.joined(separator: ",") + extra + "}").utf8)
    }

    @Test func workPerMemberIsConstant() throws {
        var perMember: [Double] = []
        for n in [100, 1_000, 10_000] {
            var work = JSONParseWork()
            _ = try JSONValue.parse(object(n), work: &work)
            perMember.append(Double(work.nameComparisons) / Double(n))
        }
        // About one comparison a member (plus the first sixteen's scans), whatever the size.
        #expect(perMember.allSatisfy { $0 < 3 }, "\(perMember)")
        #expect(perMember[2] <= perMember[1] + 0.1, "\(perMember)")
    }

    @Test func membersAreCappedAndDuplicatesFound() throws {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(object(10_001)) }
        var work = JSONParseWork()
        #expect(throws: JSONParseError.self) { try JSONValue.parse(object(100_000), work: &work) }
        #expect(work.nameComparisons < 20_000, "refused at the 10,001st member: \(work.nameComparisons)")
        #expect(throws: JSONParseError.self) { try JSONValue.parse(object(5_000, extra: #","a":1"#)) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse(object(5, extra: #","a":1,"a":2"#)) }
        #expect(try JSONValue.parse(object(10_000)).objectValue?.count == 10_000)
    }
}
