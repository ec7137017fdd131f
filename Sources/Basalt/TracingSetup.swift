import BasaltTelemetry
import Foundation
public import Logging
import OTel
public import ServiceLifecycle
import Tracing

/// OpenTelemetry tracing for `basalt serve`, configured by the standard `OTEL_*` variables and
/// off unless asked for: on when `OTEL_TRACES_EXPORTER=otlp` or an OTLP endpoint is set
/// (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); `OTEL_SDK_DISABLED=true`
/// or `OTEL_TRACES_EXPORTER=none` keep it off. Spans go out over OTLP/HTTP with protobuf
/// (`OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`, the default; the gRPC exporter is not built in).
public enum TracingSetup {
    public static func wanted(_ env: [String: String]) -> Bool {
        if env["OTEL_SDK_DISABLED"]?.lowercased() == "true" { return false }
        switch env["OTEL_TRACES_EXPORTER"]?.lowercased() {
        case "none": return false
        case "otlp": return true
        default: return env["OTEL_EXPORTER_OTLP_ENDPOINT"] != nil || env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] != nil
        }
    }

    /// Log lines then carry `trace_id` and `span_id` of the span they were written in.
    public static var logMetadata: Logger.MetadataProvider { OTel.makeLoggingMetadataProvider() }

    /// Installs the OTLP tracer process-wide and returns the service that exports its spans (run
    /// it beside the server: it flushes what is pending on shutdown).
    public static func start() throws -> any Service {
        var config = OTel.Configuration.default
        config.serviceName = "basalt"
        config.logs.enabled = false
        config.metrics.enabled = false
        config.traces.enabled = true
        // `Trace` samples, before any span exists; the tracer records every span it is given.
        let ratio = try samplingRatio(ProcessInfo.processInfo.environment)
        unsetenv("OTEL_TRACES_SAMPLER")
        unsetenv("OTEL_TRACES_SAMPLER_ARG")
        config.traces.sampler = .parentBasedAlwaysOn
        let backend = try OTel.makeTracingBackend(configuration: config)
        InstrumentationSystem.bootstrap(backend.factory)
        Trace.enable(sampling: ratio)
        return backend.service
    }

    /// The share of new traces to record, from `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`
    /// (every sampler follows an incoming trace's own decision).
    static func samplingRatio(_ env: [String: String]) throws -> Double {
        let arg = try env["OTEL_TRACES_SAMPLER_ARG"].map { text throws(TracingConfigurationError) -> Double in
            guard let value = Double(text) else { throw TracingConfigurationError("OTEL_TRACES_SAMPLER_ARG is a ratio from 0 to 1") }
            return value
        }
        switch env["OTEL_TRACES_SAMPLER"]?.lowercased() ?? "parentbased_always_on" {
        case "always_on", "parentbased_always_on": return 1
        case "always_off", "parentbased_always_off": return 0
        case "traceidratio", "parentbased_traceidratio":
            let ratio = arg ?? 1
            guard (0...1).contains(ratio) else {
                throw TracingConfigurationError("OTEL_TRACES_SAMPLER_ARG is a ratio from 0 to 1")
            }
            return ratio
        case let other:
            throw TracingConfigurationError(
                "OTEL_TRACES_SAMPLER=\(other) is not supported (always_on, always_off, traceidratio and their parentbased_ forms are)"
            )
        }
    }
}

public struct TracingConfigurationError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
