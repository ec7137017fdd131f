public import BasaltCore
import BasaltServices
public import BasaltStorage
public import Logging
public import ServiceLifecycle
import UnixSignals

/// A schema change `serve` will not make on its own: it drops or narrows something.
public struct DestructiveSchemaChange: Error, CustomStringConvertible {
    public let plan: MigrationPlan
    public var description: String { "the schema change is destructive; apply it with `basalt schema apply --allow-destructive`" }
}

extension BasaltRuntime {
    /// What `basalt serve` does, for a program embedding Basalt: opens the store, applies
    /// `schema` when it adds to the stored one (a destructive change throws
    /// `DestructiveSchemaChange`), and serves until SIGTERM or SIGINT — in-flight requests get
    /// 10 s to finish, jobs under way go back to the queue.
    /// `services` run beside the server and stop after it (a tracing exporter that flushes last).
    public static func serve(
        _ configuration: BasaltConfiguration,
        schema: Schema? = nil,
        services: [any Service] = [],
        logger: Logger
    ) async throws {
        try await withRuntime(configuration, logger: logger) { runtime in
            if let schema {
                let result = try await runtime.schemas.apply(schema, allowDestructive: false, dryRun: true, source: "serve")
                if result.plan.isDestructive { throw DestructiveSchemaChange(plan: result.plan) }
                if !result.plan.isEmpty { _ = try await runtime.schemas.apply(schema, allowDestructive: false, source: "serve") }
            }
            var group = ServiceGroupConfiguration(
                services: services + [runtime.makeApplication()],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
            // In-flight requests get 10 s to finish; then they are cancelled (and get 5 s more).
            group.maximumGracefulShutdownDuration = .seconds(10)
            group.maximumCancellationDuration = .seconds(5)
            logger.info(
                "serving",
                metadata: [
                    "http.address": "\(configuration.host):\(configuration.port)",
                    "storage": "\(configuration.databaseURL == nil ? "sqlite:" + configuration.dataDirectory : "postgres")",
                ]
            )
            try await ServiceGroup(configuration: group).run()
            JSONLogHandler.flush()
        }
    }
}
