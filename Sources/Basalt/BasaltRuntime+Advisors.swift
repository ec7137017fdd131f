import BasaltCore
import BasaltHTTP
import BasaltSQLite
public import BasaltServices
import Foundation

extension BasaltRuntime {
    /// The advisors' review of this deployment (`basalt doctor`, `GET /v1/admin/advisors`).
    public func advise(thresholds: Advisors.Thresholds = .init()) async throws -> [Finding] {
        try await Advisors(
            store: store,
            schema: schemas.current.schema,
            observations: records.observations.summaries(),
            facts: deploymentFacts(),
            thresholds: thresholds
        )
        .review()
    }

    func deploymentFacts() -> DeploymentFacts {
        let c = configuration
        var f = DeploymentFacts()
        f.publicURL = c.http.publicURL
        f.corsOrigins = c.http.corsOrigins
        f.mailToLog = c.auth.smtpURL == nil
        f.masterKeyInDatabase = c.databaseURL != nil && c.auth.secretKey == nil
        f.registrationOpen = c.auth.registrationOpen
        f.backupsScheduled = c.backupDirectory != nil
        f.requestsSeen = traffic.requestsSeen
        f.httpsForwardedSeen = traffic.httpsForwardedSeen
        if c.databaseURL == nil {
            f.sqliteSynchronous = c.sqliteSynchronous.rawValue
            let wal = (c.dataDirectory as NSString).appendingPathComponent("data.db-wal")
            f.walBytes = (try? FileManager.default.attributesOfItem(atPath: wal))?[.size] as? Int64 ?? 0
            f.walTargetBytes = c.sqliteWALTargetBytes
            f.sqliteCacheBytes = c.sqliteCacheBytes
            let db = (c.dataDirectory as NSString).appendingPathComponent("data.db")
            f.sqliteDatabaseBytes = (try? FileManager.default.attributesOfItem(atPath: db))?[.size] as? Int64 ?? 0
        } else {
            f.poolSize = c.postgresMaxConnections
        }
        return f
    }
}
