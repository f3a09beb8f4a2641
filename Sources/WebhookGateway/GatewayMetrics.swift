import Delivery
import Metrics

/// The gateway's metrics, with handles created once and cached.
///
/// Names as in SPEC.md: `webhook_gateway_requests_total{source,outcome}`,
/// `webhook_gateway_queue_depth{consumer}`, `webhook_gateway_dead_letters_total{consumer}` and
/// `webhook_gateway_deliveries_total{consumer,outcome}` (outcome `delivered`, `retried`,
/// `dead_lettered`). Besides those: `webhook_gateway_delivery_latency_seconds{consumer}`, a
/// histogram from an event's receipt to its consumer's 2xx, and `webhook_gateway_consumer_paused{consumer}`
/// (1 while the consumer is paused and probed), and `webhook_gateway_sandbox_requests_total{source,outcome}`
/// (outcome `accepted` or `duplicate`): the TikTok sandbox events among the requests, counted
/// apart so that a team testing payments can see its traffic, and production is the difference;
/// `webhook_gateway_dedup_rule_fallbacks_total{source}`: events a `dedup.keys` rule applied to but
/// that lacked one of its fields, so they were keyed by their body's hash (a rule that names a
/// field its events do not have).
struct GatewayMetrics: DispatchObserver, Sendable {
    enum RequestOutcome: String, CaseIterable, Sendable {
        case accepted
        case duplicate
        case unauthorized
        /// A correct signature whose timestamp is outside the tolerance (still 401).
        case stale
        case tooLarge = "too_large"
        case unavailable
    }

    private let requests: [String: [RequestOutcome: Counter]]
    private let sandboxRequests: [String: [RequestOutcome: Counter]]
    private let ruleFallbacks: [String: Counter]
    private let queueDepths: [String: Gauge]
    private let deadLetters: [String: Counter]
    private let deliveries: [String: [DeliveryOutcome: Counter]]
    private let latencies: [String: Metrics.Timer]
    private let pausedGauges: [String: Gauge]

    enum DeliveryOutcome: String, CaseIterable, Sendable {
        case delivered
        case retried
        case deadLettered = "dead_lettered"
    }

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
        var sandboxRequests: [String: [RequestOutcome: Counter]] = [:]
        for source in sources {
            for outcome in [RequestOutcome.accepted, .duplicate] {
                sandboxRequests[source, default: [:]][outcome] = Counter(
                    label: "webhook_gateway_sandbox_requests_total",
                    dimensions: [("source", source), ("outcome", outcome.rawValue)],
                    factory: factory
                )
            }
        }
        self.sandboxRequests = sandboxRequests
        var ruleFallbacks: [String: Counter] = [:]
        for source in sources {
            ruleFallbacks[source] = Counter(
                label: "webhook_gateway_dedup_rule_fallbacks_total", dimensions: [("source", source)], factory: factory)
        }
        self.ruleFallbacks = ruleFallbacks
        var depths: [String: Gauge] = [:]
        for consumer in consumers {
            depths[consumer] = Gauge(label: "webhook_gateway_queue_depth", dimensions: [("consumer", consumer)], factory: factory)
        }
        self.queueDepths = depths
        var deadLetters: [String: Counter] = [:]
        var deliveries: [String: [DeliveryOutcome: Counter]] = [:]
        for consumer in consumers {
            deadLetters[consumer] = Counter(
                label: "webhook_gateway_dead_letters_total", dimensions: [("consumer", consumer)], factory: factory)
            for outcome in DeliveryOutcome.allCases {
                deliveries[consumer, default: [:]][outcome] = Counter(
                    label: "webhook_gateway_deliveries_total",
                    dimensions: [("consumer", consumer), ("outcome", outcome.rawValue)],
                    factory: factory
                )
            }
        }
        self.deadLetters = deadLetters
        self.deliveries = deliveries
        var latencies: [String: Metrics.Timer] = [:]
        var pausedGauges: [String: Gauge] = [:]
        for consumer in consumers {
            latencies[consumer] = Metrics.Timer(
                label: "webhook_gateway_delivery_latency_seconds", dimensions: [("consumer", consumer)], factory: factory)
            pausedGauges[consumer] = Gauge(
                label: "webhook_gateway_consumer_paused", dimensions: [("consumer", consumer)], factory: factory)
            pausedGauges[consumer]?.record(0)
        }
        self.latencies = latencies
        self.pausedGauges = pausedGauges
    }

    func delivered(consumer: String, latency: Duration) {
        deliveries[consumer]?[.delivered]?.increment()
        latencies[consumer]?.recordNanoseconds(latency.milliseconds * 1_000_000)
    }

    func retried(consumer: String) {
        deliveries[consumer]?[.retried]?.increment()
    }

    func pauseChanged(consumer: String, paused: Bool) {
        pausedGauges[consumer]?.record(paused ? 1 : 0)
    }

    /// `count` deliveries of `consumer` became dead letters.
    func deadLettered(consumer: String, count: Int) {
        deadLetters[consumer]?.increment(by: count)
        deliveries[consumer]?[.deadLettered]?.increment(by: count)
    }

    /// A request's outcome; a TikTok sandbox event is also counted in the sandbox counter.
    func request(source: String, outcome: RequestOutcome, sandbox: Bool = false) {
        requests[source]?[outcome]?.increment()
        if sandbox { sandboxRequests[source]?[outcome]?.increment() }
    }

    /// An event of `source` that a `dedup.keys` rule applied to was keyed by its body's hash.
    func dedupRuleFellBack(source: String) {
        ruleFallbacks[source]?.increment()
    }

    func queueDepth(consumer: String, depth: Int) {
        queueDepths[consumer]?.record(depth)
    }
}
