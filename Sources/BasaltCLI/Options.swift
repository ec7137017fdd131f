import ArgumentParser
import Basalt
import BasaltCore
import BasaltHTTP
import BasaltSQLite
import BasaltServices
import Configuration
import Foundation
import SystemPackage

/// Settings shared by every command that touches data. Flags override `BASALT_*` environment
/// variables, which override the config file (`--config`), which overrides defaults; all three
/// are layered by swift-configuration.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "SQLite data folder (default ./basalt-data). Env: BASALT_DATA")
    var data: String?
    @Option(name: .long, help: "PostgreSQL URL (postgres://user:pass@host:port/db). Env: BASALT_DATABASE_URL")
    var database: String?
    @Option(
        name: .long,
        help: "A YAML or JSON config file; its keys are the BASALT_* names in lowercase without the prefix (data, database_url, http, …)"
    )
    var config: String?

    /// The layered reader: flags, then environment, then file.
    func reader(flags: [String: String]) async throws -> ConfigReader {
        var values: [AbsoluteConfigKey: ConfigValue] = [:]
        var all = flags
        if let data { all["data"] = data }
        if let database { all["database_url"] = database }
        for (k, v) in all { values[AbsoluteConfigKey(["basalt", k])] = ConfigValue(.string(v), isSecret: k.contains("url") || k.contains("secret")) }
        var providers: [any ConfigProvider] = [InMemoryProvider(name: "flags", values: values), EnvironmentVariablesProvider()]
        if let config {
            guard FileManager.default.fileExists(atPath: config) else { throw ValidationError("config file \(config) does not exist") }
            // File keys have no `basalt.` prefix: map the reader's keys onto them.
            let strip: @Sendable (AbsoluteConfigKey) -> AbsoluteConfigKey = { key in
                AbsoluteConfigKey(key.components.first == "basalt" ? Array(key.components.dropFirst()) : key.components)
            }
            if config.hasSuffix(".json") {
                providers.append(KeyMappingProvider(upstream: try await FileProvider<JSONSnapshot>(filePath: .init(config)), keyMapper: strip))
            } else {
                providers.append(KeyMappingProvider(upstream: try await FileProvider<YAMLSnapshot>(filePath: .init(config)), keyMapper: strip))
            }
        }
        return ConfigReader(providers: providers).scoped(to: "basalt")
    }

    func configuration(flags: [String: String] = [:]) async throws -> BasaltConfiguration {
        let r = try await reader(flags: flags)
        var c = BasaltConfiguration()
        let data = r.string(forKey: "data")
        let url = r.string(forKey: "database_url", isSecret: true)
        if data != nil && url != nil {
            throw ValidationError("--data (BASALT_DATA) and --database (BASALT_DATABASE_URL) cannot both be set")
        }
        if let data { c.dataDirectory = data }
        if let url {
            guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
                throw ValidationError("--database must be a postgres:// URL")
            }
            c.databaseURL = url
        }
        if let http = r.string(forKey: "http") {
            do { try c.setHTTP(http) } catch { throw ValidationError("\(error)") }
        }
        c.http.publicURL = r.string(forKey: "public_url") ?? "http://\(c.host.contains(":") ? "[\(c.host)]" : c.host):\(c.port)"
        if let cors = r.string(forKey: "cors_origins") {
            c.http.corsOrigins = cors.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        if let proxies = r.string(forKey: "trusted_proxies") {
            c.http.trustedProxies = Set(proxies.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        }
        if let v = r.string(forKey: "rate_limit_anonymous") {
            guard let n = Int(v), n >= 0 else { throw ValidationError("rate_limit_anonymous must be a number ≥ 0") }
            c.http.anonymousPerMinute = n
        }
        if let v = r.string(forKey: "rate_limit_subject") {
            guard let n = Int(v), n >= 0 else { throw ValidationError("rate_limit_subject must be a number ≥ 0") }
            c.http.subjectPerMinute = n
        }
        if let v = r.string(forKey: "body_limit_bytes") {
            guard let n = Int(v), n > 0 else { throw ValidationError("body_limit_bytes must be a positive number") }
            c.http.bodyLimitBytes = n
        }
        if let v = r.string(forKey: "request_logs") { c.http.requestLogs = !["false", "0", "off"].contains(v.lowercased()) }
        if let v = r.string(forKey: "rate_limit_auth") {
            guard let n = Int(v), n >= 0 else { throw ValidationError("rate_limit_auth must be a number ≥ 0") }
            c.http.authPerMinute = n
        }
        // Identity (API.md §8). Secrets come from the environment or the file, never logged.
        c.auth.secretKey = r.string(forKey: "secret_key", isSecret: true)
        if let v = r.string(forKey: "jwt_audience") { c.auth.audience = v }
        if let v = r.string(forKey: "access_token_ttl") {
            guard let n = Int(v), (60...86_400).contains(n) else { throw ValidationError("access_token_ttl is seconds from 60 to 86400") }
            c.auth.accessTokenLifetime = .seconds(n)
        }
        if let v = r.string(forKey: "session_ttl") {
            guard let n = Int(v), n >= 3600 else { throw ValidationError("session_ttl is seconds, at least 3600") }
            c.auth.sessionLifetime = .seconds(n)
        }
        c.auth.smtpURL = r.string(forKey: "smtp_url", isSecret: true)
        if let v = r.string(forKey: "mail_from") { c.auth.mailFrom = v }
        c.auth.appURL = r.string(forKey: "app_url")
        if let v = r.string(forKey: "registration") {
            guard ["open", "closed"].contains(v) else { throw ValidationError("registration is open or closed") }
            c.auth.registrationOpen = v == "open"
        }
        if let v = r.string(forKey: "oauth_providers", isSecret: true) {
            do { c.auth.oauthProviders = try OAuthProvider.parse(v) } catch { throw ValidationError(error.message) }
        }
        if let v = r.string(forKey: "oauth_redirect_urls") {
            c.auth.oauthRedirectURLs = Set(v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        }
        if let v = r.string(forKey: "database_timeout") {
            guard let n = Double(v), n > 0, n <= 300 else { throw ValidationError("database_timeout is seconds, more than 0 and at most 300") }
            c.databaseTimeout = .milliseconds(Int((n * 1000).rounded()))
        }
        if let v = r.string(forKey: "sqlite_wal_target_mb") {
            guard let n = Int64(v), (1...4096).contains(n) else { throw ValidationError("sqlite_wal_target_mb is MiB from 1 to 4096") }
            c.sqliteWALTargetBytes = n << 20
        }
        if let v = r.string(forKey: "sqlite_cache_mb") {
            guard let n = Int64(v), (1...65_536).contains(n) else { throw ValidationError("sqlite_cache_mb is MiB from 1 to 65536") }
            c.sqliteCacheBytes = n << 20
        }
        if let v = r.string(forKey: "event_retention_hours") {
            guard let n = Int(v), (1...8760).contains(n) else { throw ValidationError("event_retention_hours is hours from 1 to 8760") }
            c.eventRetention = .seconds(n * 3600)
        }
        if let v = r.string(forKey: "audit_retention_days") {
            guard let n = Int(v), (0...36_500).contains(n) else {
                throw ValidationError("audit_retention_days is days from 0 (keep forever) to 36500")
            }
            c.auditRetention = n == 0 ? nil : .seconds(n * 86_400)
        }
        if let v = r.string(forKey: "postgres_pool") {
            guard let n = Int(v), (1...1000).contains(n) else { throw ValidationError("postgres_pool is a connection count from 1 to 1000") }
            c.postgresMaxConnections = n
        }
        c.backupDirectory = r.string(forKey: "backup_dir")
        if let v = r.string(forKey: "backup_every") {
            guard let d = parseInterval(v), d >= .seconds(60) else {
                throw ValidationError("backup_every is an interval of at least a minute: seconds, or a number with s, m, h or d (6h, 1d)")
            }
            c.backupInterval = d
        }
        if let v = r.string(forKey: "backup_keep") {
            guard let n = Int(v), (1...10_000).contains(n) else { throw ValidationError("backup_keep is a count from 1 to 10000") }
            c.backupKeep = n
        }
        if let v = r.string(forKey: "event_poll_ms") {
            guard let n = Int(v), (10...600_000).contains(n) else { throw ValidationError("event_poll_ms is milliseconds from 10 to 600000") }
            c.eventPollInterval = .milliseconds(n)
        }
        c.metricsToken = r.string(forKey: "metrics_token", isSecret: true)
        if let v = r.string(forKey: "metrics") {
            guard ["on", "off"].contains(v) else { throw ValidationError("metrics is on or off") }
            c.metricsEnabled = v == "on"
        }
        if let v = r.string(forKey: "allow_private_webhooks") { c.allowPrivateWebhooks = ["true", "1", "on", "yes"].contains(v.lowercased()) }
        if let v = r.string(forKey: "sqlite_synchronous") {
            guard let s = SQLiteStore.Synchronous(rawValue: v.uppercased()) else { throw ValidationError("sqlite_synchronous is normal or full") }
            c.sqliteSynchronous = s
        }
        return c
    }
}

/// `90`, `90s`, `15m`, `6h`, `1d`.
func parseInterval(_ s: String) -> Duration? {
    let unit: Int64
    var number = Substring(s)
    switch s.last {
    case "s": unit = 1
    case "m": unit = 60
    case "h": unit = 3600
    case "d": unit = 86_400
    default: unit = 0
    }
    if unit > 0 { number = number.dropLast() }
    guard let n = Int64(number), n > 0, n <= 3_650 * 86_400 else { return nil }
    let seconds = n * max(unit, 1)
    return seconds <= 3_650 * 86_400 ? .seconds(seconds) : nil
}
