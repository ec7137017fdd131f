public import BasaltAuth
public import BasaltHTTP
public import BasaltSQLite
public import BasaltServices

/// Everything `basalt serve` and the embedding API need to start. Built by the CLI from flags,
/// `BASALT_*` variables and a config file; built directly by library users and tests.
public struct BasaltConfiguration: Sendable {
    /// SQLite data folder (the embedded default).
    public var dataDirectory: String = "./basalt-data"
    /// `postgres://…`; when set, PostgreSQL is used instead of SQLite.
    public var databaseURL: String?
    /// PostgreSQL schema to use (tests isolate themselves in one each).
    public var postgresSchema: String?
    /// Size of the PostgreSQL connection pool (per process).
    public var postgresMaxConnections: Int = 20
    /// How long a request waits for the database before it is answered `503` (PostgreSQL: for a
    /// pooled connection; SQLite: for the write lock).
    public var databaseTimeout: Duration = .seconds(5)
    public var host: String = "127.0.0.1"
    public var port: Int = 8080
    public var http = HTTPSettings()
    public var sqliteSynchronous: SQLiteStore.Synchronous = .normal
    /// The size the SQLite write-ahead log is kept near under sustained load.
    public var sqliteWALTargetBytes: Int64 = 32 << 20
    /// SQLite's page cache per connection (the writer and each reader have one).
    public var sqliteCacheBytes: Int64 = 32 << 20
    /// How long audit entries are kept (nil: forever).
    public var auditRetention: Duration? = .seconds(365 * 86_400)
    /// Where `serve` writes scheduled backups (nil: no scheduled backups).
    public var backupDirectory: String?
    /// How often a scheduled backup is taken.
    public var backupInterval: Duration = .seconds(86_400)
    /// How many scheduled backups are kept (older ones are deleted).
    public var backupKeep = 7
    /// How long events stay in the outbox: how far back a realtime subscriber can resume.
    public var eventRetention: Duration = .seconds(7 * 86_400)
    /// How often the event hub looks for other processes' commits while anyone subscribes — the
    /// fallback to LISTEN/NOTIFY on PostgreSQL (nil: 500 ms there, 1 s on SQLite, where this
    /// process is the only writer).
    public var eventPollInterval: Duration?
    /// Whether webhooks may target loopback, private and link-local addresses (development, or a
    /// receiver on the same private network). Off: such targets are refused (SSRF).
    public var allowPrivateWebhooks = false
    /// Whether requests and database calls are counted for `GET /metrics` (off: `/metrics` is 404).
    public var metricsEnabled = true
    /// A bearer token that may read `GET /metrics` besides an admin credential (a scraper's).
    public var metricsToken: String?
    /// Resolves webhook hosts instead of the system's resolver (a deployment with its own DNS
    /// policy; tests that play a DNS server). Every address it returns is still checked.
    public var webhookResolver: (@Sendable (String) async throws -> [String])?
    public var auth = AuthConfiguration()
    /// Swift code run around record writes (Basalt as a library): before-hooks in the write's
    /// transaction, after-hooks from the outbox.
    public var hooks = RecordHooks()

    public init() {}

    /// Parses `HOST:PORT` (`[::1]:8080` for IPv6).
    public mutating func setHTTP(_ value: String) throws {
        guard let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]), (0...65535).contains(port) else {
            throw ConfigurationError("--http must be HOST:PORT, got \(value)")
        }
        var host = String(value[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host.isEmpty ? "127.0.0.1" : host
        self.port = port
    }
}

public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Identity settings (API.md §8).
public struct AuthConfiguration: Sendable {
    /// Master key sealing signing keys and TOTP secrets (`BASALT_SECRET_KEY`: 64 hex digits or
    /// base64 of 32 bytes). Unset: `secret.key` in the data folder (created, mode 0600); on
    /// PostgreSQL a generated key kept in the database, with a warning.
    public var secretKey: String?
    /// `aud` of access tokens.
    public var audience = "basalt"
    /// `iss` of access tokens; default the public URL.
    public var issuer: String?
    public var accessTokenLifetime: Duration = .seconds(900)
    /// Clock difference between replicas tolerated on `exp`/`nbf`/`iat` (tokens stay valid this
    /// long after their expiry). Zero makes expiry exact (client tests of refreshing rely on it).
    public var accessTokenLeeway: Duration = .seconds(30)
    public var sessionLifetime: Duration = .seconds(30 * 86_400)
    /// Base of links in mails; default the public URL.
    public var appURL: String?
    /// `smtp://user:pass@host:port`, `smtp+starttls://…` or `smtps://…`; unset: mails go to the log (dev mode).
    public var smtpURL: String?
    public var mailFrom = "no-reply@localhost"
    /// Whether anyone may sign up; `false`: only admins create users (`POST /v1/users`).
    public var registrationOpen = true
    /// Sign-in with other providers (`BASALT_OAUTH_PROVIDERS`, API.md §8.1).
    public var oauthProviders: [OAuthProvider] = []
    /// Where those flows may return to (`BASALT_OAUTH_REDIRECT_URLS`): exact URIs.
    public var oauthRedirectURLs: Set<String> = []
    public var passwordParameters = ScryptPasswordHasher.Parameters.standard
    public var throttle = LoginThrottle.Settings()
    public init() {}
}
