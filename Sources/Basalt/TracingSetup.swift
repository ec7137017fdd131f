import BasaltTelemetry
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
        let backend = try OTel.makeTracingBackend(configuration: config)
        InstrumentationSystem.bootstrap(backend.factory)
        Trace.enable()
        return backend.service
    }
}
