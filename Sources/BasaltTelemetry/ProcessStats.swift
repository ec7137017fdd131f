import Foundation

/// The process's resident memory and open descriptors, read from `/proc` (Linux); nil elsewhere.
public enum ProcessStats {
    public static var residentBytes: Double? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Double(fields[1]) else { return nil }
        return pages * Double(sysconf(Int32(_SC_PAGESIZE)))
    }

    public static var openDescriptors: Double? {
        // The listing itself holds one descriptor while it runs.
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")).map { Double(max(0, $0.count - 1)) }
    }

    /// The standard process samples (`process_resident_memory_bytes`, `process_open_fds`).
    public static var samples: [Metrics.Sample] {
        var out: [Metrics.Sample] = []
        if let r = residentBytes { out.append(.init("process_resident_memory_bytes", "Resident memory size in bytes", r)) }
        if let f = openDescriptors { out.append(.init("process_open_fds", "Open file descriptors", f)) }
        return out
    }
}
