import ArgumentParser
import Foundation

/// The program: `BasaltCommand` run with the main thread parked on a semaphore rather than in
/// `dispatch_main()`, where an `async` main parks it. Nothing in Basalt or its dependencies runs
/// on the main actor, so the main thread has nothing else to do; and valgrind 3.19 (Debian's)
/// dies with an internal SIGSEGV on `dispatch_main()`, so only a program started this way can be
/// measured with callgrind (bench/callgrind.sh).
@main
enum Entry {
    static func main() {
        let finished = DispatchSemaphore(value: 0)
        // Detached: `main()` of a `@main` type is on the main actor, which a task would inherit
        // and the parked main thread would never run. `BasaltCommand.main()` exits with the
        // command's status itself on failure.
        Task.detached {
            await BasaltCommand.main()
            finished.signal()
        }
        finished.wait()
        exit(0)
    }
}
