import Delivery
import Foundation
import GatewayConfiguration
import Logging
import ServiceLifecycle
import Synchronization
import Verification

/// The gateway's own state as events of the reserved source `_gateway` (SPEC: Operational
/// events): `consumer.paused`, `consumer.resumed`, `deadletter.created`, `store.recovered`.
///
/// They are stored and delivered like any event (signed, retried, dead-lettered, through the
/// queue) to the consumers whose `sources` name `_gateway`, and to no others. Reports are cheap and
/// never block the caller: they are queued here and stored by ``run()``. A report that cannot be
/// stored (the store is down) stays queued and is stored when the store is back; the queue is
/// bounded (the oldest report goes first, logged and counted).
///
/// Dead letters are aggregated: at most one `deadletter.created` per consumer per minute. The first
/// dead letters after a quiet minute are reported at once; the ones that follow within the minute
/// wait for its end and go in one event with all their ids. Dead letters of `_gateway` events
/// themselves are not reported (an operations consumer that is down must not feed its own queue).
final class OperationalEvents: Service, Sendable {
    static let deadLetterWindow: TimeInterval = 60
    static let maximumQueued = 10_000
    /// At most this many ids in one `deadletter.created` (its `count` is exact): a consumer that
    /// refuses a thousand events a second must not make a report of megabytes.
    static let maximumReportedIDs = 1_000

    struct Report: Sendable {
        var type: String
        var at: Date
        var fields: [String: Field]
    }

    enum Field: Sendable {
        case text(String)
        case number(Int)
        case texts([String])

        var json: Any {
            switch self {
            case .text(let value): value
            case .number(let value): value
            case .texts(let value): value
            }
        }
    }

    /// Dead letters waiting for the end of their consumer's minute: how many, and the first ids.
    struct WaitingDeadLetters {
        var count = 0
        var ids: [String] = []

        mutating func add(_ more: [String]) {
            count += more.count
            ids += more.prefix(OperationalEvents.maximumReportedIDs - ids.count)
        }
    }

    struct State {
        /// Reports waiting to be stored, oldest first, each with its sequence number (so that
        /// storing one removes that one even if the queue dropped its oldest meanwhile).
        var queued: [(sequence: UInt64, report: Report)] = []
        var nextSequence: UInt64 = 0
        var waitingDeadLetters: [String: WaitingDeadLetters] = [:]
        var lastDeadLetterReport: [String: Date] = [:]
        var unavailableSince: Date?
        var dropped = 0
    }

    private let store: any EventStore
    private let consumers: Reloadable<[GatewayConfiguration.Consumer]>
    private let now: @Sendable () -> Date
    private let onStored: @Sendable (_ consumers: [String]) -> Void
    private let logger: Logger
    private let state = Mutex(State())
    private let signal: AsyncStream<Void>
    private let signalContinuation: AsyncStream<Void>.Continuation

    init(
        store: any EventStore,
        consumers: Reloadable<[GatewayConfiguration.Consumer]>,
        now: @escaping @Sendable () -> Date,
        onStored: @escaping @Sendable (_ consumers: [String]) -> Void,
        logger: Logger
    ) {
        self.store = store
        self.consumers = consumers
        self.now = now
        self.onStored = onStored
        self.logger = logger
        (signal, signalContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    // MARK: Reports

    /// `reason`: `failures` (paused after consecutive failures) or `operator`.
    func consumerPaused(_ consumer: String, reason: String) {
        enqueue(Report(type: "consumer.paused", at: now(), fields: ["consumer": .text(consumer), "reason": .text(reason)]))
    }

    /// `reason`: `recovered` (a probe succeeded) or `operator`.
    func consumerResumed(_ consumer: String, reason: String) {
        enqueue(Report(type: "consumer.resumed", at: now(), fields: ["consumer": .text(consumer), "reason": .text(reason)]))
    }

    /// Dead letters whose lines were written for `consumer`.
    func deadLettersWritten(consumer: String, _ deadLetters: [DeadLetter]) {
        let ids = deadLetters.filter { $0.source != GatewayConfiguration.operationalSource }.map(\.id)
        guard !ids.isEmpty else { return }
        let at = now()
        let report: Report? = state.withLock { state in
            if let last = state.lastDeadLetterReport[consumer], at.timeIntervalSince(last) < Self.deadLetterWindow {
                state.waitingDeadLetters[consumer, default: WaitingDeadLetters()].add(ids)
                return nil
            }
            state.lastDeadLetterReport[consumer] = at
            var now = WaitingDeadLetters()
            now.add(ids)
            return Self.deadLetterReport(consumer: consumer, now, at: at)
        }
        if let report { enqueue(report) }
    }

    /// A write to the store failed (ingest answered 503, say).
    func storeFailed() {
        let at = now()
        state.withLock { state in
            if state.unavailableSince == nil { state.unavailableSince = at }
        }
    }

    /// A write to the store succeeded: after a failure, `store.recovered` is reported.
    func storeSucceeded() {
        guard state.withLock({ $0.unavailableSince != nil }) else { return }
        let at = now()
        let since: Date? = state.withLock { state in
            defer { state.unavailableSince = nil }
            return state.unavailableSince
        }
        guard let since else { return }
        logger.notice("store writable again", metadata: ["unavailableSince": "\(DeadLetter.rfc3339(since))"])
        enqueue(Report(type: "store.recovered", at: at, fields: ["unavailableSince": .text(DeadLetter.rfc3339(since))]))
    }

    private static func deadLetterReport(consumer: String, _ deadLetters: WaitingDeadLetters, at: Date) -> Report {
        Report(
            type: "deadletter.created", at: at,
            fields: ["consumer": .text(consumer), "count": .number(deadLetters.count), "ids": .texts(deadLetters.ids)])
    }

    private func enqueue(_ report: Report) {
        let dropped: Report? = state.withLock { state in
            state.append(report)
            guard state.queued.count > Self.maximumQueued else { return nil }
            state.dropped += 1
            return state.queued.removeFirst().report
        }
        if let dropped {
            logger.error(
                "operational event dropped: too many are waiting for the store",
                metadata: ["type": "\(dropped.type)", "at": "\(DeadLetter.rfc3339(dropped.at))"])
        }
        signalContinuation.yield()
    }

    /// Reports dropped because too many waited for the store.
    var droppedCount: Int { state.withLock { $0.dropped } }

    // MARK: Storing

    /// Moves the dead letters whose minute is over (all of them when `final`: the gateway is
    /// stopping) into reports, then stores every queued report, oldest first. Returns whether
    /// nothing is left queued.
    @discardableResult
    func flush(final: Bool = false) async -> Bool {
        let at = now()
        state.withLock { state in
            for (consumer, waiting) in state.waitingDeadLetters {
                if !final {
                    guard let last = state.lastDeadLetterReport[consumer], at.timeIntervalSince(last) >= Self.deadLetterWindow
                    else { continue }
                }
                state.waitingDeadLetters[consumer] = nil
                state.lastDeadLetterReport[consumer] = at
                state.append(Self.deadLetterReport(consumer: consumer, waiting, at: at))
            }
        }
        while let (sequence, report) = state.withLock({ $0.queued.first }) {
            let targets = consumers.value.filter {
                $0.matches(source: GatewayConfiguration.operationalSource, eventType: report.type)
            }.map(\.name)
            if !targets.isEmpty {
                do {
                    _ = try await store.accept(event(report, consumers: targets))
                    onStored(targets)
                } catch {
                    storeFailed()
                    logger.warning(
                        "operational event not stored yet; kept until the store takes writes",
                        metadata: ["type": "\(report.type)", "error": "\(error.detail)"])
                    return false
                }
            }
            state.withLock { state in
                if state.queued.first?.sequence == sequence { state.queued.removeFirst() }
            }
        }
        return true
    }

    /// Whether reports or dead letters are waiting (for the minute to end, or for the store).
    private var hasWaitingWork: Bool {
        state.withLock { !$0.queued.isEmpty || !$0.waitingDeadLetters.isEmpty }
    }

    func event(_ report: Report, consumers: [String]) -> IncomingEvent {
        var object = report.fields.mapValues(\.json)
        object["type"] = report.type
        object["at"] = DeadLetter.rfc3339(report.at)
        let body = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        let id = EventID.make(milliseconds: report.at.milliseconds)
        return IncomingEvent(
            id: id,
            source: GatewayConfiguration.operationalSource,
            eventType: report.type,
            // Each report is its own event: the key is its id, never a duplicate.
            dedupKey: DedupKey(rawValue: "\(GatewayConfiguration.operationalSource):\(id)"),
            orderID: nil,
            receivedAt: report.at,
            headers: [("content-type", "application/json")],
            body: body,
            consumers: consumers
        )
    }

    /// Stores reports as they come; once a second while some wait (for the end of a consumer's
    /// minute, or for the store). On graceful shutdown, stores what is queued and returns.
    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    if hasWaitingWork { signalContinuation.yield() }
                }
            }
            for await _ in signal.cancelOnGracefulShutdown() {
                await flush()
            }
            group.cancelAll()
        }
        await flush(final: true)
    }
}

extension OperationalEvents.State {
    mutating func append(_ report: OperationalEvents.Report) {
        queued.append((nextSequence, report))
        nextSequence += 1
    }
}

/// What the dispatcher reports: counted in the metrics, and a pause or resume of this gateway's
/// making reported as an operational event (a change another gateway made is reported there).
struct GatewayObserver: DispatchObserver {
    let metrics: GatewayMetrics
    let operational: OperationalEvents

    func delivered(consumer: String, latency: Duration) {
        metrics.delivered(consumer: consumer, latency: latency)
    }

    func retried(consumer: String) {
        metrics.retried(consumer: consumer)
    }

    func pauseChanged(consumer: String, paused: Bool) {
        pauseChanged(consumer: consumer, paused: paused, elsewhere: false)
    }

    func pauseChanged(consumer: String, paused: Bool, elsewhere: Bool) {
        metrics.pauseChanged(consumer: consumer, paused: paused)
        guard !elsewhere else { return }
        if paused {
            operational.consumerPaused(consumer, reason: "failures")
        } else {
            operational.consumerResumed(consumer, reason: "recovered")
        }
    }
}
