import Foundation

/// Runs `body` as the program, with the main thread parked on a semaphore rather than in
/// `dispatch_main()` (where an `async` main parks it): valgrind 3.19 dies with an internal SIGSEGV
/// on `dispatch_main()`, so only a program started this way can be measured with callgrind.
/// Nothing here runs on the main actor.
public func runWithParkedMain(_ body: @escaping @Sendable () async throws -> Void) -> Never {
    let finished = DispatchSemaphore(value: 0)
    Task {
        do {
            try await body()
        } catch {
            print("error: \(error)")
            exit(1)
        }
        finished.signal()
    }
    finished.wait()
    exit(0)
}
