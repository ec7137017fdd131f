import Basalt
import BasaltAuth
import BasaltBackup
import BasaltCore
import BasaltPostgres
import BasaltServices
import BasaltStorage
import BasaltTesting
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// Issue "Operations": `basalt backup create|restore`. The drill: write under concurrent load,
/// back up while writing, restore into a fresh store of the other backend, compare every record
/// and user, sign in.
@Suite("Backups")
struct BackupTests {
    /// Each backend into the other (into itself when only SQLite runs here).
    static var directions: [(TestBackend, TestBackend)] {
        TestBackend.all.count == 2 ? [(.sqlite, .postgres), (.postgres, .sqlite)] : [(.sqlite, .sqlite)]
    }

    static let logger: Logger = {
        var l = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        l.logLevel = .critical
        return l
    }()

    static func tempFile(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("basalt-backup-\(UUID().uuidString)-\(name)").path
    }

    /// Opens a runtime and a live test server on `config` (an existing store), runs `body`, and
    /// removes the store afterwards.
    static func withTarget<T: Sendable>(
        _ config: BasaltConfiguration,
        adminKey: String,
        _ body: @Sendable (APIClient) async throws -> T
    ) async throws -> T {
        defer { if config.databaseURL == nil { try? FileManager.default.removeItem(atPath: config.dataDirectory) } }
        return try await BasaltRuntime.withRuntime(config, logger: logger) { rt in
            let result = try await rt.makeApplication().test(.live) { client in
                try await body(APIClient(client: client, adminKey: adminKey, runtime: rt))
            }
            if let pg = rt.store as? PostgresStore { try await pg.dropSchema() }
            return result
        }
    }

    /// Every record of `collection` by id, through the API with the admin key.
    static func all(_ api: APIClient, _ collection: String) async throws -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        var cursor: String?
        repeat {
            var uri = "/v1/\(collection)?limit=200"
            if let c = cursor { uri += "&cursor=" + (c.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? c) }
            let r = try await api.get(uri)
            try #require(r.status == .ok, "\(r.text)")
            for item in r.json["items"]?.arrayValue ?? [] { out[item["id"]?.stringValue ?? ""] = item }
            cursor = r.json["next_cursor"]?.stringValue
        } while cursor != nil
        return out
    }

    static func users(_ api: APIClient) async throws -> JSONValue {
        let r = try await api.get("/v1/admin/users?limit=100&sort=email")
        try #require(r.status == .ok, "\(r.text)")
        return try #require(r.json["items"])
    }

    static func count(_ store: any Store, _ table: String) async throws -> Int64 {
        try await store.fetchOne(SQLQuery(sql: "SELECT count(*) FROM \(store.dialect.quote(table))"), types: [.int])?.first?.int ?? -1
    }

    @Test(
        "the restore drill: back up while writing, restore into the other backend, every record and user the same, sign-in works",
        arguments: directions
    )
    func restoreDrill(from source: TestBackend, to targetBackend: TestBackend) async throws {
        let key = SecretBox.generateEncoded()
        let file = Self.tempFile("drill.gz")
        defer { try? FileManager.default.removeItem(atPath: file) }
        struct Seen: Sendable {
            var adminKey: String
            var manifest: Backup.Manifest
            var posts: [String: JSONValue]
            var authors: [String: JSONValue]
            var users: JSONValue
        }
        let seen = try await source.withApp(schema: Fixtures.blog, configure: { $0.auth.secretKey = key }) { api in
            let alice = try await api.signUp("alice@example.com")
            _ = try await api.signUp("bob@example.com", password: "another good passphrase")
            #expect(try await api.patch("/v1/admin/users/\(alice.id)", #"{"verified":true}"#).status == .ok)
            var authorIDs: [String] = []
            for n in 0..<5 {
                let a = try await api.create("authors", #"{"name":"author \#(n)","email":"a\#(n)@example.com"}"#)
                authorIDs.append(try #require(a["id"]?.stringValue))
            }
            let records = api.runtime.records
            let ids = authorIDs
            let writing = Running()
            // Two writers that never pause, and a backup taken in the middle of their writes.
            let manifest = try await withThrowingTaskGroup(of: Backup.Manifest?.self) { group in
                for w in 0..<2 {
                    group.addTask {
                        var n = 0
                        while writing.isOn {
                            n += 1
                            let body = try JSONValue.parse(
                                #"""
                                {"title":"w\#(w)-\#(n)","status":"published","views":\#(n),"score":\#(Double(n) / 8),
                                 "featured":\#(n % 2 == 0),"published_at":"2026-12-0\#(1 + n % 9)T10:00:00.125Z",
                                 "meta":{"n":\#(n),"tags":["a","ü"]},"author":"\#(ids[n % ids.count])"}
                                """#
                            )
                            _ = try await records.execute(.create(collection: "posts", body: body), principal: .system)
                            writing.tick()
                        }
                        return nil
                    }
                }
                group.addTask {
                    defer { writing.stop() }
                    // In the middle of the writes: once some have committed (however slow the machine).
                    for _ in 0..<600 where writing.ticks < 20 { try await Task.sleep(for: .milliseconds(50)) }
                    return try await api.runtime.createBackup(to: file)
                }
                var manifest: Backup.Manifest?
                for try await m in group { manifest = manifest ?? m }
                return try #require(manifest)
            }
            return Seen(
                adminKey: api.adminKey,
                manifest: manifest,
                posts: try await Self.all(api, "posts"),
                authors: try await Self.all(api, "authors"),
                users: try await Self.users(api)
            )
        }
        let backedUp = try #require(seen.manifest.tables.first { $0.name == "posts" }?.rows)
        #expect(backedUp > 0, "the backup was taken while posts were being written")
        #expect(seen.manifest.store == (source == .sqlite ? "sqlite" : "postgresql"))

        var target = try targetBackend.configuration()
        target.auth.secretKey = key
        _ = try await BasaltRuntime.restoreBackup(file, configuration: target, force: false, logger: Self.logger)
        try await Self.withTarget(target, adminKey: seen.adminKey) { api in
            // The backup's admin key works: API keys came along.
            let posts = try await Self.all(api, "posts")
            #expect(Int64(posts.count) == backedUp)
            // One snapshot: each restored post is exactly the source's, the rest were written after it.
            for (id, post) in posts { #expect(seen.posts[id] == post, "post \(id)") }
            #expect(try await Self.all(api, "authors") == seen.authors)
            #expect(try await Self.users(api) == seen.users)
            let alice = try await api.signIn("alice@example.com")
            let me = try await api.get("/v1/auth/me", auth: alice.auth)
            #expect(me.json["verified"] == .bool(true))
            _ = try await api.signIn("bob@example.com", password: "another good passphrase")
            // Restored rows were no record events; writes after the restore are.
            let store = api.runtime.store
            #expect(try await Self.count(store, "_basalt_events") == 0)
            _ = try await api.create("authors", #"{"name":"after restore"}"#)
            #expect(try await Self.count(store, "_basalt_events") == 1)
        }
    }

    @Test(
        "restore refuses a store holding data (unless --force), a damaged file and the wrong master key; each changes nothing",
        arguments: TestBackend.all
    )
    func refusals(_ backend: TestBackend) async throws {
        let key = SecretBox.generateEncoded()
        let file = Self.tempFile("refusals.gz")
        defer {
            for f in [file, file + ".cut", file + ".flipped", file + ".alien"] { try? FileManager.default.removeItem(atPath: f) }
        }
        // A file whose checksums add up but that names a table no backup holds is refused.
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        try #"""
        {"format":"basalt-backup","format_version":1}
        {"table":"sqlite_master","kind":"internal","columns":[["name","text"]]}
        {"manifest":{"basalt_version":"0.9.0","store":"sqlite","created_at":"2026-12-04T00:00:00.000Z","schema_version":0,"secret_key_id":"00","tables":[{"name":"sqlite_master","kind":"internal","rows":0,"sha256":"\#(empty)"}]}}
        """#.write(toFile: file + ".alien", atomically: true, encoding: .utf8)
        #expect(throws: BackupFileError.self) { try Backup.verify(file + ".alien") }
        try await backend.withApp(schema: Fixtures.blog, configure: { $0.auth.secretKey = key }) { api in
            _ = try await api.create("authors", #"{"name":"kept"}"#)
            try await api.runtime.createBackup(to: file)
            // Cut short (an interrupted copy) and with one byte changed inside.
            let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
            try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: file + ".cut"))
            var flipped = bytes
            flipped[bytes.count / 2] ^= 0x40
            try flipped.write(to: URL(fileURLWithPath: file + ".flipped"))
        }
        var target = try backend.configuration()
        target.auth.secretKey = key
        _ = try await BasaltRuntime.restoreBackup(file, configuration: target, force: false, logger: Self.logger)
        try await Self.withTarget(target, adminKey: "") { api in
            let store = api.runtime.store
            _ = try await store.write([SQLStatement(SQLQuery(sql: #"UPDATE "authors" SET "name" = 'changed'"#))])
            var config = api.runtime.configuration
            // Holds data: refused without --force, and nothing changed.
            await #expect(throws: Backup.Refusal.self) {
                try await BasaltRuntime.restoreBackup(file, configuration: config, force: false, logger: Self.logger)
            }
            for damaged in [file + ".cut", file + ".flipped"] {
                await #expect(throws: (any Error).self) {
                    try await BasaltRuntime.restoreBackup(damaged, configuration: config, force: true, logger: Self.logger)
                }
            }
            config.auth.secretKey = SecretBox.generateEncoded()
            await #expect(throws: Backup.Refusal.self) {
                try await BasaltRuntime.restoreBackup(file, configuration: config, force: true, logger: Self.logger)
            }
            let name = try await store.fetchOne(SQLQuery(sql: #"SELECT "name" FROM "authors""#), types: [.text])
            #expect(name?.first?.text == "changed")
            // --force replaces everything.
            config.auth.secretKey = key
            _ = try await BasaltRuntime.restoreBackup(file, configuration: config, force: true, logger: Self.logger)
            let restored = try await store.fetchOne(SQLQuery(sql: #"SELECT "name" FROM "authors""#), types: [.text])
            #expect(restored?.first?.text == "kept")
        }
    }

    @Test("a master key kept in a PostgreSQL database travels with its backup into a SQLite store's key file, and leaves the database")
    func keyFromTheDatabase() async throws {
        guard TestBackend.all.contains(.postgres) else { return }
        let file = Self.tempFile("key.gz")
        defer { try? FileManager.default.removeItem(atPath: file) }
        // No BASALT_SECRET_KEY: PostgreSQL keeps a generated one in _basalt_settings.
        let adminKey = try await TestBackend.postgres.withApp(schema: Fixtures.blog) { api in
            _ = try await api.signUp("carol@example.com")
            try await api.runtime.createBackup(to: file)
            return api.adminKey
        }
        let target = try TestBackend.sqlite.configuration()
        _ = try await BasaltRuntime.restoreBackup(file, configuration: target, force: false, logger: Self.logger)
        let keyFile = target.dataDirectory + "/secret.key"
        let mode = (try FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
        try await Self.withTarget(target, adminKey: adminKey) { api in
            let stored = try await api.runtime.store.fetch(
                SQLQuery(sql: #"SELECT "value" FROM "_basalt_settings" WHERE "key" = 'secret_key'"#),
                types: [.text]
            )
            #expect(stored.isEmpty, "the key is in the key file only")
            // The signing keys open with it: a sign-in gets a token the API accepts.
            let carol = try await api.signIn("carol@example.com")
            #expect(try await api.get("/v1/auth/me", auth: carol.auth).status == .ok)
        }
    }

    @Test("serve takes scheduled backups into BASALT_BACKUP_DIR and keeps BASALT_BACKUP_KEEP of them", arguments: TestBackend.all)
    func scheduled(_ backend: TestBackend) async throws {
        let dir = Self.tempFile("scheduled")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await backend.withApp(
            schema: Fixtures.blog,
            configure: {
                $0.backupDirectory = dir
                $0.backupInterval = .milliseconds(300)
                $0.backupKeep = 2
            }
        ) { api in
            _ = try await api.create("authors", #"{"name":"scheduled"}"#)
            func listing() -> [String] {
                ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".backup.gz") }.sorted()
            }
            // Two backups, the newer one holding the author.
            var first = ""
            try await eventually(within: .seconds(60)) {
                let files = listing()
                guard files.count == 2, let m = try? Backup.verify(dir + "/" + files[1]).manifest,
                    m.tables.first(where: { $0.name == "authors" })?.rows == 1
                else { return false }
                first = files[0]
                return true
            }
            // Later ones replace the oldest, and two are kept.
            var later: [String] = []
            try await eventually(within: .seconds(60)) {
                later = listing()
                return later.count == 2 && !later.contains(first)
            }
            #expect(later.allSatisfy { $0 > first })
            let m = try Backup.verify(dir + "/" + (later.last ?? "")).manifest
            #expect(m.tables.first { $0.name == "authors" }?.rows == 1)
        }
    }
}
