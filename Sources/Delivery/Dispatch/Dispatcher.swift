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
                if let old = workers.byName.updateValue(worker, forKey: endpoint.name) { retired.append(old) }
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

/// The delivery loop of one consumer.
///
/// All decisions (how many to lease, pause, probe) are made by one loop that owns the state and
/// reacts to signals: a wake-up (new deliveries, or finished attempts), a timer tick (a retry
/// came due, or a poll), or stop. Finished attempts leave their reports in a list that the loop
/// takes whole, so that while one lease transaction commits, every delivery that finishes in the
/// meantime is replaced by the next one: leases are taken in batches, not one by one.
final class ConsumerWorker: Sendable {
    enum Signal: Sendable {
        case wake
        case tick
        case stop
    }

    struct AttemptReport: Sendable {
        enum Result: Sendable {
            /// The consumer answered and the outcome is stored.
            case answered(AttemptClass)
            /// The outcome could not be stored, or the attempt was cancelled: the lease stays until
            /// it expires or the next start releases it, then the delivery goes again.
            case abandoned
            /// The request could not be sent at all; the delivery is dead-lettered and the
            /// consumer's health is unchanged.
            case unsendable
        }

        var result: Result
        var wasProbe: Bool
        var retryAfter: Duration?
        var nextAttemptAt: Date?
    }

    struct LoopState {
        var inFlight = 0
        var consecutiveFailures = 0
        var paused = false
        var failedProbes = 0
        var nextProbeAt = Date.distantPast
        var earliestRetry: Date?
        var stopping = false
        var storeFailing = false
        var timer: Task<Void, Never>?
        var timerDeadline: Date?
    }

    let endpoint: ConsumerEndpoint
    let store: any DeliveryQueue
    /// The consumer's connection pool. A probe of a paused consumer connects with a new pool
    /// (a pool that saw many failed connects backs off reconnecting for up to a minute, which
    /// would make the probe fail long after the consumer is back); when the probe succeeds, its
    /// pool replaces this one.
    let client: Mutex<HTTPClient>
    let makeClient: @Sendable () -> HTTPClient
    let observer: any DispatchObserver
    let logger: Logger
    let now: @Sendable () -> Date
    let pollInterval: Duration
    let onDeadLetterDecided: @Sendable () -> Void
    let signals: AsyncStream<Signal>
    let continuation: AsyncStream<Signal>.Continuation
    /// Whether a wake-up is queued already (wake-ups are coalesced).
    let wakePending = Atomic<Bool>(false)
    /// Reports of finished attempts, not yet seen by the loop.
    let reports = Mutex<[AttemptReport]>([])
    let paused = Atomic<Bool>(false)

    init(
        endpoint: ConsumerEndpoint,
        store: any DeliveryQueue,
        makeClient: @escaping @Sendable () -> HTTPClient,
        observer: any DispatchObserver,
        logger: Logger,
        now: @escaping @Sendable () -> Date,
        pollInterval: Duration,
        onDeadLetterDecided: @escaping @Sendable () -> Void
    ) {
        self.endpoint = endpoint
        self.store = store
        self.client = Mutex(makeClient())
        self.makeClient = makeClient
        self.observer = observer
        var logger = logger
        logger[metadataKey: "consumer"] = "\(endpoint.name)"
        self.logger = logger
        self.now = now
        self.pollInterval = pollInterval
        self.onDeadLetterDecided = onDeadLetterDecided
        (signals, continuation) = AsyncStream.makeStream(of: Signal.self)
    }

    var isPaused: Bool { paused.load(ordering: .relaxed) }

    func wake() {
        if !wakePending.exchange(true, ordering: .acquiringAndReleasing) {
            continuation.yield(.wake)
        }
    }

    func stop() {
        continuation.yield(.stop)
    }

    /// How long a lease lasts: longer than any attempt can take.
    var leaseDuration: TimeInterval { TimeInterval(endpoint.timeout.milliseconds) / 1_000 + 60 }

    func run() async {
        var state = LoopState()
        await withDiscardingTaskGroup { group in
            var iterator = signals.makeAsyncIterator()
            while true {
                if !state.stopping { await fill(&state, group: &group) }
                if state.stopping && state.inFlight == 0 { break }
                armTimer(&state)
                guard let signal = await iterator.next() else { break }
                handle(signal, &state)
                for report in reports.withLock({ reports in
                    defer { reports.removeAll(keepingCapacity: true) }
                    return reports
                }) {
                    handle(report, &state)
                }
            }
            state.timer?.cancel()
        }
    }

    /// Leases as many deliveries as there is room for and starts them.
    private func fill(_ state: inout LoopState, group: inout DiscardingTaskGroup) async {
        while true {
            let capacity: Int
            if state.paused {
                capacity = state.inFlight == 0 && now() >= state.nextProbeAt ? 1 : 0
            } else {
                capacity = endpoint.concurrency - state.inFlight
            }
            guard capacity > 0 else { return }
            let at = now()
            let claimed: [ClaimedDelivery]
            do {
                claimed = try await store.claim(
                    consumer: endpoint.name,
                    limit: capacity,
                    now: at,
                    leaseUntil: at.addingTimeInterval(leaseDuration),
                    ignoringSchedule: state.paused
                )
                if state.storeFailing {
                    state.storeFailing = false
                    logger.info("store is back; delivering again")
                }
            } catch {
                if !state.storeFailing {
                    logger.error("cannot lease deliveries; retrying", metadata: ["error": "\(error)"])
                }
                state.storeFailing = true
                return
            }
            let isProbe = state.paused
            for delivery in claimed {
                state.inFlight += 1
                if isProbe {
                    logger.info("probing paused consumer", metadata: ["event.id": "\(delivery.eventID)"])
                }
                group.addTask {
                    let report = await self.attempt(delivery, isProbe: isProbe)
                    self.reports.withLock { $0.append(report) }
                    self.wake()
                }
            }
            if claimed.count < capacity || isProbe { return }
        }
    }

    /// Makes sure a tick comes by the time something may be due: a retry, the next probe, or the
    /// poll interval (which also covers deliveries queued without a wake-up).
    private func armTimer(_ state: inout LoopState) {
        guard !state.stopping else { return }
        let current = now()
        var deadline = current.addingTimeInterval(TimeInterval(pollInterval.milliseconds) / 1_000)
        if state.paused {
            if state.inFlight > 0 { return }
            deadline = min(deadline, state.nextProbeAt)
        } else {
            if state.inFlight >= endpoint.concurrency { return }
            if let retry = state.earliestRetry {
                if retry <= current {
                    state.earliestRetry = nil
                } else {
                    deadline = min(deadline, retry)
                }
            }
        }
        if let armed = state.timerDeadline, armed <= deadline { return }
        state.timer?.cancel()
        state.timerDeadline = deadline
        let delay = max(0, deadline.timeIntervalSince(current))
        let continuation = self.continuation
        state.timer = Task {
            do {
                try await Task.sleep(for: .milliseconds(Int64(delay * 1_000) + 1))
                continuation.yield(.tick)
            } catch {}
        }
    }

    private func handle(_ signal: Signal, _ state: inout LoopState) {
        switch signal {
        case .wake:
            wakePending.store(false, ordering: .releasing)
        case .tick:
            state.timerDeadline = nil
            state.timer = nil
        case .stop:
            state.stopping = true
            state.timer?.cancel()
        }
    }

    private func handle(_ report: AttemptReport, _ state: inout LoopState) {
        state.inFlight -= 1
        guard case .answered(let outcome) = report.result else { return }
        switch outcome {
        case .delivered, .permanent:
            // The consumer is up (a refusal of one event says nothing about the others).
            state.consecutiveFailures = 0
            if state.paused {
                state.paused = false
                state.failedProbes = 0
                paused.store(false, ordering: .relaxed)
                observer.pauseChanged(consumer: endpoint.name, paused: false)
                logger.notice("consumer answered a probe; resuming its queue")
            }
        case .retryable:
            state.consecutiveFailures += 1
            if let next = report.nextAttemptAt {
                state.earliestRetry = min(state.earliestRetry ?? next, next)
            }
            if state.paused {
                if report.wasProbe {
                    state.failedProbes += 1
                    scheduleProbe(&state, retryAfter: report.retryAfter)
                }
            } else if state.consecutiveFailures >= endpoint.pauseAfterFailures {
                state.paused = true
                state.failedProbes = 1
                paused.store(true, ordering: .relaxed)
                scheduleProbe(&state, retryAfter: report.retryAfter)
                observer.pauseChanged(consumer: endpoint.name, paused: true)
                logger.warning(
                    "consumer paused after consecutive failures; probing with one delivery at a time",
                    metadata: ["failures": "\(state.consecutiveFailures)"]
                )
            }
        }
    }

    private func scheduleProbe(_ state: inout LoopState, retryAfter: Duration?) {
        let delay = endpoint.retry.delay(afterAttempt: state.failedProbes, retryAfter: retryAfter)
        state.nextProbeAt = now().addingTimeInterval(TimeInterval(delay.milliseconds) / 1_000)
    }

    /// One attempt: post, classify, store the outcome.
    func attempt(_ delivery: ClaimedDelivery, isProbe: Bool) async -> AttemptReport {
        let number = delivery.attempts.count + 1
        let startedAt = now()
        let headers = DeliveryHeaders(
            eventID: delivery.eventID,
            source: delivery.source,
            eventType: delivery.eventType ?? "",
            dedupKey: delivery.dedupKey,
            attempt: number,
            timestamp: Int64(startedAt.timeIntervalSince1970),
            body: delivery.body,
            signer: endpoint.signer
        )
        var request = HTTPClientRequest(url: endpoint.url)
        request.method = .POST
        for (name, value) in headers.fields {
            request.headers.add(name: name, value: value)
        }
        request.body = .bytes(ByteBuffer(bytes: delivery.body))

        let client = isProbe ? makeClient() : self.client.withLock { $0 }
        let answer: Exchange
        do {
            answer = try await exchange(request, client: client)
        } catch {
            if isProbe { Task { try? await client.shutdown() } }
            return AttemptReport(result: .abandoned, wasProbe: isProbe)
        }
        if isProbe {
            if let status = answer.status, AttemptClass(status: status) != .retryable {
                // The consumer is back: keep the fresh pool, drop the old one.
                let old = self.client.withLock { current in
                    defer { current = client }
                    return current
                }
                Task { try? await old.shutdown() }
            } else {
                Task { try? await client.shutdown() }
            }
        }
        if let unsendable = answer.unsendable {
            // The request never left: this delivery cannot be sent as it is, and the consumer's
            // health is not in question. Dead-letter it at once.
            var attempts = delivery.attempts
            attempts.append(DeadLetter.Attempt(at: startedAt, status: nil, error: unsendable))
            let update = DeliveryUpdate.deadLetter(
                id: delivery.id, attempts: attempts, reason: "cannot be sent: \(unsendable)", at: now())
            do {
                try await store.finish([update])
            } catch {
                logger.error(
                    "cannot record a delivery outcome; it will be sent again",
                    metadata: ["event.id": "\(delivery.eventID)", "error": "\(error)"]
                )
                return AttemptReport(result: .abandoned, wasProbe: isProbe)
            }
            logger.warning(
                "delivery cannot be sent; dead-lettering",
                metadata: ["event.id": "\(delivery.eventID)", "attempt": "\(number)", "error": "\(unsendable)"]
            )
            onDeadLetterDecided()
            return AttemptReport(result: .unsendable, wasProbe: isProbe)
        }
        let status = answer.status
        let failure = answer.failure
        let retryAfter = answer.retryAfter

        let outcome = AttemptClass(status: status)
        var attempts = delivery.attempts
        attempts.append(DeadLetter.Attempt(at: startedAt, status: status, error: status == nil ? failure : nil))
        let finishedAt = now()
        let update: DeliveryUpdate
        var nextAttemptAt: Date?
        switch outcome {
        case .delivered:
            update = .delivered(id: delivery.id)
        case .retryable where number < endpoint.retry.maxAttempts:
            let delay = endpoint.retry.delay(afterAttempt: number, retryAfter: retryAfter)
            let next = finishedAt.addingTimeInterval(TimeInterval(delay.milliseconds) / 1_000)
            nextAttemptAt = next
            update = .retry(id: delivery.id, attempts: attempts, nextAttemptAt: next)
        case .retryable:
            update = .deadLetter(id: delivery.id, attempts: attempts, reason: "max attempts", at: finishedAt)
        case .permanent:
            update = .deadLetter(
                id: delivery.id, attempts: attempts, reason: "not retryable: status \(status ?? 0)", at: finishedAt)
        }
        do {
            try await store.finish([update])
        } catch {
            logger.error(
                "cannot record a delivery outcome; it will be sent again",
                metadata: ["event.id": "\(delivery.eventID)", "error": "\(error)"]
            )
            return AttemptReport(result: .abandoned, wasProbe: isProbe)
        }
        let metadata: Logger.Metadata = [
            "event.id": "\(delivery.eventID)", "attempt": "\(number)",
            "status": "\(status.map(String.init) ?? "none")",
        ]
        switch update {
        case .delivered:
            let latency = finishedAt.timeIntervalSince(delivery.receivedAt)
            observer.delivered(consumer: endpoint.name, latency: .milliseconds(Int64(max(0, latency) * 1_000)))
            logger.debug("delivered", metadata: metadata)
        case .retry(_, _, let next):
            observer.retried(consumer: endpoint.name)
            logger.notice(
                "delivery failed; will retry",
                metadata: metadata.merging(
                    ["error": "\(failure ?? "-")", "retryAt": "\(DeadLetter.rfc3339(next))"], uniquingKeysWith: { $1 })
            )
        case .deadLetter(_, _, let reason, _):
            logger.warning(
                "delivery failed for good; dead-lettering",
                metadata: metadata.merging(["reason": "\(reason)", "error": "\(failure ?? "-")"], uniquingKeysWith: { $1 })
            )
            onDeadLetterDecided()
        }
        return AttemptReport(result: .answered(outcome), wasProbe: isProbe, retryAfter: retryAfter, nextAttemptAt: nextAttemptAt)
    }

    /// What one exchange with the consumer gave.
    struct Exchange: Sendable {
        /// The consumer's status, once its response head arrived (it stands even if the body then
        /// broke off); `nil` when there was no answer in time.
        var status: Int?
        var retryAfter: Duration?
        /// Why there was no answer (connection refused, timeout, …).
        var failure: String?
        /// Set when the request could not be sent at all (the HTTP client refused it before
        /// anything left): the delivery's own fault, not the consumer's.
        var unsendable: String?
    }

    /// Posts `request` and reads the whole answer within the consumer's `timeout`: connecting,
    /// sending, the response head and the response body. AsyncHTTPClient's deadline covers only
    /// the part before the head, so the body is read in a child task that a sibling cancels at
    /// the deadline; a consumer that answers its status and then stalls counts as a timeout.
    ///
    /// Throws only when the attempt itself was cancelled (shutdown).
    func exchange(_ request: HTTPClientRequest, client: HTTPClient) async throws -> Exchange {
        let timeout = endpoint.timeout
        let now = self.now
        let answer = try await withThrowingTaskGroup(of: Exchange?.self) { group in
            group.addTask {
                var answer = Exchange()
                do {
                    let response = try await client.execute(request, timeout: .milliseconds(timeout.milliseconds))
                    answer.status = Int(response.status.code)
                    if let value = response.headers.first(name: "retry-after") {
                        answer.retryAfter = RetryAfter.parse(value, now: now())
                    }
                    // Read the (ignored) body to the end so the connection goes back to the pool.
                    for try await _ in response.body {}
                } catch {
                    if Task.isCancelled { return nil }
                    if answer.status == nil {
                        if let reason = Self.unsendableReason(error) {
                            answer.unsendable = reason
                        } else {
                            answer.failure = Self.describe(error)
                        }
                    }
                }
                return answer
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        try Task.checkCancellation()
        // No answer before the deadline (the sleeper finished first): a timeout, even when the
        // status line had arrived and only the body was missing.
        return answer ?? Exchange(status: nil, failure: "timeout")
    }

    /// Why the HTTP client refused to send a request at all, or `nil` if the error came from the
    /// exchange. The reason never holds the refused value (it could be part of a signature).
    static func unsendableReason(_ error: any Error) -> String? {
        guard let error = error as? HTTPClientError else { return nil }
        switch error {
        case .invalidURL, .emptyHost, .emptyScheme, .missingSocketPath: return "the consumer URL is invalid"
        case .bodyLengthMismatch, .identityCodingIncorrectlyPresent:
            return "the HTTP client refused the request framing"
        default:
            // These two carry the refused values, so they are told apart by their case name only.
            let text = String(describing: error)
            if text.contains("invalidHeaderFieldValues") { return "the HTTP client refused a header value" }
            if text.contains("invalidHeaderFieldNames") { return "the HTTP client refused a header name" }
            return nil
        }
    }

    /// A short description of a failed attempt for the dead-letter line: never a secret (the
    /// request's headers are not part of any client error).
    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout: return "timeout"
            case .connectTimeout: return "connect timeout"
            case .remoteConnectionClosed: return "connection closed by the consumer"
            default: return "\(error)"
            }
        }
        let text = String(describing: error)
        if text.localizedCaseInsensitiveContains("refused") { return "connection refused" }
        return text.isEmpty ? "no response" : text
    }
}
