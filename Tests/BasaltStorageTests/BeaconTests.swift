import BasaltStorage
import Foundation
import Testing

@Suite("Beacon")
struct BeaconTests {
    @Test func aRaiseWakesWaitersItPassesOnly() async throws {
        let beacon = Beacon()
        async let low = beacon.wait(beyond: 0, timeout: .seconds(60))
        async let high = beacon.wait(beyond: 5, timeout: .milliseconds(300))
        try await Task.sleep(for: .milliseconds(50))
        beacon.raise(to: 3)
        #expect(await low == true)
        #expect(await high == false)  // timed out: 3 does not pass 5
    }

    /// A cancelled task stops waiting at once — before or while it waits — so a service blocked
    /// on a beacon never holds up a shutdown (a one-hour wait once did).
    @Test(.timeLimit(.minutes(1))) func cancellationEndsAWait() async throws {
        let beacon = Beacon()
        let waiting = Task { await beacon.wait(beyond: 0, timeout: .seconds(3600)) }
        try await Task.sleep(for: .milliseconds(50))
        waiting.cancel()
        #expect(await waiting.value == false)
        let cancelledFirst = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await beacon.wait(beyond: 0, timeout: .seconds(3600))
        }
        #expect(await cancelledFirst.value == false)
    }
}
