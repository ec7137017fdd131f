import BasaltAuth
import BasaltCore
public import BasaltHTTP
import BasaltPostgres
import BasaltSMTP
import BasaltSQLite
public import BasaltServices
public import BasaltStorage
public import BasaltTelemetry
import Foundation
public import Hummingbird
import HummingbirdWebSocket
public import Logging
public import NIOCore
import ServiceLifecycle
import Tracing

/// An opened deployment: the store and the services over it. Obtain one with `withRuntime`,
/// which also keeps a PostgreSQL pool running for as long as the body runs and closes the store
/// afterwards.
public final class BasaltRuntime: Sendable {
    public let configuration: BasaltConfiguration
    public let store: any Store
    public let schemas: SchemaService
    public let records: RecordService
    public let apiKeys: ApiKeyService
    public let idempotency: IdempotencyService
    public let auth: AuthService
    public let oauth: OAuthServer
    public let socialSignIn: SocialSignIn
    public let events: EventHub
    public let realtime: RealtimeService
    public let jobs: JobQueue
    public let webhooks: WebhookService
    public let afterHooks: AfterHooks
    let webhookSender: HTTPWebhookSender
    public let logger: Logger
    /// What `GET /metrics` exposes; nil when metrics are off (`BASALT_METRICS=off`).
    public let metrics: Metrics?
    /// Requests seen at the edge, for the advisors.
    public let traffic = TrafficObservations()

    init(configuration: BasaltConfiguration, store: any Store, metrics: Metrics?, logger: Logger) async throws {
        self.configuration = configuration
        self.store = store
        self.metrics = metrics
        self.logger = logger
        schemas = try await SchemaService(store: store, logger: logger)
        // Other processes' commits (PostgreSQL) wake the hub through LISTEN/NOTIFY; polling, while
        // anyone subscribes, is the fallback.
        events = EventHub(
            store: store,
            logger: logger,
            pollInterval: configuration.eventPollInterval ?? (configuration.databaseURL == nil ? .seconds(1) : .milliseconds(500))
        )
        try await events.start()
        let secret = try await SettingsRepository(store: store).value("cursor_secret") { Digest.randomToken(bytes: 32) }
        records = RecordService(
            store: store,
            schemas: schemas,
            cursors: CursorCodec(secret: Array(secret.utf8)),
            hooks: configuration.hooks,
            metrics: metrics,
            logger: logger
        )
        apiKeys = ApiKeyService(store: store)
        idempotency = IdempotencyService(store: store)
        let a = configuration.auth
        let box = try await Self.secretBox(configuration, store: store, logger: logger)
        let keys = try await SigningKeyStore(store: store, box: box).loadOrCreate()
        let publicURL = configuration.http.publicURL
        let tokens = await AccessTokens(
            settings: .init(issuer: a.issuer ?? publicURL, audience: a.audience, lifetime: a.accessTokenLifetime, leeway: a.accessTokenLeeway),
            keys: keys
        )
        let transport: any MailTransport
        if let url = a.smtpURL {
            transport = SMTPMailTransport(configuration: try SMTPConfiguration(url: url), from: a.mailFrom, logger: logger)
        } else {
            logger.warning(
                "BASALT_SMTP_URL is not set: mails (with their single-use tokens) are written to the log instead of sent — development only"
            )
            transport = LogMailTransport(logger: logger)
        }
        var authSettings = AuthService.Settings(appURL: a.appURL ?? publicURL)
        authSettings.sessionLifetime = a.sessionLifetime
        authSettings.registrationOpen = a.registrationOpen
        realtime = RealtimeService(hub: events, records: records)
        jobs = JobQueue(store: store)
        afterHooks = AfterHooks(hooks: configuration.hooks, queue: jobs, schemas: schemas)
        try await afterHooks.prepare()
        webhookSender = HTTPWebhookSender(resolver: configuration.webhookResolver)
        webhooks = WebhookService(
            queue: jobs,
            schemas: schemas,
            secrets: box,
            sender: webhookSender,
            policy: AddressPolicy(allowPrivate: configuration.allowPrivateWebhooks),
            logger: logger
        )
        auth = AuthService(
            store: store,
            records: records,
            schemas: schemas,
            tokens: tokens,
            hasher: ScryptPasswordHasher(parameters: a.passwordParameters),
            policy: PasswordPolicy(),
            throttle: LoginThrottle(settings: a.throttle),
            mail: MailOutbox(queue: jobs, transport: transport, secrets: box, logger: logger),
            secrets: box,
            settings: authSettings,
            logger: logger
        )
        oauth = OAuthServer(auth: auth, clients: OAuthClients(store: store), logger: logger)
        socialSignIn = SocialSignIn(
            auth: auth,
            http: ProviderHTTP(),
            settings: .init(providers: a.oauthProviders, redirectURLs: a.oauthRedirectURLs, publicURL: publicURL),
            logger: logger
        )
    }

    /// Runs every kind of job this process handles.
    public var jobRunner: JobRunner {
        JobRunner(queue: jobs, handlers: [auth.mail, webhooks, afterHooks], logger: logger)
    }

    /// The master key: configured, else a key file in the data folder, else (PostgreSQL without
    /// one) a generated key stored in the database — which protects nothing at rest, hence the warning.
    static func secretBox(_ c: BasaltConfiguration, store: any Store, logger: Logger) async throws -> SecretBox {
        if let k = c.auth.secretKey { return try SecretBox(encoded: k) }
        if c.databaseURL == nil {
            let path = (c.dataDirectory as NSString).appendingPathComponent("secret.key")
            if let text = try? String(contentsOfFile: path, encoding: .utf8) { return try SecretBox(encoded: text) }
            let fresh = SecretBox.generateEncoded()
            guard FileManager.default.createFile(atPath: path, contents: Data((fresh + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
                throw ConfigurationError("cannot write the secret key file \(path)")
            }
            return try SecretBox(encoded: fresh)
        }
        logger.warning("BASALT_SECRET_KEY is not set: signing keys and TOTP secrets are sealed with a key kept in the same database")
        return try SecretBox(encoded: try await SettingsRepository(store: store).value("secret_key") { SecretBox.generateEncoded() })
    }

    /// `basalt keys rotate`: a new signing key; the old ones stay published until their tokens expire.
    public func rotateSigningKeys() async throws -> String {
        let repo = SigningKeyStore(store: store, box: auth.secrets)
        let kid = try await repo.rotate(keep: configuration.auth.accessTokenLifetime * 2 + .seconds(3600))
        await auth.tokens.install(try await repo.load())
        return kid
    }

    /// Opens the configured store, runs `body`, then closes the store.
    public static func withRuntime<T: Sendable>(
        _ configuration: BasaltConfiguration,
        logger: Logger,
        _ body: @Sendable (BasaltRuntime) async throws -> T
    ) async throws -> T {
        let metrics = configuration.metricsEnabled ? Metrics() : nil
        if let url = configuration.databaseURL {
            let store = try PostgresStore(
                url: url,
                schemaName: configuration.postgresSchema,
                maxConnections: configuration.postgresMaxConnections,
                acquireTimeout: configuration.databaseTimeout,
                metrics: metrics,
                logger: logger
            )
            return try await store.withRunning {
                try await store.bootstrap()
                let runtime = try await BasaltRuntime(configuration: configuration, store: store, metrics: metrics, logger: logger)
                return try await runtime.running(body)
            }
        }
        let store = try SQLiteStore(
            directory: configuration.dataDirectory,
            synchronous: configuration.sqliteSynchronous,
            busyTimeout: configuration.databaseTimeout,
            walTargetBytes: configuration.sqliteWALTargetBytes,
            cacheBytes: configuration.sqliteCacheBytes,
            metrics: metrics,
            logger: logger
        )
        do {
            let runtime = try await BasaltRuntime(configuration: configuration, store: store, metrics: metrics, logger: logger)
            let result = try await runtime.running(body)
            try await store.close()
            return result
        } catch {
            try? await store.close()
            throw error
        }
    }

    /// Runs `body`, then closes what the runtime opened besides the store (webhook clients),
    /// whether `body` succeeded or not.
    func running<T: Sendable>(_ body: @Sendable (BasaltRuntime) async throws -> T) async throws -> T {
        do {
            let result = try await body(self)
            await webhookSender.shutdown()
            return result
        } catch {
            await webhookSender.shutdown()
            throw error
        }
    }

    /// Every endpoint, in matching order (records last: their paths are the most general).
    public func makeSurface() -> HTTPSurface {
        let settings = configuration.http
        let store = self.store
        let recordRoutes = RecordRoutes(records: records, idempotency: idempotency, settings: settings)
        let openAPI = OpenAPIPublisher(schemas: schemas, serverURL: settings.publicURL)
        let surface = HTTPSurface(
            MetaRoutes(openAPI: openAPI, isReady: { await store.ping() }).endpoints
                + AuthRoutes(auth: auth, settings: settings).endpoints
                + OAuthRoutes(server: oauth, social: socialSignIn, settings: settings).endpoints
                + AdminRoutes(schemas: schemas, apiKeys: apiKeys, auth: auth, recordRoutes: recordRoutes, settings: settings).endpoints
                + JobRoutes(jobs: jobs, webhooks: webhooks, settings: settings).endpoints
                + makeRealtimeRoutes().endpoints
                + makeMetricsRoutes()
                + AdvisorRoutes { [self] in try await advise() }.endpoints
                + recordRoutes.endpoints
        )
        openAPI.install(surface)
        return surface
    }

    /// `GET /metrics`, when metrics are on.
    func makeMetricsRoutes() -> [Endpoint] {
        guard let metrics else { return [] }
        return MetricsRoutes(metrics: metrics, token: configuration.metricsToken, apiKeys: apiKeys, auth: auth) { [self] in
            await metricSamples()
        }
        .endpoints
    }

    /// What is read when `/metrics` is scraped: queue depth, outbox lag, the pool's size, the
    /// SQLite log's size, the process's memory and descriptors. A query that fails leaves its
    /// samples out (the scrape still answers, with the rest).
    func metricSamples() async -> [Metrics.Sample] {
        var out = ProcessStats.samples
        if let depth = try? await jobs.depth() {
            for d in depth {
                out.append(.init("basalt_jobs", "Jobs in the durable queue, by state", labels: [("state", d.state.rawValue)], Double(d.count)))
            }
        }
        if let lag = try? await EventLog(store: store).lag() {
            for l in lag {
                out.append(
                    .init(
                        "basalt_outbox_lag_events",
                        "Events an outbox consumer has yet to pass",
                        labels: [("consumer", l.consumer)],
                        Double(l.events)
                    )
                )
            }
        }
        out.append(.init("basalt_db_pool_size", "Connections the store may open", Double(store.connectionLimit)))
        if let sqlite = store as? SQLiteStore {
            let wal = sqlite.walStatus
            out += [
                .init("basalt_sqlite_wal_bytes", "Size of the SQLite write-ahead log after the last checkpoint", Double(wal.bytes)),
                .init("basalt_sqlite_checkpoint_seconds", "How long the last WAL checkpoint took", wal.lastDuration / .seconds(1)),
                .init("basalt_sqlite_checkpoint_escalated", "1 when the last checkpoint found the log over its target", wal.lastEscalated ? 1 : 0),
                .init("basalt_sqlite_checkpoint_unfinished", "Escalated checkpoints in a row that could not finish", Double(wal.unfinished)),
            ]
        }
        return out
    }

    func makeRealtimeRoutes() -> RealtimeRoutes {
        RealtimeRoutes(
            realtime: realtime,
            tickets: RealtimeTickets(store: store, secrets: auth.secrets),
            apiKeys: apiKeys,
            auth: auth,
            subscribeWithin: configuration.http.webSocketSubscribeWithin
        )
    }

    /// The router that decides WebSocket upgrades (the realtime route only).
    /// `rateLimit` is shared with the HTTP router, so handshakes and requests draw on one quota.
    public func makeWebSocketRouter(surface: HTTPSurface, rateLimit: RateLimitMiddleware) -> Router<BasaltRequestContext> {
        let router = Router(context: BasaltRequestContext.self)
        makeRealtimeRoutes().registerWebSocket(
            on: router,
            credentials: AuthMiddleware(apiKeys: apiKeys, auth: auth, settings: configuration.http, surface: surface),
            rateLimit: rateLimit
        )
        return router
    }

    /// The HTTP router with every route and middleware, as `basalt serve` runs it.
    public func makeRouter(surface: HTTPSurface? = nil, rateLimit: RateLimitMiddleware? = nil) -> Router<BasaltRequestContext> {
        let settings = configuration.http
        let surface = surface ?? makeSurface()
        let router = Router(context: BasaltRequestContext.self, options: .autoGenerateHeadEndpoints)
        router.add(middleware: EdgeMiddleware(settings: settings, logger: logger, surface: surface, metrics: metrics, traffic: traffic))
        router.add(middleware: AuthMiddleware(apiKeys: apiKeys, auth: auth, settings: settings, surface: surface))
        router.add(middleware: rateLimit ?? RateLimitMiddleware(settings: settings))
        surface.register(on: router)
        return router
    }

    /// The application: router, server, and the background services that go with it.
    public func makeApplication(onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) -> some ApplicationProtocol {
        let surface = makeSurface()
        let rateLimit = RateLimitMiddleware(settings: configuration.http)
        return Application(
            router: makeRouter(surface: surface, rateLimit: rateLimit),
            // An idle timeout bounds how long a silent or stalled client holds a connection (and,
            // with the group's graceful-shutdown limit, how long it can delay a stop). An upgraded
            // WebSocket is pinged every 15 s instead (a peer that stops answering is closed).
            server: .basalt(
                webSocketRouter: makeWebSocketRouter(surface: surface, rateLimit: rateLimit),
                configuration: .init(
                    http1: .init(additionalChannelHandlers: [MalformedRequestHandler()], idleTimeout: .seconds(30)),
                    ws: .init(maxFrameSize: 1 << 16, autoPing: .enabled(timePeriod: .seconds(15)))
                )
            ),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            // Services stop in reverse order: the event hub first, which ends realtime streams, so
            // they do not hold the server's graceful shutdown.
            services: [
                HousekeepingService(runtime: self), JobService(runtime: self), OutboxDispatchService(runtime: self),
                EventHubService(hub: events),
            ] + (configuration.backupDirectory.map { [BackupService(runtime: self, directory: $0)] } ?? []),
            onServerRunning: onServerRunning,
            logger: logger
        )
    }
}

/// Background upkeep, one tick a second: flush buffered log lines, let the store housekeep
/// (SQLite WAL checkpoints), and notice schema changes made elsewhere — `basalt schema apply` from
/// a shell, another replica — by polling the stored version (one single-row read). Every minute it
/// drops expired idempotency records.
struct HousekeepingService: Service {
    let runtime: BasaltRuntime

    func run() async throws {
        // The decoy hash unknown emails are checked against: made now, so not even the first
        // failed sign-in of a process takes longer for an unknown email than for a known one.
        await attempt("decoy password hash") { _ = try await runtime.auth.decoyHash() }
        // Sleeping is cancelled on graceful shutdown, so stopping never waits for a tick.
        try? await cancelWhenGracefulShutdown { try await loop() }
    }

    func loop() async throws {
        var tick = 0
        while !Task.isCancelled {
            try await Task.sleep(for: .seconds(1))
            tick += 1
            JSONLogHandler.flush()
            await attempt("housekeeping") { try await runtime.store.housekeep() }
            await attempt("schema reload") { try await runtime.schemas.reloadIfChanged() }
            if tick % 5 == 0 {
                // Keys rotated by another process or replica (`basalt keys rotate`).
                await attempt("signing key reload") { try await runtime.auth.reloadSigningKeys() }
            }
            if tick % 60 == 0 {
                await attempt("idempotency purge") { try await runtime.idempotency.purge() }
                await attempt("identity purge") { try await runtime.auth.purgeExpired() }
                await attempt("realtime ticket purge") { try await RealtimeTickets(store: runtime.store, secrets: runtime.auth.secrets).purge() }
                await attempt("job purge") { try await runtime.jobs.purge() }
                await attempt("webhook position") { try await runtime.webhooks.skipIdle() }
                if let keep = runtime.configuration.auditRetention {
                    await attempt("audit retention") {
                        let cutoff = Timestamp.now().millisecondsSinceEpoch - keep.milliseconds
                        try await AuditLog(store: runtime.store).prune(olderThan: Timestamp(millisecondsSinceEpoch: cutoff))
                    }
                }
                await attempt("event retention") {
                    let cutoff = Timestamp.now().millisecondsSinceEpoch - Int64(runtime.configuration.eventRetention.components.seconds) * 1000
                    try await runtime.events.log.prune(olderThan: Timestamp(millisecondsSinceEpoch: cutoff))
                }
            }
        }
    }

    func attempt(_ what: String, _ body: () async throws -> Void) async {
        do {
            try await body()
        } catch {
            runtime.logger.warning("\(what) failed", metadata: ["error": "\(error)"])
        }
    }
}

/// Runs the job queue's workers (mail, webhook deliveries) until shutdown, which hands the jobs
/// under way back to the queue; and, about once a second, turns password-reset requests into mail.
struct JobService: Service {
    let runtime: BasaltRuntime

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await runtime.jobRunner.run() }
                group.addTask {
                    while !Task.isCancelled {
                        do {
                            try await Task.sleep(for: .seconds(1))
                            if try await runtime.auth.processResetRequests() > 0 { runtime.jobs.wakeups.bump() }
                        } catch is CancellationError {
                            return
                        } catch {
                            runtime.logger.warning("password reset requests failed", metadata: ["error": "\(error)"])
                        }
                    }
                }
            }
        }
    }
}

/// Turns committed events into webhook deliveries and after-hook jobs: after local commits (at
/// most ten passes a second) and at least once a second (other processes' commits).
struct OutboxDispatchService: Service {
    let runtime: BasaltRuntime

    func run() async throws {
        do {
            try await runtime.afterHooks.releaseIfUnused()
        } catch {
            runtime.logger.warning("releasing the after-hooks' outbox position failed", metadata: ["error": "\(error)"])
        }
        await cancelWhenGracefulShutdown {
            let commits = runtime.store.commits
            var failures = 0
            while !Task.isCancelled {
                let seen = commits.value
                do {
                    while try await runtime.webhooks.dispatch(limit: 500) == 500 {}
                    while try await runtime.afterHooks.dispatch(limit: 500) == 500 {}
                    failures = 0
                } catch {
                    failures += 1
                    if failures == 1 || failures % 60 == 0 {
                        runtime.logger.warning("outbox dispatch failed", metadata: ["error": "\(error)"])
                    }
                }
                try? await Task.sleep(for: .milliseconds(100))
                await commits.wait(beyond: seen, timeout: .seconds(1))
            }
        }
    }
}

/// Mail over SMTP (BasaltSMTP).
struct SMTPMailTransport: MailTransport {
    let client: SMTPClient
    let from: String

    init(configuration: SMTPConfiguration, from: String, logger: Logger) {
        client = SMTPClient(configuration: configuration, logger: logger)
        self.from = from
    }

    func send(_ mail: OutgoingMail) async throws {
        try await Trace.span("smtp send", kind: .client, startsTrace: true) {
            try await client.send(MailMessage(from: from, to: [mail.to], subject: mail.subject, textBody: mail.body, messageID: nil))
        }
    }
}

/// Runs the process's event hub (the outbox reader realtime streams pull from) until shutdown.
/// With PostgreSQL, it also relays commits between processes (LISTEN/NOTIFY).
struct EventHubService: Service {
    let hub: EventHub

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                if let relay = hub.log.store as? any CommitRelaying { group.addTask { await relay.relayCommits() } }
                await hub.run()
                group.cancelAll()
            }
        }
    }
}
