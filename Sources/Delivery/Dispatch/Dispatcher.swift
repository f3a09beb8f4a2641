import AsyncHTTPClient
public import Foundation
public import Logging
import NIOCore
import NIOHTTP1
public import ServiceLifecycle
import Synchronization
public import Verification

/// A consumer as the dispatcher sees it.
public struct ConsumerEndpoint: Sendable {
    public var name: String
    public var url: String
    public var signer: StandardWebhooksSigner
    public var timeout: Duration
    public var concurrency: Int
    public var retry: RetryPolicy
    /// Consecutive retryable failures after which the consumer is paused and probed.
    public var pauseAfterFailures: Int

    public init(
        name: String,
        url: String,
        signer: StandardWebhooksSigner,
        timeout: Duration,
        concurrency: Int,
        retry: RetryPolicy,
        pauseAfterFailures: Int = 5
    ) {
        self.name = name
        self.url = url
        self.signer = signer
        self.timeout = timeout
        self.concurrency = concurrency
        self.retry = retry
        self.pauseAfterFailures = pauseAfterFailures
    }
}

/// What the dispatcher reports, for metrics.
public protocol DispatchObserver: Sendable {
    /// A delivery got a 2xx; `latency` runs from the event's receipt to the consumer's answer.
    func delivered(consumer: String, latency: Duration)
    /// An attempt failed and the delivery will be tried again.
    func retried(consumer: String)
    /// The consumer was paused (probing one delivery at a time) or resumed.
    func pauseChanged(consumer: String, paused: Bool)
    /// The same, saying whether another gateway on the shared store paused it or got the probe
    /// through (`elsewhere`), so that what one change reports is reported once.
    func pauseChanged(consumer: String, paused: Bool, elsewhere: Bool)
}

extension DispatchObserver {
    public func pauseChanged(consumer: String, paused: Bool, elsewhere: Bool) {
        pauseChanged(consumer: consumer, paused: paused)
    }
}

/// Delivers stored events to their consumers: one worker per consumer, each leasing deliveries
/// from the durable queue, posting them with pooled keep-alive connections, and recording the
/// outcome before it takes the next.
///
/// On graceful shutdown the workers stop leasing and wait for the deliveries in flight (each is
/// bounded by its consumer's `timeout`); their outcomes are stored before `run` returns, so a
/// delivery that completed is not sent again after a restart. Leases left by a crash are released
/// at startup, so what was in flight is sent again (at least once, never lost).
public final class Dispatcher: Service, Sendable {
    /// The workers by consumer, and where `run` is: before it, workers are only recorded (`run`
    /// starts them all); while it runs, a new worker goes to it through `started`; after graceful
    /// shutdown began, nothing is replaced any more.
    struct Workers {
        var byName: [String: ConsumerWorker]
        var running = false
        var stopped = false
    }

    let workers: Mutex<Workers>
    let store: any DeliveryQueue
    let logger: Logger
    let makeWorker: @Sendable (ConsumerEndpoint) -> ConsumerWorker
    /// Workers started after `run` began (by ``replace(endpoints:)``).
    let started: AsyncStream<ConsumerWorker>
    let startedContinuation: AsyncStream<ConsumerWorker>.Continuation

    public init(
        consumers: [ConsumerEndpoint],
        store: any DeliveryQueue,
        observer: any DispatchObserver,
        logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() },
        pollInterval: Duration = .seconds(1),
        connectTimeout: Duration = .seconds(5),
        leaseMargin: Duration = .seconds(60),
        onDeadLetterDecided: @escaping @Sendable () -> Void
    ) {
        let makeClient: @Sendable (Int) -> HTTPClient = { concurrency in
            var configuration = HTTPClient.Configuration(
                redirectConfiguration: .disallow,
                timeout: .init(connect: .milliseconds(connectTimeout.milliseconds)),
                connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency)
            )
            configuration.httpVersion = .http1Only
            // No distributed tracing: a span per delivery costs CPU and nothing consumes it.
            configuration.tracing.tracer = nil
            return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        }
        self.store = store
        self.logger = logger
        self.makeWorker = { endpoint in
            ConsumerWorker(
                endpoint: endpoint,
                store: store,
                makeClient: { makeClient(endpoint.concurrency) },
                observer: observer,
                logger: logger,
                now: now,
                pollInterval: pollInterval,
                leaseMargin: leaseMargin,
                onDeadLetterDecided: onDeadLetterDecided
            )
        }
        var workers: [String: ConsumerWorker] = [:]
        for endpoint in consumers {
            workers[endpoint.name] = makeWorker(endpoint)
        }
        self.workers = Mutex(Workers(byName: workers))
        (started, startedContinuation) = AsyncStream.makeStream(of: ConsumerWorker.self)
    }

    /// Tells the workers of these consumers that new deliveries may be waiting. Cheap; callable
    /// from any thread.
    public func wake(consumers: some Sequence<String>) {
        workers.withLock { workers in
            for consumer in consumers { workers.byName[consumer]?.wake() }
        }
    }

    /// Tells every worker that new deliveries may be waiting.
    public func wakeAll() {
        workers.withLock { workers in
            for worker in workers.byName.values { worker.wake() }
        }
    }

    /// What the admin API shows of a consumer's worker.
    public struct ConsumerStatus: Sendable {
        public var endpoint: ConsumerEndpoint
        /// Paused after failures (only probes go out).
        public var pausedByFailures: Bool
        public var activity: ConsumerActivity
    }

    /// Every configured consumer's status, by name.
    public func statuses() -> [String: ConsumerStatus] {
        workers.withLock { workers in
            workers.byName.mapValues { worker in
                ConsumerStatus(
                    endpoint: worker.endpoint, pausedByFailures: worker.isPaused, activity: worker.activity.withLock { $0 })
            }
        }
    }

    /// An operator paused (`held`) or resumed `consumer` through this gateway, and the store has
    /// it: the worker sends nothing more it had leased (a resume: delivers or probes at once).
    public func operatorPaused(consumer: String, held: Bool) {
        workers.withLock { $0.byName[consumer]?.operatorPaused(held) }
    }

    /// Whether `consumer` is paused (only probes go out).
    public func isPaused(consumer: String) -> Bool {
        workers.withLock { $0.byName[consumer]?.isPaused ?? false }
    }

    /// Applies new settings to configured consumers while running (a configuration reload): each
    /// of `endpoints` gets a new worker with its settings.
    ///
    /// The worker it replaces stops leasing and finishes the deliveries it has in flight (with the
    /// settings they started with); nothing queued is dropped. The new worker starts at once: the
    /// in-flight deliveries are leased, so it does not send them twice, and their orders wait for
    /// them as always. Once graceful shutdown has begun this does nothing.
    public func replace(endpoints: [ConsumerEndpoint]) async {
        let (retired, fresh, running) = workers.withLock { workers -> ([ConsumerWorker], [ConsumerWorker], Bool) in
            guard !workers.stopped else { return ([], [], false) }
            var retired: [ConsumerWorker] = []
            var fresh: [ConsumerWorker] = []
            for endpoint in endpoints {
                let worker = makeWorker(endpoint)
                if let old = workers.byName.updateValue(worker, forKey: endpoint.name) {
                    // What the admin API shows of the consumer carries over to the new worker.
                    worker.activity.withLock { $0 = old.activity.withLock { $0 } }
                    worker.held.store(old.isHeld, ordering: .relaxed)
                    retired.append(old)
                }
                fresh.append(worker)
            }
            return (retired, fresh, workers.running)
        }
        guard running else {
            // Before `run`: the new workers start with it, and the replaced ones never ran, so
            // only their connection pools are left to close.
            for worker in retired { try? await worker.client.withLock { $0 }.shutdown() }
            return
        }
        for worker in retired { worker.stop() }
        for worker in fresh {
            if case .terminated = startedContinuation.yield(worker) {
                // Shutdown began meanwhile: this worker never runs, but its pool must be closed.
                try? await worker.client.withLock { $0 }.shutdown()
            }
        }
    }

    public func run() async throws {
        do {
            let released = try await store.releaseAllLeases()
            if released > 0 {
                logger.warning("deliveries that were in flight at the last stop will be sent again", metadata: ["count": "\(released)"])
            }
        } catch {
            // Leases expire on their own; this only delays those deliveries.
            logger.error("cannot release old leases", metadata: ["error": "\(error)"])
        }
        let initial = workers.withLock { workers in
            workers.running = true
            return Array(workers.byName.values)
        }
        let started = self.started
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for worker in initial {
                    group.addTask { await Self.runToEnd(worker) }
                }
                for await worker in started {
                    group.addTask { await Self.runToEnd(worker) }
                }
            }
        } onGracefulShutdown: {
            // No worker starts after this; the current ones finish what is in flight.
            let current = self.workers.withLock { workers in
                workers.stopped = true
                return Array(workers.byName.values)
            }
            self.startedContinuation.finish()
            for worker in current { worker.stop() }
        }
    }

    private static func runToEnd(_ worker: ConsumerWorker) async {
        await worker.run()
        try? await worker.client.withLock { $0 }.shutdown()
    }
}
