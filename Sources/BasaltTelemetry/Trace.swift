import Synchronization
public import Tracing

/// Spans for OpenTelemetry (swift-distributed-tracing), when a tracer is installed: `basalt
/// serve` with `OTEL_*` set bootstraps one and calls `enable(sampling:)`. Until then every helper
/// here runs its body directly — no span, no task-local, no lock — so tracing that is off costs an
/// atomic load.
///
/// Sampling is decided here, once per trace, before any span exists: a trace that is not
/// recorded makes no span at all. (swift-otel hands every span, recorded or not, to its batch
/// processor through an async stream: deciding there cost a sampled-out request 16% of a read's
/// throughput, deciding here nothing measurable.)
public enum Trace {
    static let enabled = Atomic<Bool>(false)
    static let ratioBits = Atomic<UInt64>(Double(1).bitPattern)

    /// Spans from now on go to the tracer of `InstrumentationSystem`; of the traces that start
    /// here (no sampled parent came with the request), `sampling` (0…1) are recorded.
    public static func enable(sampling: Double = 1) {
        ratioBits.store(min(1, max(0, sampling)).bitPattern, ordering: .relaxed)
        enabled.store(true, ordering: .releasing)
    }
    public static var isOn: Bool { enabled.load(ordering: .acquiring) }

    /// Whether a trace that starts here is recorded.
    public static func sampleRoot() -> Bool {
        let ratio = Double(bitPattern: ratioBits.load(ordering: .relaxed))
        return ratio >= 1 || (ratio > 0 && Double.random(in: 0..<1) < ratio)
    }

    /// Runs `body` in a child span of the current span; directly when there is none (tracing
    /// off, or a request whose trace is not recorded). `startsTrace`: work that may begin a trace
    /// of its own (a webhook delivery, a mail from the job queue) — outside any span it starts one,
    /// sampled as requests are.
    public static func span<T>(
        _ name: String,
        kind: SpanKind = .internal,
        startsTrace: Bool = false,
        isolation: isolated (any Actor)? = #isolation,
        attributes: (inout SpanAttributes) -> Void = { _ in },
        _ body: () async throws -> T
    ) async rethrows -> T {
        guard isOn, ServiceContext.current != nil || (startsTrace && sampleRoot()) else { return try await body() }
        return try await withSpan(name, ofKind: kind, isolation: isolation) { span in
            span.updateAttributes(attributes)
            return try await body()
        }
    }

    /// Whether a database call now gets a span: inside another span only (background polling
    /// would otherwise send a root span every second). The stores ask first, so their hot path
    /// takes no generic closure while tracing is off.
    public static var databaseSpans: Bool { isOn && ServiceContext.current != nil }

    /// A child span around a database call, with the statement text (values are bound, never
    /// in it). Callers check `databaseSpans` first.
    public static func database<T>(
        _ system: String,
        _ operation: String,
        _ statements: @autoclosure () -> String,
        isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> T
    ) async rethrows -> T {
        guard databaseSpans else { return try await body() }
        let text = statements()
        return try await span(
            "\(system) \(operation)",
            kind: .client,
            isolation: isolation,
            attributes: {
                $0["db.system.name"] = system
                $0["db.operation.name"] = operation
                $0["db.query.text"] = String(text.prefix(4_096))
            },
            body
        )
    }
}
