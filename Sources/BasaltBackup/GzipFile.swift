import CZlib
import Foundation

/// A file error with the path, never the file's content.
public struct BackupFileError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Writes a gzip file line by line. The file is created owner-only (a backup holds password
/// hashes and sealed secrets) under a temporary name and renamed into place by `finish`, so an
/// interrupted backup never leaves a file that looks complete. One task writes at a time.
final class GzipLineWriter: @unchecked Sendable {
    let path: String
    let partial: String
    private var file: gzFile?
    private var buffer: [UInt8] = []
    private static let flushAt = 1 << 16

    init(path: String) throws {
        self.path = path
        // A name of its own: two backups to one path at once must not write into one file.
        partial = path + ".partial-\(UUID().uuidString.prefix(8))"
        let fd = open(partial, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw BackupFileError("cannot create \(partial): \(String(cString: strerror(errno)))") }
        guard let f = gzdopen(fd, "wb6") else {
            close(fd)
            throw BackupFileError("cannot start compressing \(partial)")
        }
        gzbuffer(f, 1 << 17)
        file = f
        buffer.reserveCapacity(Self.flushAt * 2)
    }

    deinit {
        if let file {
            gzclose(file)
            unlink(partial)
        }
    }

    /// Appends `line` and a newline.
    func write(_ line: some Collection<UInt8>) throws {
        buffer.append(contentsOf: line)
        buffer.append(0x0A)
        if buffer.count >= Self.flushAt { try flush() }
    }

    private func flush() throws {
        guard let file, !buffer.isEmpty else { return }
        let written = buffer.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
        guard written == Int32(buffer.count) else { throw BackupFileError("cannot write \(partial) (disk full?)") }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes, syncs and moves the file to its final name.
    func finish() throws {
        try flush()
        guard let f = file else { return }
        file = nil
        guard gzclose(f) == Z_OK else {
            unlink(partial)
            throw BackupFileError("cannot finish \(partial)")
        }
        let fd = open(partial, O_RDONLY)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
        guard rename(partial, path) == 0 else {
            unlink(partial)
            throw BackupFileError("cannot move the backup to \(path): \(String(cString: strerror(errno)))")
        }
    }
}

/// Reads a gzip file line by line (a plain file reads as itself).
final class GzipLineReader {
    private let file: gzFile
    private var buffer: [UInt8] = []
    private var start = 0
    private var eof = false
    /// No line of a backup is longer than this; a longer one means the file is not a backup.
    static let maxLine = 256 << 20

    init(path: String) throws {
        guard let f = gzopen(path, "rb") else { throw BackupFileError("cannot open \(path): \(String(cString: strerror(errno)))") }
        gzbuffer(f, 1 << 17)
        file = f
    }

    deinit { gzclose(file) }

    /// The next line without its newline; nil at the end of the file.
    func next() throws -> ArraySlice<UInt8>? {
        var searchFrom = start
        while true {
            if let nl = buffer[searchFrom...].firstIndex(of: 0x0A) {
                let line = buffer[start..<nl]
                start = nl + 1
                return line
            }
            if eof {
                guard start < buffer.count else { return nil }
                let line = buffer[start...]
                start = buffer.count
                return line
            }
            if start > 0 {
                buffer.removeFirst(start)
                start = 0
            }
            searchFrom = buffer.count
            guard buffer.count < Self.maxLine else { throw BackupFileError("the file is not a Basalt backup (a line is too long)") }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if n < 0 { throw BackupFileError("the file is damaged (it does not decompress)") }
            if n == 0 {
                var code: Int32 = Z_OK
                _ = gzerror(file, &code)
                if code != Z_OK { throw BackupFileError("the file is damaged (it ends early or does not decompress)") }
                eof = true
            } else {
                buffer.append(contentsOf: chunk[0..<Int(n)])
            }
        }
    }
}
