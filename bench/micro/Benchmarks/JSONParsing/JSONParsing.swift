import BasaltCore
// Work per member of a JSON object (issue: security hardening, item 1). Duplicate detection
// used to scan every earlier member: 100,000 members took up to a minute. Each benchmark parses
// one object per iteration: per member (divide by the member count) the cost — instructions and
// time — should stay flat from 1,000 to 10,000 members.
import Benchmark

func object(members n: Int) -> [UInt8] {
    Array(("{" + (0..<n).map { #""\#(String($0, radix: 36))":0"# }.joined(separator: ",") + "}").utf8)
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .instructions, .mallocCountTotal], maxDuration: .seconds(5))
    for n in [1_000, 10_000] {
        let body = object(members: n)
        Benchmark("parse an object of \(n) members") { benchmark in
            for _ in benchmark.scaledIterations { blackHole(try JSONValue.parse(body)) }
        }
    }
    // The hostile body of the issue: refused at the 10,001st member, whatever follows.
    let hostile = object(members: 100_000)
    Benchmark("refuse an object of 100,000 members") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? JSONValue.parse(hostile)) }
    }
}
