import BasaltAuth
public import BasaltBackup
import BasaltCore
import BasaltPostgres
import BasaltSQLite
import BasaltServices
public import BasaltStorage
import Foundation
public import Logging
import ServiceLifecycle

/// The version written into backups and shown by `basalt --version`.
public enum BasaltVersion {
    public static let current = "0.9.0"
}

extension BasaltRuntime {
    /// `basalt backup create`: a consistent snapshot of every table into `path` while the store
    /// keeps serving.
    @discardableResult
    public func createBackup(to path: String, progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> Backup.Manifest {
        guard let source = store as? any Snapshotting else { throw ConfigurationError("this store cannot take backups") }
        let manifest = try await Backup.create(
            from: source,
            to: path,
            basaltVersion: BasaltVersion.current,
            secretKeyID: auth.secrets.keyID,
            progress: progress
        )
        logger.info(
            "backup written",
            metadata: ["path": "\(path)", "tables": "\(manifest.tables.count)", "rows": "\(manifest.tables.reduce(0) { $0 + $1.rows })"]
        )
        return manifest
    }

    /// `basalt backup restore`: verifies the whole file, checks that the target will open the
    /// backup's sealed secrets (its master key is the source's), then replaces the store's
    /// content in one transaction. Opens only the store: no key or signing key is made first.
    public static func restoreBackup(
        _ path: String,
        configuration: BasaltConfiguration,
        force: Bool,
        logger: Logger,
        progress: @escaping @Sendable (String) -> Void = { _ in }
    ) async throws -> Backup.Manifest {
        let backup = try Backup.verify(path, progress: progress)
        let id = backup.manifest.secretKeyID
        let keyFile = (configuration.dataDirectory as NSString).appendingPathComponent("secret.key")
        var writeKeyFile: String?
        let configured =
            configuration.auth.secretKey
            ?? (configuration.databaseURL == nil ? try? String(contentsOfFile: keyFile, encoding: .utf8) : nil)
        if let configured {
            let target = try SecretBox(encoded: configured).keyID
            guard target == id else {
                throw Backup.Refusal(
                    description: """
                        the backup's secrets are sealed with master key \(id), this store's key is \(target): \
                        set BASALT_SECRET_KEY to the source's key (a SQLite source keeps it in its data folder's secret.key)
                        """
                )
            }
        } else if let stored = backup.storedSecretKey, (try? SecretBox(encoded: stored).keyID) == id {
            // The source kept its key in its database; a SQLite target keeps it in its key file.
            if configuration.databaseURL == nil { writeKeyFile = stored }
        } else {
            throw Backup.Refusal(
                description: """
                    the backup's secrets are sealed with master key \(id): set BASALT_SECRET_KEY to the source's key \
                    (a SQLite source keeps it in its data folder's secret.key)
                    """
            )
        }
        // The key file first (created owner-only, never over an existing one), so a restore never
        // commits data whose key is nowhere; it goes again if the restore fails.
        if let key = writeKeyFile {
            try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
            let fd = open(keyFile, O_WRONLY | O_CREAT | O_EXCL, 0o600)
            guard fd >= 0 else { throw ConfigurationError("cannot create the secret key file \(keyFile)") }
            let bytes = Array((key + "\n").utf8)
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            fsync(fd)
            close(fd)
            guard written == bytes.count else {
                unlink(keyFile)
                throw ConfigurationError("cannot write the secret key file \(keyFile)")
            }
        }
        // The key stays in the database only where this store keeps it there (PostgreSQL without
        // BASALT_SECRET_KEY); anywhere else a copy in the data would defeat the key's purpose.
        let keepKeyRow = configuration.databaseURL != nil && configured == nil
        do {
            try await withStore(configuration, logger: logger) { store in
                try await Backup.restore(backup, into: store, force: force, dropStoredKey: !keepKeyRow, progress: progress)
            }
        } catch {
            if writeKeyFile != nil { unlink(keyFile) }
            throw error
        }
        logger.info("backup restored", metadata: ["path": "\(path)", "from": "\(backup.manifest.store)"])
        return backup.manifest
    }

    /// Opens the configured store alone (Basalt's own tables migrated), runs `body`, closes it.
    public static func withStore<T: Sendable>(
        _ configuration: BasaltConfiguration,
        logger: Logger,
        _ body: @Sendable (any Store) async throws -> T
    ) async throws -> T {
        if let url = configuration.databaseURL {
            let store = try PostgresStore(
                url: url,
                schemaName: configuration.postgresSchema,
                maxConnections: 4,
                acquireTimeout: configuration.databaseTimeout,
                logger: logger
            )
            return try await store.withRunning {
                try await store.bootstrap()
                return try await body(store)
            }
        }
        let store = try SQLiteStore(directory: configuration.dataDirectory, busyTimeout: configuration.databaseTimeout, logger: logger)
        do {
            let value = try await body(store)
            try await store.close()
            return value
        } catch {
            try? await store.close()
            throw error
        }
    }
}

/// Scheduled backups from `serve` (`BASALT_BACKUP_DIR`, `BASALT_BACKUP_EVERY`,
/// `BASALT_BACKUP_KEEP`): one at each interval (the first one interval after start), named by
/// time so they sort, the oldest beyond `keep` deleted. Several replicas on one PostgreSQL
/// should set it on one of them.
struct BackupService: Service {
    let runtime: BasaltRuntime
    let directory: String

    static let prefix = "basalt-"
    static let suffix = ".backup.gz"

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: runtime.configuration.backupInterval)
                await backupOnce()
            }
        }
    }

    func backupOnce() async {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let stamp = Timestamp.now().rfc3339.replacingOccurrences(of: ":", with: "")
            let path = (directory as NSString).appendingPathComponent(Self.prefix + stamp + Self.suffix)
            _ = try await runtime.createBackup(to: path)
            let ours = try FileManager.default.contentsOfDirectory(atPath: directory)
                .filter { $0.hasPrefix(Self.prefix) && $0.hasSuffix(Self.suffix) }.sorted()
            for old in ours.dropLast(runtime.configuration.backupKeep) {
                try? FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(old))
            }
        } catch is CancellationError {
            return
        } catch {
            runtime.logger.error("scheduled backup failed", metadata: ["error": "\(error)"])
        }
    }
}
