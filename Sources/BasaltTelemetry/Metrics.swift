import Foundation
import Prometheus
import Synchronization

/// What a Basalt process counts and measures, exposed as Prometheus text at `GET /metrics`
/// (API.md §1). One instance per runtime, handed to the store, the HTTP edge and the services
/// (never the process-global swift-metrics bootstrap, which a test process starting dozens of
/// runtimes could set only once).
///
/// Label values are bounded by construction: HTTP methods outside the standard set count as
/// `other`, routes are the router's templates (`/v1/:collection/:id`, or `unmatched`), statuses
/// are classes (`2xx`), database operations one of a fixed set. No raw path, id or user input
/// ever becomes a label, so a client cannot grow the exposition.
public final class Metrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let requestsInFlight: Gauge
    let retries: Counter
    let handles = Mutex<[RequestKey: RequestHandles]>([:])
    /// By `StoreOperation.index`.
    let queries: [(histogram: DurationHistogram, inFlight: Gauge)]

    struct RequestKey: Hashable {
        var method: String
        var route: String
        var status: String
    }

    struct RequestHandles {
        var count: Counter
        var duration: DurationHistogram
    }

    /// Request buckets: 1 ms to 10 s.
    static let requestBuckets: [Duration] = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000].map {
        .microseconds(Int64($0 * 1000))
    }
    /// Database buckets: 0.1 ms to 5 s.
    static let queryBuckets: [Duration] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000, 5000].map {
        .microseconds(Int64($0 * 1000))
    }
    static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    public init() {
        requestsInFlight = registry.makeGauge(
            descriptor: .init(
                namespace: "basalt",
                subsystem: "http",
                metricName: "requests_in_flight",
                unitName: "",
                helpText: "Requests being answered"
            )
        )
        retries = registry.makeCounter(
            descriptor: .init(
                namespace: "basalt",
                subsystem: "db",
                metricName: "transactions_retried",
                unitName: "total",
                helpText: "Write transactions planned again after losing a race (optimistic concurrency)"
            )
        )
        var queries: [(histogram: DurationHistogram, inFlight: Gauge)] = []
        for op in StoreOperation.allCases {
            let labels = [("operation", op.rawValue)]
            queries.append(
                (
                    registry.makeDurationHistogram(
                        descriptor: .init(
                            namespace: "basalt",
                            subsystem: "db",
                            metricName: "operation_duration",
                            unitName: "seconds",
                            helpText: "Database calls (a read query, or a whole write transaction), including the wait for a connection"
                        ),
                        labels: labels,
                        buckets: Self.queryBuckets
                    ),
                    registry.makeGauge(
                        descriptor: .init(
                            namespace: "basalt",
                            subsystem: "db",
                            metricName: "operations_in_flight",
                            unitName: "",
                            helpText: "Database calls holding or waiting for a connection"
                        ),
                        labels: labels
                    )
                )
            )
        }
        self.queries = queries
    }

    // MARK: - HTTP

    public func requestStarted() { requestsInFlight.increment() }

    /// One answered request. `route` is the router's template, or nil when no route matched.
    public func requestFinished(method: String, route: String?, status: Int, duration: Duration) {
        requestsInFlight.decrement()
        let key = RequestKey(
            method: Self.methods.contains(method) ? method : "other",
            route: route ?? "unmatched",
            status: (100...599).contains(status) ? "\(status / 100)xx" : "other"
        )
        let h = handles.withLock { m in
            if let h = m[key] { return h }
            let labels = [("method", key.method), ("route", key.route), ("status_class", key.status)]
            let h = RequestHandles(
                count: registry.makeCounter(
                    descriptor: .init(
                        namespace: "basalt",
                        subsystem: "http",
                        metricName: "requests",
                        unitName: "total",
                        helpText: "Answered requests"
                    ),
                    labels: labels
                ),
                duration: registry.makeDurationHistogram(
                    descriptor: .init(
                        namespace: "basalt",
                        subsystem: "http",
                        metricName: "request_duration",
                        unitName: "seconds",
                        helpText: "Time from the request's head to the response's head"
                    ),
                    labels: labels,
                    buckets: Self.requestBuckets
                )
            )
            m[key] = h
            return h
        }
        h.count.increment()
        h.duration.record(duration)
        if status == 429 { refused(route: key.route) }
    }

    /// Refusals for too many requests (rate limits, sign-in throttling, refused credentials), by route.
    func refused(route: String) {
        registry.makeCounter(
            descriptor: .init(
                namespace: "basalt",
                subsystem: "http",
                metricName: "refused",
                unitName: "total",
                helpText: "Requests refused with 429: rate limits, sign-in throttling, too many bad credentials"
            ),
            labels: [("route", route)]
        ).increment()
    }

    // MARK: - Database

    /// A database call begins: counted in flight until `operationFinished`. Two calls rather
    /// than one taking a closure: the store's hot path stays free of a generic async closure.
    public func operationStarted(_ operation: StoreOperation) -> ContinuousClock.Instant {
        queries[operation.index].inFlight.increment()
        return .now
    }

    public func operationFinished(_ operation: StoreOperation, since start: ContinuousClock.Instant) {
        let q = queries[operation.index]
        q.inFlight.decrement()
        q.histogram.record(.now - start)
    }

    public func transactionRetried() { retries.increment() }

    // MARK: - Exposition

    /// A value read when scraped (queue depth, memory): set just before the text is made.
    public struct Sample: Sendable {
        public var name: String
        public var help: String
        public var labels: [(String, String)]
        public var value: Double
        public init(_ name: String, _ help: String, labels: [(String, String)] = [], _ value: Double) {
            self.name = name
            self.help = help
            self.labels = labels
            self.value = value
        }
    }

    /// The Prometheus text exposition (format 0.0.4) with `samples` set first.
    public func exposition(_ samples: [Sample]) -> [UInt8] {
        for s in samples {
            registry.makeGauge(
                descriptor: .init(metricName: s.name, unitName: "", helpText: s.help),
                labels: s.labels
            ).set(s.value)
        }
        var out: [UInt8] = []
        registry.emit(into: &out)
        return out
    }

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}

/// What a database call was, for `basalt_db_operation_duration_seconds`.
public enum StoreOperation: String, Sendable, CaseIterable {
    case read
    case write
    case migrate

    var index: Int {
        switch self {
        case .read: 0
        case .write: 1
        case .migrate: 2
        }
    }
}
