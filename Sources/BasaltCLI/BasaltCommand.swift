import ArgumentParser
import Basalt
import BasaltBackup
import BasaltCore
import BasaltHTTP
import BasaltServices
import BasaltStorage
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import UnixSignals

struct BasaltCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "basalt",
        abstract: "A self-hosted backend: your collections as a standards-exact REST API.",
        subcommands: [
            Serve.self, SchemaCommand.self, Migrate.self, Admin.self, Keys.self, Audit.self, BackupCommand.self, Doctor.self, OpenAPICommand.self,
        ]
    )
}

func makeLogger(_ label: String = "basalt", level: Logger.Level = .info, metadataProvider: Logger.MetadataProvider? = nil) -> Logger {
    LoggingSystem.bootstrap({ label, provider in JSONLogHandler(label: label, metadataProvider: provider) }, metadataProvider: metadataProvider)
    var l = Logger(label: label)
    l.logLevel = level
    return l
}

/// A quiet logger for commands whose standard output is their result.
func commandLogger() -> Logger {
    var l = Logger(label: "basalt", factory: { _ in SwiftLogNoOpLogHandler() })
    l.logLevel = .critical
    return l
}

func readSchemaFile(_ path: String) throws -> Schema {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("cannot read \(path)") }
    return try Schema.decode(try SchemaYAML.parse(text))
}

func describe(_ error: any Error) -> String {
    if let e = error as? BasaltError {
        var s = e.message
        for fe in e.fieldErrors { s += "\n  \(fe.field): \(fe.message)" }
        return s
    }
    // A storage error in the words an API caller gets, with the start of the driver's (a failed
    // multi-row statement's text runs to megabytes).
    if let e = error as? StoreError {
        let detail: String
        switch e {
        case .uniqueViolation(_, _, _, let u), .foreignKeyViolation(_, let u), .unavailable(let u), .other(let u): detail = u
        case .expectationFailed: detail = ""
        }
        return e.basaltError.message + (detail.isEmpty ? "" : " (\(detail.prefix(240))…)")
    }
    return "\(error)"
}

func printPlan(_ plan: MigrationPlan) {
    if plan.steps.isEmpty { print("No changes.") }
    for s in plan.steps { print("\(s.destructive ? "! " : "  ")\(s.action): \(s.detail)\(s.destructive ? "  [destructive]" : "")") }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the API (default 127.0.0.1:8080, SQLite in ./basalt-data).",
        discussion: """
            Identity settings (environment or config file; secrets are never taken as flags):
              BASALT_SECRET_KEY        master key sealing signing keys and TOTP secrets (64 hex digits or base64 of 32 bytes);
                                       default: <data>/secret.key, created with mode 0600
              BASALT_SMTP_URL          smtp://user:pass@host:port, smtp+starttls://… or smtps://…; unset: mails are logged (dev mode)
              BASALT_MAIL_FROM         sender address (default no-reply@localhost)
              BASALT_APP_URL           base of links in mails (default the public URL)
              BASALT_JWT_AUDIENCE      aud of access tokens (default basalt)
              BASALT_ACCESS_TOKEN_TTL  access-token lifetime in seconds (default 900)
              BASALT_SESSION_TTL       refresh-session lifetime in seconds (default 2592000)
              BASALT_RATE_LIMIT_AUTH   requests per minute per address on /v1/auth/* (default 60)
              BASALT_REGISTRATION      open (anyone may sign up, the default) or closed (admins create users)
            """
    )
    @OptionGroup var store: StoreOptions
    @Option(help: "Listen address HOST:PORT. Env: BASALT_HTTP") var http: String?
    @Option(help: "Apply this schema file at start-up; a destructive plan prints and exits non-zero instead.") var schema: String?
    @Option(help: "Token issuer and base of absolute links. Env: BASALT_PUBLIC_URL") var publicURL: String?
    @Option(help: "Comma-separated CORS origins (* for any). Env: BASALT_CORS_ORIGINS") var corsOrigins: String?
    @Option(help: "Comma-separated proxy addresses whose X-Forwarded-For is trusted. Env: BASALT_TRUSTED_PROXIES") var trustedProxies: String?
    @Option(help: "Anonymous requests per minute per address, 0 for no limit (default 600). Env: BASALT_RATE_LIMIT_ANONYMOUS") var rateLimitAnonymous:
        String?
    @Option(help: "Requests per minute per subject, 0 for no limit (default 3000). Env: BASALT_RATE_LIMIT_SUBJECT") var rateLimitSubject: String?
    @Option(help: "Requests per minute per address on /v1/auth/*, 0 for no limit (default 60). Env: BASALT_RATE_LIMIT_AUTH") var rateLimitAuth:
        String?
    @Flag(help: "Let webhooks target loopback, private and link-local addresses (refused otherwise). Env: BASALT_ALLOW_PRIVATE_WEBHOOKS")
    var allowPrivateWebhooks = false

    func run() async throws {
        var flags: [String: String] = [:]
        if allowPrivateWebhooks { flags["allow_private_webhooks"] = "true" }
        flags["http"] = http
        flags["public_url"] = publicURL
        flags["cors_origins"] = corsOrigins
        flags["trusted_proxies"] = trustedProxies
        flags["rate_limit_anonymous"] = rateLimitAnonymous
        flags["rate_limit_subject"] = rateLimitSubject
        flags["rate_limit_auth"] = rateLimitAuth
        let config = try await store.configuration(flags: flags)
        let wanted = try schema.map(readSchemaFile)
        let tracing = TracingSetup.wanted(ProcessInfo.processInfo.environment)
        let logger = makeLogger(metadataProvider: tracing ? TracingSetup.logMetadata : nil)
        do {
            let exporter = tracing ? try TracingSetup.start() : nil
            try await BasaltRuntime.serve(config, schema: wanted, services: exporter.map { [$0] } ?? [], logger: logger)
        } catch let e as DestructiveSchemaChange {
            printPlan(e.plan)
            throw ValidationError(e.description)
        } catch let e as ValidationError {
            throw e
        } catch {
            logger.critical("serve failed", metadata: ["error": "\(describe(error))"])
            throw ExitCode.failure
        }
    }
}

struct SchemaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Export or apply the schema (YAML).",
        subcommands: [Export.self, Apply.self]
    )

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the live schema as YAML.")
        @OptionGroup var store: StoreOptions
        func run() async throws {
            let config = try await store.configuration()
            let yaml = try await BasaltRuntime.withRuntime(config, logger: commandLogger()) { rt in
                SchemaYAML.emit(rt.schemas.current.schema.encode())
            }
            print(yaml, terminator: "")
        }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply a schema file: plan, print, apply in one transaction.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The schema file (YAML or JSON).") var file: String
        @Flag(help: "Apply steps that drop data.") var allowDestructive = false
        func run() async throws {
            let config = try await store.configuration()
            let wanted = try readSchemaFile(file)
            do {
                let r = try await BasaltRuntime.withRuntime(config, logger: commandLogger()) { rt in
                    try await rt.schemas.apply(wanted, allowDestructive: allowDestructive, source: "cli")
                }
                printPlan(r.plan)
                if r.applied { print("Applied; schema version \(r.version).") }
            } catch let e as BasaltError where e.code == .conflict {
                FileHandle.standardError.write(Data("Refused: the plan is destructive. Steps:\n".utf8))
                for fe in e.fieldErrors { FileHandle.standardError.write(Data("  ! \(fe.message)\n".utf8)) }
                FileHandle.standardError.write(Data("Re-run with --allow-destructive to apply it.\n".utf8))
                throw ExitCode.failure
            } catch {
                FileHandle.standardError.write(Data("error: \(describe(error))\n".utf8))
                throw ExitCode.failure
            }
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Inspect schema migrations.", subcommands: [Plan.self, History.self])

    struct Plan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show what `schema apply FILE` would do; exit 0.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The schema file.") var file: String
        @Flag(help: "Print the plan as JSON.") var json = false
        func run() async throws {
            let config = try await store.configuration()
            let wanted = try readSchemaFile(file)
            let r = try await BasaltRuntime.withRuntime(config, logger: commandLogger()) { rt in
                try await rt.schemas.apply(wanted, allowDestructive: true, dryRun: true, source: "cli")
            }
            if json { print(r.plan.json.serialized()) } else { printPlan(r.plan) }
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List applied migrations, newest first.")
        @OptionGroup var store: StoreOptions
        @Flag(help: "Print as JSON.") var json = false
        func run() async throws {
            let config = try await store.configuration()
            let items = try await BasaltRuntime.withRuntime(config, logger: commandLogger()) { rt in try await rt.schemas.history() }
            if json {
                print(JSONValue.array(items.map(\.json)).serialized())
                return
            }
            for h in items {
                let steps = h.plan["steps"]?.arrayValue?.count ?? 0
                print("\(h.version)\t\(h.appliedAt.rfc3339)\t\(h.source)\t\(steps) steps")
            }
        }
    }
}

struct Admin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Administration.", subcommands: [Key.self])
    struct Key: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "API keys.", subcommands: [Create.self])
        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Create an admin API key; prints only the key.")
            @OptionGroup var store: StoreOptions
            @Option(help: "A name for the key.") var name: String
            func run() async throws {
                let config = try await store.configuration()
                let key = try await BasaltRuntime.withRuntime(config, logger: commandLogger()) { rt in
                    try await rt.apiKeys.create(name: name, admin: true, roles: [], expiresAt: nil).key
                }
                print(key)
            }
        }
    }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Access-token signing keys.", subcommands: [Rotate.self])
    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a new Ed25519 signing key; new tokens use it, old keys stay in the JWKS until their tokens expire.",
            discussion:
                "Running servers pick the new key up within a minute (or at once when they see a token signed with it). Prints the new key id."
        )
        @OptionGroup var store: StoreOptions
        func run() async throws {
            let config = try await store.configuration()
            let kid = try await BasaltRuntime.withRuntime(config, logger: commandLogger()) { rt in try await rt.rotateSigningKeys() }
            print(kid)
        }
    }
}

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The audit log.", subcommands: [Export.self])
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the audit log as JSON lines, oldest first.",
            discussion: "One object per line: id, at, actor, action, collection, record_id, request_id, detail."
        )
        @OptionGroup var store: StoreOptions
        @Option(help: "Only entries at or after this RFC 3339 time (e.g. 2026-12-01T00:00:00Z).") var since: String?
        func run() async throws {
            let from = try since.map { s throws(ValidationError) -> Timestamp in
                guard let t = Timestamp(rfc3339: s) else { throw ValidationError("--since is an RFC 3339 time, e.g. 2026-12-01T00:00:00Z") }
                return t
            }
            let config = try await store.configuration()
            try await BasaltRuntime.withRuntime(config, logger: commandLogger()) { rt in
                try await AuditLog(store: rt.store).export(since: from) { page in
                    print(page.map { $0.serialized() }.joined(separator: "\n"))
                }
            }
        }
    }
}

/// Runs a command's work; a failure is one `error:` line on standard error and exit status 1.
func reportingFailure(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch {
        FileHandle.standardError.write(Data("error: \(describe(error))\n".utf8))
        throw ExitCode.failure
    }
}

/// Progress lines on standard error, so standard output stays the result.
@Sendable func progressLine(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up and restore everything: schema, records, users, keys, settings, audit log.",
        subcommands: [Create.self, Restore.self, Verify.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a consistent online backup to FILE (gzip-compressed JSON lines with a manifest) while the server runs.",
            discussion: """
                The file is created owner-only: it holds password hashes and secrets sealed with the master key, which it \
                does not contain (its manifest names the key by fingerprint). It restores into SQLite or PostgreSQL.
                """
        )
        @OptionGroup var store: StoreOptions
        @Argument(help: "The backup file to write.") var file: String
        func run() async throws {
            let config = try await store.configuration()
            try await reportingFailure {
                let m = try await BasaltRuntime.withRuntime(config, logger: commandLogger()) { rt in
                    try await rt.createBackup(to: file, progress: progressLine)
                }
                let rows = m.tables.reduce(0) { $0 + $1.rows }
                print("Backed up \(m.tables.count) tables, \(rows) rows, schema version \(m.schemaVersion) to \(file)")
            }
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Restore FILE into this store, after checking the whole file against its manifest.",
            discussion: """
                Refuses a store holding any collection or user unless --force, which replaces everything in it. Stop the \
                servers of the target first. The target's master key must be the source's (BASALT_SECRET_KEY, or for \
                SQLite the data folder's secret.key); when the source kept its key in its database, it comes with the backup.
                """
        )
        @OptionGroup var store: StoreOptions
        @Argument(help: "The backup file.") var file: String
        @Flag(help: "Replace a store that holds collections or users.") var force = false
        func run() async throws {
            let config = try await store.configuration()
            try await reportingFailure {
                let m = try await BasaltRuntime.restoreBackup(
                    file,
                    configuration: config,
                    force: force,
                    logger: commandLogger(),
                    progress: progressLine
                )
                print("Restored \(m.tables.reduce(0) { $0 + $1.rows }) rows from a \(m.store) backup of \(m.createdAt.rfc3339)")
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check FILE against its manifest and print the manifest as JSON; changes nothing.")
        @Argument(help: "The backup file.") var file: String
        func run() async throws {
            try await reportingFailure { print(try Backup.verify(file).manifest.json.serialized()) }
        }
    }
}

struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Review the deployment: security, performance and reliability findings, each with its fix.",
        discussion: """
            Reads the schema, the settings (flags, BASALT_* variables, config file), the API keys, the webhooks, the \
            database's indexes and statistics. Advice on the queries clients actually run needs a running server's \
            observations: GET /v1/admin/advisors. Exits 1 when any finding is severe.
            """
    )
    @OptionGroup var store: StoreOptions
    @Flag(help: "Print the findings as JSON ({\"items\": […]}).") var json = false
    @Option(help: "Token issuer and base of links, as serve would use it. Env: BASALT_PUBLIC_URL") var publicURL: String?
    @Option(help: "CORS origins, as serve would use them. Env: BASALT_CORS_ORIGINS") var corsOrigins: String?

    func run() async throws {
        var flags: [String: String] = [:]
        flags["public_url"] = publicURL
        flags["cors_origins"] = corsOrigins
        let config = try await store.configuration(flags: flags)
        let findings = try await BasaltRuntime.withRuntime(config, logger: commandLogger()) { rt in try await rt.advise() }
        if json {
            print(JSONValue.object(JSONObject([("items", .array(findings.map(\.json)))])).serialized())
        } else if findings.isEmpty {
            print("No findings.")
        } else {
            for f in findings {
                print("[\(f.severity.rawValue)] \(f.id)\(f.subject.map { " (\($0))" } ?? ""): \(f.title)")
                print("  seen:     \(f.seen)")
                print("  why:      \(f.why)")
                print("  tradeoff: \(f.tradeoff)")
                print("  fix:      " + f.fix.replacingOccurrences(of: "\n", with: "\n            "))
                print()
            }
            let severe = findings.filter { $0.severity == .severe }.count
            print("\(findings.count) findings, \(severe) severe.")
        }
        if findings.contains(where: { $0.severity == .severe }) { throw ExitCode.failure }
    }
}

struct OpenAPICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "openapi", abstract: "Print the full (admin-scope) OpenAPI document.")
    @OptionGroup var store: StoreOptions
    @Option(help: "Server URL written into the document. Env: BASALT_PUBLIC_URL") var publicURL: String?
    func run() async throws {
        var flags: [String: String] = [:]
        flags["public_url"] = publicURL
        let config = try await store.configuration(flags: flags)
        let bytes = try await BasaltRuntime.withRuntime(config, logger: commandLogger()) { rt in
            OpenAPIGenerator.json(
                schema: rt.schemas.current,
                principal: Principal(kind: .admin, id: "cli"),
                serverURL: config.http.publicURL,
                surface: rt.makeSurface()
            )
        }
        FileHandle.standardOutput.write(Data(bytes))
        print()
    }
}
