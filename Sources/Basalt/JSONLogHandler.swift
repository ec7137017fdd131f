import BasaltCore
import Foundation
public import Logging
import Synchronization

/// One JSON object per line on standard output: `{"ts", "level", "msg", "logger", …metadata}`.
/// Secrets never reach it: nothing logs credentials or bodies.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    /// Metadata of the moment (the current span's `trace_id` and `span_id` when tracing is on).
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    /// Pending output: many lines become one write(2). Warnings and worse, a full buffer, and a
    /// once-a-second `flush()` (from the housekeeping service) keep the output timely.
    static let buffer = Mutex<[UInt8]>([])
    /// Held while writing to standard output, which may block (a full pipe): never waited for,
    /// and never the lock that loggers append under, so a stalled reader stalls no request.
    static let writer = Mutex<Void>(())
    static let flushBytes = 32 * 1024
    /// Past this much pending output (standard output stalled), new lines are dropped.
    static let maxPendingBytes = 8 << 20

    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = "{\"ts\":\"\(Timestamp.now().rfc3339)\",\"level\":\"\(event.level)\",\"msg\":" + Self.quote(event.message.description)
        line += ",\"logger\":" + Self.quote(label)
        var merged = metadataProvider?.get() ?? [:]
        merged.merge(metadata) { $1 }
        if let m = event.metadata { merged.merge(m) { $1 } }
        for (k, v) in merged.sorted(by: { $0.key < $1.key }) { line += "," + Self.quote(k) + ":" + Self.quote("\(v)") }
        line += "}\n"
        let due = Self.buffer.withLock { buf -> Bool in
            if buf.count < Self.maxPendingBytes { buf.append(contentsOf: line.utf8) }
            return buf.count >= Self.flushBytes || event.level >= .warning
        }
        if due { Self.flush() }
    }

    /// Writes what is pending, unless another thread is writing already (it, or the next tick,
    /// writes these lines too).
    public static func flush() {
        _ = writer.withLockIfAvailable { _ in
            while true {
                let chunk = buffer.withLock { buf -> [UInt8] in
                    var taken: [UInt8] = []
                    swap(&taken, &buf)
                    return taken
                }
                if chunk.isEmpty { return }
                writeAll(chunk)
            }
        }
    }

    static func writeAll(_ bytes: [UInt8]) {
        var offset = 0
        bytes.withUnsafeBytes { raw in
            while offset < raw.count {
                let n = write(1, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
    }

    static func quote(_ s: String) -> String {
        // One line per request, a dozen strings each: most need no escaping at all.
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) { return "\"" + s + "\"" }
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
