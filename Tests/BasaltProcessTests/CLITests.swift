// The `basalt` command line (API.md §14), run as a process.

import BasaltTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

private func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

/// `schema export --data DATA` output, failing the test when the command fails.
private func export(_ data: String, in dir: TempDir) async throws -> String {
    let r = try await basalt(["schema", "export", "--data", data], in: dir)
    #expect(r.succeeded, "schema export: \(r)")
    return r.stdout
}

private func jsonObject(_ s: String) -> [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(s.utf8))) as? [String: Any]
}

@Suite("basalt CLI as a process")
struct CLITests {
    static let helpCommands: [[String]] = [
        [], ["serve"], ["schema"], ["schema", "export"], ["schema", "apply"], ["migrate"], ["migrate", "plan"],
        ["migrate", "history"], ["admin"], ["admin", "key"], ["admin", "key", "create"], ["openapi"], ["keys"], ["keys", "rotate"],
        ["audit"], ["audit", "export"], ["backup"], ["backup", "create"], ["backup", "restore"], ["backup", "verify"], ["doctor"],
    ]

    @Test("--help works on every command", arguments: helpCommands)
    func help(command: [String]) async throws {
        let dir = try TempDir("basalt-help")
        defer { dir.remove() }
        let r = try await basalt(command + ["--help"], in: dir)
        #expect(r.succeeded, "basalt \(command.joined(separator: " ")) --help: \(r)")
        #expect(r.stdout.uppercased().contains("USAGE:"), "no usage text: \(r)")
        #expect(!exists(dir.path("basalt-data")), "--help must not open a store")
    }

    @Test("a failing command exits non-zero: unknown subcommand, missing schema file, malformed schema")
    func failures() async throws {
        let dir = try TempDir("basalt-fail")
        defer { dir.remove() }
        let data = dir.path("data")
        #expect(try await basalt(["frobnicate"], in: dir).failedCleanly)
        #expect(try await basalt(["schema", "apply", dir.path("nope.yaml"), "--data", data], in: dir).failedCleanly)
        let bad = try dir.write("bad.yaml", "collections:\n  events:\n    fields:\n      n: {type: nonsense}\n")
        #expect(try await basalt(["schema", "apply", bad, "--data", data], in: dir).failedCleanly)
        let reserved = try dir.write("reserved.yaml", "collections:\n  batch:\n    fields:\n      n: {type: integer}\n")
        #expect(try await basalt(["schema", "apply", reserved, "--data", data], in: dir).failedCleanly)
        #expect(try await basalt(["serve", "--http", "nonsense", "--data", data], in: dir).failedCleanly)
    }

    @Test("schema apply, then export, round-trips; re-applying the export changes nothing")
    func schemaRoundTrip() async throws {
        let dir = try TempDir("basalt-roundtrip")
        defer { dir.remove() }
        let data = dir.path("data")
        let file = try dir.write("schema.yaml", Schemas.events)

        let applied = try await basalt(["schema", "apply", file, "--data", data], in: dir)
        #expect(applied.succeeded, "schema apply: \(applied)")
        let yaml = try await export(data, in: dir)
        for word in ["collections", "events", "fields", "n", "note", "integer", "text", "required"] {
            #expect(yaml.contains(word), "export lacks \(word):\n\(yaml)")
        }

        let exported = try dir.write("exported.yaml", yaml)
        let plan = try await basalt(["migrate", "plan", exported, "--json", "--data", data], in: dir)
        #expect(plan.succeeded, "migrate plan of the export: \(plan)")
        let steps = jsonObject(plan.stdout)?["steps"] as? [Any]
        #expect(steps?.isEmpty == true, "planning the exported schema should find no changes: \(plan.stdout)")
        // The same schema as a JSON file gives the same export.
        let jsonData = dir.path("json-data")
        let jsonFile = try dir.write(
            "schema.json",
            """
            {"collections": {"events": {"fields": {"n": {"type": "integer", "required": true}, "note": {"type": "text"}}}}}
            """
        )
        let fromJSON = try await basalt(["schema", "apply", jsonFile, "--data", jsonData], in: dir)
        #expect(fromJSON.succeeded, "schema apply of a JSON file: \(fromJSON)")
        #expect(try await export(jsonData, in: dir) == yaml, "a JSON schema file should give the same schema as the YAML one")

        let again = try await basalt(["schema", "apply", exported, "--data", data], in: dir)
        #expect(again.succeeded, "re-applying the export: \(again)")
        #expect(try await export(data, in: dir) == yaml, "export changed after re-applying it")
    }

    @Test("a destructive change: plan says so, apply refuses and keeps the data, serve --schema refuses to start; history")
    func destructiveChange() async throws {
        let dir = try TempDir("basalt-destructive")
        defer { dir.remove() }
        let data = dir.path("data")
        let v1 = try dir.write("v1.yaml", Schemas.events)
        let v2 = try dir.write("v2.yaml", Schemas.eventsWithTag)
        let dropNote = try dir.write("drop-note.yaml", Schemas.eventsWithoutNote)

        #expect(try await basalt(["schema", "apply", v1, "--data", data], in: dir).succeeded)
        #expect(try await basalt(["schema", "apply", v2, "--data", data], in: dir).succeeded)
        let key = try await createAdminKey(data: data, in: dir)

        // A record with a note, written through the API.
        var server = try await Server.start(data: data, in: dir)
        let created = try await server.request("POST", "/v1/events", key: key, json: ["n": 1, "note": "keep me"])
        #expect(created.status == 201, "create: \(created.status) \(created.text)")
        let id = try #require(created.jsonObject?["id"] as? String)
        #expect(await server.stop()?.isSuccess == true)

        // migrate plan --json: destructive, exit 0.
        let plan = try await basalt(["migrate", "plan", dropNote, "--json", "--data", data], in: dir)
        #expect(plan.succeeded, "migrate plan --json must exit 0 even for a destructive plan: \(plan)")
        #expect(plan.stdout.contains("\"destructive\":true") || plan.stdout.contains("\"destructive\": true"), "\(plan.stdout)")
        let planJSON = try #require(jsonObject(plan.stdout), "migrate plan --json is not a JSON object: \(plan.stdout)")
        #expect(planJSON["destructive"] as? Bool == true)
        let steps = (planJSON["steps"] as? [[String: Any]]) ?? []
        #expect(
            steps.contains { $0["destructive"] as? Bool == true && ($0["field"] as? String) == "note" },
            "no destructive step for events.note: \(plan.stdout)"
        )
        #expect(steps.allSatisfy { $0["destructive"] is Bool }, "every step has destructive: true/false")
        let textPlan = try await basalt(["migrate", "plan", dropNote, "--data", data], in: dir)
        #expect(textPlan.succeeded && textPlan.stdout.contains("note"), "migrate plan (text): \(textPlan)")

        // schema apply without --allow-destructive: refused, nothing changes.
        let refused = try await basalt(["schema", "apply", dropNote, "--data", data], in: dir)
        #expect(refused.failedCleanly, "a destructive apply without --allow-destructive must exit non-zero: \(refused)")
        #expect((refused.stdout + refused.stderr).contains("note"), "the refusal should name the step: \(refused)")
        #expect(try await export(data, in: dir).contains("note"), "the refused apply changed the schema")

        // serve --schema with the destructive file: exits non-zero instead of starting.
        let port = try freePort()
        let serveRefused = try await basalt(
            ["serve", "--http", "127.0.0.1:\(port)", "--data", data, "--schema", dropNote],
            in: dir,
            timeout: 30
        )
        #expect(serveRefused.failedCleanly, "serve --schema with a destructive plan must exit non-zero: \(serveRefused)")
        #expect((serveRefused.stdout + serveRefused.stderr).contains("note"), "serve should print the plan: \(serveRefused)")
        #expect(!serveRefused.stdout.contains("Server started"), "serve started listening before refusing: \(serveRefused.stdout)")

        // The data is intact, and the key still works.
        server = try await Server.start(data: data, in: dir)
        let got = try await server.request("GET", "/v1/events/\(id)", key: key)
        #expect(got.status == 200 && got.jsonObject?["note"] as? String == "keep me", "record after refusals: \(got.status) \(got.text)")
        let adminSchema = try await server.request("GET", "/v1/admin/schema", key: key)
        #expect(adminSchema.status == 200)
        #expect(await server.stop()?.isSuccess == true)

        // migrate history: the built-in users collection, then two versions, newest first.
        let history = try await basalt(["migrate", "history", "--data", data], in: dir)
        #expect(history.succeeded, "migrate history: \(history)")
        let versions = history.stdout.split(separator: "\n").compactMap { Int($0.split(separator: "\t").first ?? "") }
        #expect(versions.count == 3, "expected 3 history entries: \(history.stdout)")
        #expect(history.stdout.split(separator: "\n").last?.contains("builtin") == true, "the first entry is the built-in users: \(history.stdout)")
        #expect(versions == versions.sorted(by: >), "history should be newest first: \(versions)")

        // With --allow-destructive it applies; the field is gone, and history grows.
        let forced = try await basalt(["schema", "apply", dropNote, "--allow-destructive", "--data", data], in: dir)
        #expect(forced.succeeded, "apply --allow-destructive: \(forced)")
        let afterYAML = try await export(data, in: dir)
        #expect(!afterYAML.contains("note") && afterYAML.contains("events"), "after the destructive apply:\n\(afterYAML)")
        let history2 = try await basalt(["migrate", "history", "--json", "--data", data], in: dir)
        #expect(history2.succeeded, "migrate history --json: \(history2)")
        let items = (try? JSONSerialization.jsonObject(with: Data(history2.stdout.utf8))) as? [Any]
        #expect(items?.count == 4, "expected 4 history entries: \(history2.stdout.prefix(2000))")
        let planAgain = try await basalt(["migrate", "plan", dropNote, "--json", "--data", data], in: dir)
        #expect(jsonObject(planAgain.stdout)?["destructive"] as? Bool == false, "\(planAgain)")
    }

    /// Both a SQLite folder and a PostgreSQL URL, from any mix of flags, environment and config file.
    static let conflicts: [(label: String, args: [String], env: [String: String], config: String?)] = [
        ("both flags", ["--data", "X", "--database", "postgres://u:p@127.0.0.1:1/db"], [:], nil),
        ("env data + flag database", ["--database", "postgres://u:p@127.0.0.1:1/db"], ["BASALT_DATA": "X"], nil),
        ("flag data + env database", ["--data", "X"], ["BASALT_DATABASE_URL": "postgres://u:p@127.0.0.1:1/db"], nil),
        ("config data + env database", [], ["BASALT_DATABASE_URL": "postgres://u:p@127.0.0.1:1/db"], "data: X\n"),
        ("config database + flag data", ["--data", "X"], [:], "database_url: postgres://u:p@127.0.0.1:1/db\n"),
        ("both in config", [], [:], "data: X\ndatabase_url: postgres://u:p@127.0.0.1:1/db\n"),
    ]

    @Test(
        "--data and --database together is an error, from any mix of sources",
        arguments: conflicts.map(\.label)
    )
    func dataAndDatabaseConflict(label: String) async throws {
        let c = Self.conflicts.first { $0.label == label }!
        let dir = try TempDir("basalt-conflict")
        defer { dir.remove() }
        var args = c.args
        if let config = c.config { args += ["--config", try dir.write("basalt.yaml", config)] }
        for command in [["schema", "export"], ["serve", "--http", "127.0.0.1:\(try freePort())"]] {
            let r = try await basalt(command + args, env: c.env, in: dir, timeout: 20)
            #expect(r.failedCleanly, "\(label): `basalt \((command + args).joined(separator: " "))` must exit non-zero: \(r)")
            #expect(!exists(dir.path("X")) && !exists(dir.path("basalt-data")), "\(label): a SQLite folder was created anyway")
        }
    }

    @Test("BASALT_DATA is honoured, a flag overrides it, the default is ./basalt-data")
    func environmentPrecedence() async throws {
        let dir = try TempDir("basalt-env")
        defer { dir.remove() }
        let v1 = try dir.write("v1.yaml", Schemas.events)
        let envData = dir.path("from-env")
        let flagData = dir.path("from-flag")
        let unused = dir.path("unused-env")

        let r1 = try await basalt(["schema", "apply", v1], env: ["BASALT_DATA": envData], in: dir)
        #expect(r1.succeeded, "\(r1)")
        #expect(try await export(envData, in: dir).contains("events"), "BASALT_DATA was not used")
        #expect(!exists(dir.path("basalt-data")), "the default folder was used despite BASALT_DATA")

        let r2 = try await basalt(["schema", "apply", v1, "--data", flagData], env: ["BASALT_DATA": unused], in: dir)
        #expect(r2.succeeded, "\(r2)")
        #expect(try await export(flagData, in: dir).contains("events"), "--data was not used")
        #expect(!exists(unused), "BASALT_DATA was used although --data was given")

        let r3 = try await basalt(["schema", "apply", v1], in: dir)
        #expect(r3.succeeded, "\(r3)")
        #expect(exists(dir.path("basalt-data")), "the default ./basalt-data was not used")
        #expect(try await export(dir.path("basalt-data"), in: dir).contains("events"))
    }

    @Test("--config (YAML and JSON) is honoured; environment and flags override it")
    func configFilePrecedence() async throws {
        let dir = try TempDir("basalt-config")
        defer { dir.remove() }
        let v1 = try dir.write("v1.yaml", Schemas.events)
        let yamlData = dir.path("from-yaml")
        let jsonData = dir.path("from-json")
        let unusedData = dir.path("unused-config")
        let yaml = try dir.write("basalt.yaml", "data: \(yamlData)\n")
        let json = try dir.write("basalt.json", "{\"data\": \"\(jsonData)\"}")
        let unused = try dir.write("unused.yaml", "data: \(unusedData)\n")

        let r1 = try await basalt(["schema", "apply", v1, "--config", yaml], in: dir)
        #expect(r1.succeeded, "\(r1)")
        #expect(try await export(yamlData, in: dir).contains("events"), "the YAML config's data was not used")

        let r2 = try await basalt(["schema", "apply", v1, "--config", json], in: dir)
        #expect(r2.succeeded, "\(r2)")
        #expect(try await export(jsonData, in: dir).contains("events"), "the JSON config's data was not used")

        let envData = dir.path("from-env")
        let r3 = try await basalt(["schema", "apply", v1, "--config", unused], env: ["BASALT_DATA": envData], in: dir)
        #expect(r3.succeeded, "\(r3)")
        #expect(try await export(envData, in: dir).contains("events"), "BASALT_DATA did not override the config file")
        #expect(!exists(unusedData), "the config file won over BASALT_DATA")

        let flagData = dir.path("from-flag")
        let r4 = try await basalt(["schema", "apply", v1, "--config", unused, "--data", flagData], in: dir)
        #expect(r4.succeeded, "\(r4)")
        #expect(exists(flagData) && !exists(unusedData), "--data did not override the config file")

        let missing = try await basalt(["schema", "export", "--config", dir.path("no-such.yaml")], in: dir)
        #expect(missing.failedCleanly, "a missing config file must be an error: \(missing)")
    }

    @Test("serve's listen address: config file < BASALT_HTTP < --http")
    func httpPrecedence() async throws {
        let dir = try TempDir("basalt-http")
        defer { dir.remove() }
        let data = dir.path("data")
        let decoy = try freePort()

        // The config file names a decoy port; BASALT_HTTP wins.
        let fromEnv = try await Server.launch(in: dir, env: { ["BASALT_HTTP": "127.0.0.1:\($0)"] }) { _ in
            ["serve", "--config", (try? dir.write("http.yaml", "data: \(data)\nhttp: 127.0.0.1:\(decoy)\n")) ?? ""]
        }
        defer { fromEnv.forceKill() }
        #expect((try? await HTTPClient.probe(port: decoy)) != true, "the config file's address was used despite BASALT_HTTP")
        #expect(await fromEnv.stop()?.isSuccess == true)

        // BASALT_HTTP names the decoy; --http wins.
        let fromFlag = try await Server.launch(in: dir, env: { _ in ["BASALT_HTTP": "127.0.0.1:\(decoy)"] }) {
            ["serve", "--http", "127.0.0.1:\($0)", "--data", data]
        }
        defer { fromFlag.forceKill() }
        #expect((try? await HTTPClient.probe(port: decoy)) != true, "BASALT_HTTP was used despite --http")
        #expect(await fromFlag.stop()?.isSuccess == true)

        // The config file alone.
        let fromFile = try await Server.launch(in: dir) { port in
            ["serve", "--config", (try? dir.write("http2.yaml", "data: \(data)\nhttp: 127.0.0.1:\(port)\n")) ?? ""]
        }
        defer { fromFile.forceKill() }
        #expect(await fromFile.stop()?.isSuccess == true)
    }

    @Test("keys rotate in another process: the running server publishes the new key, old tokens stay valid; secret.key is 0600")
    func keysRotate() async throws {
        let dir = try TempDir("basalt-keys")
        defer { dir.remove() }
        let data = dir.path("data")
        let server = try await Server.start(data: data, in: dir)
        defer { server.forceKill() }
        let attrs = try FileManager.default.attributesOfItem(atPath: data + "/secret.key")
        #expect((attrs[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let reg = try await server.request("POST", "/v1/auth/register", json: ["email": "ada@example.com", "password": "correct horse battery"])
        #expect(reg.status == 201, "\(reg.status) \(reg.text)")
        let login = try await server.request("POST", "/v1/auth/login", json: ["email": "ada@example.com", "password": "correct horse battery"])
        let token = try #require(login.jsonObject?["access_token"] as? String)
        let before = try #require(try await server.request("GET", "/.well-known/jwks.json").jsonObject?["keys"] as? [[String: Any]])
        #expect(before.count == 1)
        let r = try await basalt(["keys", "rotate", "--data", data], in: dir)
        #expect(r.succeeded, "\(r)")
        let kid = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!kid.isEmpty && !before.contains { $0["kid"] as? String == kid })
        var published = false
        for _ in 0..<100 where !published {
            let keys = try await server.request("GET", "/.well-known/jwks.json").jsonObject?["keys"] as? [[String: Any]] ?? []
            published = keys.count == 2 && keys.contains { $0["kid"] as? String == kid }
            if !published { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(published, "the server did not publish the rotated key within 10 s")
        #expect(try await server.request("GET", "/v1/auth/me", key: token).status == 200)
        let fresh = try await server.request("POST", "/v1/auth/login", json: ["email": "ada@example.com", "password": "correct horse battery"])
        let freshToken = try #require(fresh.jsonObject?["access_token"] as? String)
        let header = try #require(
            Data(
                base64Encoded: String(freshToken.split(separator: ".")[0]).padding(
                    toLength: ((String(freshToken.split(separator: ".")[0]).count + 3) / 4) * 4,
                    withPad: "=",
                    startingAt: 0
                )
            )
        )
        #expect(String(decoding: header, as: UTF8.self).contains(kid))
        #expect(await server.stop()?.isSuccess == true)

        // The audit log as JSON lines, oldest first: both sign-ins are there.
        let export = try await basalt(["audit", "export", "--data", data], in: dir)
        #expect(export.succeeded, "\(export)")
        let entries = export.stdout.split(separator: "\n").compactMap { jsonObject(String($0)) }
        #expect(entries.filter { $0["action"] as? String == "auth.login" }.count == 2, "\(export.stdout)")
        let ids = entries.compactMap { $0["id"] as? String }
        #expect(ids == ids.sorted())
        let later = try await basalt(["audit", "export", "--since", "2999-01-01T00:00:00Z", "--data", data], in: dir)
        #expect(later.succeeded && later.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(later)")
        #expect(try await basalt(["audit", "export", "--since", "yesterday", "--data", data], in: dir).failedCleanly)
    }

    @Test("backup create while the server runs, verify, restore into a fresh folder (key file needed), serve: the same records")
    func backupAndRestore() async throws {
        let dir = try TempDir("basalt-backup")
        defer { dir.remove() }
        let data = dir.path("data")
        let key = try await createAdminKey(data: data, in: dir)
        let server = try await Server.start(data: data, in: dir)
        defer { server.forceKill() }
        #expect(
            try await server.request("POST", "/v1/admin/collections", key: key, json: ["name": "notes", "fields": ["note": ["type": "text"]]]).status
                == 201
        )
        for n in 0..<30 { #expect(try await server.request("POST", "/v1/notes", key: key, json: ["note": "n\(n)"]).status == 201) }
        let file = dir.path("nightly.backup.gz")
        let made = try await basalt(["backup", "create", file, "--data", data], in: dir)
        #expect(made.succeeded, "\(made)")
        #expect(made.stderr.contains("notes: 30 rows"), "progress on standard error: \(made)")
        let mode = (try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600, "a backup holds password hashes: owner-only")
        let before = try await server.listAll("notes", key: key)
        #expect(await server.stop()?.isSuccess == true)

        let verified = try await basalt(["backup", "verify", file], in: dir)
        #expect(verified.succeeded && verified.stdout.contains("\"secret_key_id\""), "\(verified)")
        #expect(try await basalt(["backup", "verify", dir.path("missing.gz")], in: dir).failedCleanly)

        // The master key stays with its data folder: without it the restore is refused.
        let copy = dir.path("restored")
        let refused = try await basalt(["backup", "restore", file, "--data", copy], in: dir)
        #expect(refused.failedCleanly && refused.stderr.contains("BASALT_SECRET_KEY"), "\(refused)")
        let secret = try String(contentsOfFile: data + "/secret.key", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let restored = try await basalt(["backup", "restore", file, "--data", copy], env: ["BASALT_SECRET_KEY": secret], in: dir)
        #expect(restored.succeeded, "\(restored)")
        // A second restore into the same (no longer empty) store needs --force.
        #expect(try await basalt(["backup", "restore", file, "--data", copy], env: ["BASALT_SECRET_KEY": secret], in: dir).failedCleanly)

        let again = try await Server.start(data: copy, in: dir, env: ["BASALT_SECRET_KEY": secret])
        defer { again.forceKill() }
        let after = try await again.listAll("notes", key: key)
        #expect(after.map { $0["id"] as? String } == before.map { $0["id"] as? String })
        #expect(after.map { $0["note"] as? String } == before.map { $0["note"] as? String })
        #expect(await again.stop()?.isSuccess == true)
    }

    @Test("doctor: findings with their fix; --json; exit 1 when one is severe, 0 otherwise")
    func doctor() async throws {
        let dir = try TempDir("basalt-doctor")
        defer { dir.remove() }
        let data = dir.path("data")
        let open = try dir.write(
            "open.yaml",
            "collections:\n  notes:\n    fields:\n      body: {type: text}\n    access:\n      create: [{who: public}]\n"
        )
        #expect(try await basalt(["schema", "apply", open, "--data", data], in: dir).succeeded)
        let severe = try await basalt(["doctor", "--data", data], in: dir)
        #expect(severe.failedCleanly, "a public write grant is severe: \(severe)")
        #expect(severe.stdout.contains("[severe] security.public_write (notes)") && severe.stdout.contains("fix:"), "\(severe)")
        let json = try await basalt(["doctor", "--json", "--data", data], in: dir)
        let items = jsonObject(json.stdout)?["items"] as? [[String: Any]] ?? []
        #expect(items.contains { $0["id"] as? String == "security.public_write" && $0["severity"] as? String == "severe" }, "\(json)")
        let closed = try dir.write("closed.yaml", "collections:\n  notes:\n    fields:\n      body: {type: text}\n")
        #expect(try await basalt(["schema", "apply", closed, "--data", data], in: dir).succeeded)
        let fine = try await basalt(["doctor", "--data", data], in: dir)
        #expect(fine.succeeded && !fine.stdout.contains("[severe]"), "\(fine)")
    }

    @Test("admin key create prints only a bsk_ key, which authenticates as admin (also while a server runs)")
    func adminKey() async throws {
        let dir = try TempDir("basalt-key")
        defer { dir.remove() }
        let data = dir.path("data")
        let r = try await basalt(["admin", "key", "create", "--name", "ci", "--data", data], in: dir)
        #expect(r.succeeded, "\(r)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
        #expect(lines.count == 1, "admin key create should print exactly one line: \(r.stdout)")
        let key = String(lines.first ?? "")
        #expect(key.hasPrefix("bsk_") && key.count > 20, "not a key: \(key)")
        #expect(try await basalt(["admin", "key", "create", "--data", data], in: dir).failedCleanly, "--name is required")

        let server = try await Server.start(data: data, in: dir)
        defer { server.forceKill() }
        let ok = try await server.request("GET", "/v1/admin/schema", key: key)
        #expect(ok.status == 200, "GET /v1/admin/schema with the key: \(ok.status) \(ok.text)")
        #expect(try await server.request("GET", "/v1/admin/schema").status == 401)
        #expect(try await server.request("GET", "/v1/admin/schema", key: "bsk_" + String(key.dropFirst(4).reversed())).status == 401)

        // A key created by another process while the server runs works at once.
        let live = try await createAdminKey(data: data, in: dir, name: "live")
        let liveOK = try await server.request("GET", "/v1/admin/schema", key: live)
        #expect(liveOK.status == 200, "a key created while serving: \(liveOK.status) \(liveOK.text)")
        #expect(await server.stop()?.isSuccess == true)
    }

    @Test(
        "a running server picks up a schema change made by `basalt schema apply` in another process (≤ 10 s)",
        .timeLimit(.minutes(1))
    )
    func liveServerSeesSchemaChangesFromCLI() async throws {
        let dir = try TempDir("basalt-live-schema")
        defer { dir.remove() }
        let data = dir.path("data")
        let v1 = try dir.write("v1.yaml", Schemas.events)
        let v2 = try dir.write(
            "v2.yaml",
            """
            collections:
              events:
                fields:
                  n: {type: integer, required: true}
              other:
                fields:
                  a: {type: text}

            """
        )
        #expect(try await basalt(["schema", "apply", v1, "--data", data], in: dir).succeeded)
        let key = try await createAdminKey(data: data, in: dir)
        let server = try await Server.start(data: data, in: dir)
        defer { server.forceKill() }
        #expect(try await server.request("POST", "/v1/events", key: key, json: ["n": 1, "note": "x"]).status == 201)

        // While it serves: add a collection and drop a field that holds data.
        let applied = try await basalt(["schema", "apply", v2, "--allow-destructive", "--data", data], in: dir)
        #expect(applied.succeeded, "\(applied)")

        var serverErrors: [String] = []
        var newCollection = 0
        var write = 0
        var list = 0
        var adminSchemaCurrent = false
        let deadline = Date().addingTimeInterval(10)
        repeat {
            let a = try await server.request("POST", "/v1/other", key: key, json: ["a": "x"])
            let e = try await server.request("POST", "/v1/events", key: key, json: ["n": 2])
            let l = try await server.request("GET", "/v1/events?limit=5", key: key)
            let s = try await server.request("GET", "/v1/admin/schema", key: key)
            (newCollection, write, list) = (a.status, e.status, l.status)
            adminSchemaCurrent = s.status == 200 && s.text.contains("other") && !s.text.contains("note")
            for r in [e, l] where r.status >= 500 { serverErrors.append("\(r.status) \(r.text.prefix(200))") }
            if newCollection == 201 && write == 201 && list == 200 && adminSchemaCurrent { break }
            try await Task.sleep(for: .milliseconds(250))
        } while Date() < deadline
        #expect(newCollection == 201, "POST to the collection the CLI added: \(newCollection)")
        #expect(write == 201 && list == 200, "write/list of the collection whose field the CLI dropped: \(write)/\(list)")
        #expect(adminSchemaCurrent, "GET /v1/admin/schema still shows the old schema")
        let serverErrorCount = serverErrors.count
        #expect(serverErrorCount == 0, "answers were 5xx, e.g. \(serverErrors.first ?? "")")
        _ = await server.stop()
    }

    @Test("basalt openapi prints an OpenAPI 3.1 JSON document covering the collections")
    func openAPI() async throws {
        let dir = try TempDir("basalt-openapi")
        defer { dir.remove() }
        let data = dir.path("data")
        let v1 = try dir.write("v1.yaml", Schemas.events)
        #expect(try await basalt(["schema", "apply", v1, "--data", data], in: dir).succeeded)
        let r = try await basalt(["openapi", "--data", data], in: dir)
        #expect(r.succeeded, "\(r)")
        let doc = try #require(jsonObject(r.stdout), "openapi output is not a JSON object: \(r.stdout.prefix(500))")
        let version = doc["openapi"] as? String ?? ""
        #expect(version.hasPrefix("3.1."), "openapi version \(version)")
        let paths = doc["paths"] as? [String: Any] ?? [:]
        #expect(paths.keys.contains { $0.hasPrefix("/v1/events") }, "no /v1/events path: \(paths.keys.sorted())")
        #expect(paths.keys.contains { $0.hasPrefix("/v1/admin") }, "the CLI document is admin-scope: \(paths.keys.sorted())")
    }
}

extension HTTPClient {
    /// Whether anything accepts connections on the port.
    static func probe(port: Int) async throws -> Bool {
        try await onThread {
            do {
                let c = try Connection(port: port, timeout: 1)
                c.close()
                return true
            } catch { return false }
        }
    }
}
