import Metrics

/// The gateway's metrics, with handles created once and cached.
///
/// Names as in SPEC.md: `webhook_gateway_requests_total{source,outcome}`,
/// `webhook_gateway_queue_depth{consumer}` (more follow with delivery).
struct GatewayMetrics: Sendable {
    enum RequestOutcome: String, CaseIterable, Sendable {
        case accepted
        case duplicate
        case unauthorized
        case tooLarge = "too_large"
        case unavailable
    }

    private let requests: [String: [RequestOutcome: Counter]]
    private let queueDepths: [String: Gauge]

    init(sources: [String], consumers: [String], factory: any MetricsFactory) {
        var requests: [String: [RequestOutcome: Counter]] = [:]
        for source in sources {
            for outcome in RequestOutcome.allCases {
                requests[source, default: [:]][outcome] = Counter(
                    label: "webhook_gateway_requests_total",
                    dimensions: [("source", source), ("outcome", outcome.rawValue)],
                    factory: factory
                )
            }
        }
        self.requests = requests
        var depths: [String: Gauge] = [:]
        for consumer in consumers {
            depths[consumer] = Gauge(label: "webhook_gateway_queue_depth", dimensions: [("consumer", consumer)], factory: factory)
        }
        self.queueDepths = depths
    }

    func request(source: String, outcome: RequestOutcome) {
        requests[source]?[outcome]?.increment()
    }

    func queueDepth(consumer: String, depth: Int) {
        queueDepths[consumer]?.record(depth)
    }
}
