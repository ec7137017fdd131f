import Logging
import Synchronization

/// Keeps every log record in memory so tests can assert what was (and was not) logged.
/// (swift-log's `InMemoryLogging` product is not a dependency of this target.)
struct CapturingLogHandler: LogHandler {
    final class Storage: Sendable {
        let records = Mutex<[String]>([])
        var all: [String] { self.records.withLock { $0 } }
    }

    let storage: Storage
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = self.metadata.merging(event.metadata ?? [:]) { $1 }
        let rendered = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        self.storage.records.withLock { $0.append("\(event.level) \(event.message) \(rendered)") }
    }

    static func logger() -> (Logger, Storage) {
        let storage = Storage()
        var logger = Logger(label: "basalt.smtp.test") { _ in CapturingLogHandler(storage: storage) }
        logger.logLevel = .trace
        return (logger, storage)
    }
}
