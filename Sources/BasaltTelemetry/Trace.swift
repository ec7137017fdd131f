import Synchronization
public import Tracing

/// Spans for OpenTelemetry (swift-distributed-tracing), when a tracer is installed: `basalt
/// serve` with `OTEL_*` set bootstraps one and calls `enable()`. Until then every helper here
/// runs its body directly — no span, no task-local, no lock — so tracing that is off costs an
/// atomic load.
public enum Trace {
    static let enabled = Atomic<Bool>(false)

    /// Spans from now on go to the tracer of `InstrumentationSystem`.
    public static func enable() { enabled.store(true, ordering: .releasing) }
    public static var isOn: Bool { enabled.load(ordering: .acquiring) }

    /// Runs `body` in a child span of the current one (or a root span), named `name`.
    public static func span<T>(
        _ name: String,
        kind: SpanKind = .internal,
        isolation: isolated (any Actor)? = #isolation,
        attributes: (inout SpanAttributes) -> Void = { _ in },
        _ body: () async throws -> T
    ) async rethrows -> T {
        guard isOn else { return try await body() }
        return try await withSpan(name, ofKind: kind, isolation: isolation) { span in
            span.updateAttributes(attributes)
            return try await body()
        }
    }

    /// A child span around a database call, with the statement text (values are bound, never
    /// in it).
    public static func database<T>(
        _ system: String,
        _ operation: String,
        _ statements: @autoclosure () -> String,
        isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> T
    ) async rethrows -> T {
        // Only inside a request's (or a delivery's) span: background polling would otherwise send
        // a root span every second.
        guard isOn, ServiceContext.current != nil else { return try await body() }
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
