import Foundation
public import Logging
import Synchronization

/// One JSON object per line on standard output: `{"ts", "level", "msg", "logger", …metadata}`.
/// Secrets never reach it: nothing logs credentials or bodies.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    static let lock = Mutex(())

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = "{\"ts\":\"\(BasaltTime.nowRFC3339())\",\"level\":\"\(event.level)\",\"msg\":" + Self.quote(event.message.description)
        line += ",\"logger\":" + Self.quote(label)
        var merged = metadata
        if let m = event.metadata { merged.merge(m) { $1 } }
        for (k, v) in merged.sorted(by: { $0.key < $1.key }) { line += "," + Self.quote(k) + ":" + Self.quote("\(v)") }
        line += "}\n"
        Self.lock.withLock { _ in FileHandle.standardOutput.write(Data(line.utf8)) }
    }

    static func quote(_ s: String) -> String {
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

import BasaltCore
enum BasaltTime {
    static func nowRFC3339() -> String { Timestamp.now().rfc3339 }
}
