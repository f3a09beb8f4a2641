import AsyncHTTPClient
import Foundation
import Logging
import Synchronization

/// The delivery loop of one consumer.
///
/// One loop owns the consumer's ``StateMachine`` and reacts to signals: a wake-up (new deliveries,
/// or finished attempts), a timer tick (a retry or the next probe came due, or the poll), or stop.
/// The decisions are the state machine's; the loop leases, starts attempts, arms timers and
/// reports pauses. Attempts and timers are child tasks of the loop's task group, so nothing
/// outlives the loop. Finished attempts leave their reports in a list that the loop takes whole,
/// so that while one lease transaction commits, every delivery that finishes in the meantime is
/// replaced by the next one: leases are taken in batches, not one by one.
final class ConsumerWorker: Sendable {
    enum Signal: Sendable {
        case wake
        /// The timer armed as this generation fired.
        case tick(generation: Int)
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
    /// The clock the loop's timers sleep on.
    let clock: any Clock<Duration>
    let pollInterval: Duration
    let onDeadLetterDecided: @Sendable () -> Void
    let signals: AsyncStream<Signal>
    let continuation: AsyncStream<Signal>.Continuation
    /// Whether a wake-up is queued already (wake-ups are coalesced).
    let wakePending = Atomic<Bool>(false)
    /// Reports of finished attempts, not yet seen by the loop.
    let reports = Mutex<[AttemptReport]>([])
    let paused = Atomic<Bool>(false)
    /// Whether an operator paused the consumer through this gateway since it started. The store
    /// is what holds a pause back (its claims lease nothing for a paused consumer, whichever
    /// gateway paused it, across restarts); this flag only stops what this worker leased just
    /// before the pause from going out, and restarts probing at once on a resume.
    let held = Atomic<Bool>(false)
    /// An operator resumed the consumer and the loop has not ended its pause by failures yet.
    let operatorResume = Atomic<Bool>(false)
    /// The last delivery and the last failure, for the admin API.
    let activity = Mutex(ConsumerActivity())
    /// How much longer than `timeout` a lease lasts.
    let leaseMargin: Duration

    init(
        endpoint: ConsumerEndpoint,
        store: any DeliveryQueue,
        makeClient: @escaping @Sendable () -> HTTPClient,
        observer: any DispatchObserver,
        logger: Logger,
        now: @escaping @Sendable () -> Date,
        clock: any Clock<Duration> = ContinuousClock(),
        pollInterval: Duration,
        leaseMargin: Duration = .seconds(60),
        onDeadLetterDecided: @escaping @Sendable () -> Void
    ) {
        self.leaseMargin = leaseMargin
        self.endpoint = endpoint
        self.store = store
        self.client = Mutex(makeClient())
        self.makeClient = makeClient
        self.observer = observer
        var logger = logger
        logger[metadataKey: "consumer"] = "\(endpoint.name)"
        self.logger = logger
        self.now = now
        self.clock = clock
        self.pollInterval = pollInterval
        self.onDeadLetterDecided = onDeadLetterDecided
        (signals, continuation) = AsyncStream.makeStream(of: Signal.self)
    }

    var isPaused: Bool { paused.load(ordering: .relaxed) }
    var isHeld: Bool { held.load(ordering: .relaxed) }

    /// An operator paused (`held`) or resumed the consumer through this gateway; the store has it.
    func operatorPaused(_ held: Bool) {
        self.held.store(held, ordering: .releasing)
        if !held {
            // A resume also ends a pause by failures; shown at once, done by the loop.
            operatorResume.store(true, ordering: .releasing)
            paused.store(false, ordering: .relaxed)
        }
        wake()
    }

    func wake() {
        if !wakePending.exchange(true, ordering: .acquiringAndReleasing) {
            continuation.yield(.wake)
        }
    }

    func stop() {
        continuation.yield(.stop)
    }

    /// How long a lease lasts: longer than any attempt can take (`timeout` bounds the attempt; the
    /// margin covers recording its outcome). When a gateway dies, its deliveries wait this long.
    var leaseDuration: TimeInterval { TimeInterval((endpoint.timeout + leaseMargin).milliseconds) / 1_000 }

    /// The timer the loop has armed: the earliest deadline a tick is coming for.
    struct Timer {
        var deadline: Date?
        var generation = 0
    }

    func run() async {
        var machine = StateMachine(
            settings: .init(
                concurrency: endpoint.concurrency,
                pauseAfterFailures: endpoint.pauseAfterFailures,
                retry: endpoint.retry,
                pollInterval: pollInterval
            )
        )
        var timer = Timer()
        var storeFailing = false
        var generator = SystemRandomNumberGenerator()
        var shared = SharedPauseSync()
        await withDiscardingTaskGroup { group in
            var iterator = signals.makeAsyncIterator()
            while true {
                machine.setHeld(held.load(ordering: .acquiring), now: now())
                if operatorResume.exchange(false, ordering: .acquiringAndReleasing) {
                    if let action = machine.resumed() { perform(action, byOperator: true) }
                    // Written for the other gateways even when this one had not read their pause
                    // yet: otherwise its next read would pause it again.
                    shared.localChange = true
                }
                await syncSharedPause(&machine, &shared, using: &generator)
                await fill(&machine, storeFailing: &storeFailing, group: &group)
                if machine.finished { break }
                arm(&timer, for: machine.wakeUp(now: now()), group: &group)
                guard let signal = await iterator.next() else { break }
                switch signal {
                case .wake:
                    wakePending.store(false, ordering: .releasing)
                case .tick(let generation):
                    if generation == timer.generation { timer.deadline = nil }
                case .stop:
                    machine.stop()
                }
                for report in reports.withLock({ reports in
                    defer { reports.removeAll(keepingCapacity: true) }
                    return reports
                }) {
                    if let action = machine.attemptFinished(report, now: now(), using: &generator) {
                        perform(action)
                        shared.localChange = true
                    }
                }
            }
            // Nothing is in flight any more: only timers are left, and they are not needed.
            group.cancelAll()
        }
    }

    /// What this worker knows of the consumer's shared pause (several gateways on one store).
    struct SharedPauseSync {
        /// The pause as the store last had it (`nil`: not read yet).
        var stored: Bool?
        /// This gateway paused or resumed the consumer and has not written it yet.
        var localChange = false
        var lastRead = Date.distantPast
    }

    /// With a store that shares pauses: writes this gateway's pause or resume for the others, and
    /// follows theirs (read at most once a poll interval). A store failure leaves the local state
    /// as it is; the next loop tries again.
    private func syncSharedPause(
        _ machine: inout StateMachine, _ shared: inout SharedPauseSync, using generator: inout some RandomNumberGenerator
    ) async {
        guard let store = store as? any SharedPauseStore else { return }
        let at = now()
        if shared.localChange {
            do {
                try await store.recordPause(consumer: endpoint.name, paused: machine.paused, at: at)
                shared.stored = machine.paused
                shared.localChange = false
            } catch {
                logger.warning("cannot record the consumer's pause for the other gateways", metadata: ["error": "\(error)"])
            }
            return
        }
        guard at.timeIntervalSince(shared.lastRead) >= TimeInterval(pollInterval.milliseconds) / 1_000 else { return }
        shared.lastRead = at
        guard let paused = try? await store.sharedPause(consumer: endpoint.name) else { return }
        shared.stored = paused
        guard paused != machine.paused else { return }
        let action = paused ? machine.pausedElsewhere(now: at, using: &generator) : machine.resumed()
        guard let action else { return }
        perform(action, elsewhere: true)
    }

    /// Leases as many deliveries as the state machine has room for and starts them.
    private func fill(_ machine: inout StateMachine, storeFailing: inout Bool, group: inout DiscardingTaskGroup) async {
        while true {
            let at = now()
            let capacity = machine.capacity(now: at)
            guard capacity > 0 else { return }
            let isProbe = machine.probing
            let claimed: [ClaimedDelivery]
            do {
                claimed = try await store.claim(
                    consumer: endpoint.name,
                    limit: capacity,
                    now: at,
                    leaseUntil: at.addingTimeInterval(leaseDuration),
                    asProbe: isProbe
                )
                if storeFailing {
                    storeFailing = false
                    logger.info("store is back; delivering again")
                }
            } catch {
                if !storeFailing {
                    logger.error("cannot lease deliveries; retrying", metadata: ["error": "\(error)"])
                }
                storeFailing = true
                if isProbe { machine.probeFoundNothing(now: at) }
                return
            }
            if isProbe && claimed.isEmpty { machine.probeFoundNothing(now: at) }
            machine.started(claimed.count)
            for delivery in claimed {
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

    /// Makes sure a tick comes by `deadline`: a timer is a child task that sleeps on `clock`. A
    /// timer armed earlier that would fire later is not cancelled; its tick comes with an old
    /// generation and only makes the loop look again, which is harmless.
    private func arm(_ timer: inout Timer, for deadline: Date?, group: inout DiscardingTaskGroup) {
        guard let deadline else { return }
        if let armed = timer.deadline, armed <= deadline { return }
        timer.generation += 1
        timer.deadline = deadline
        let generation = timer.generation
        let delay = Duration.milliseconds(Int64(max(0, deadline.timeIntervalSince(now())) * 1_000) + 1)
        let clock = self.clock
        let continuation = self.continuation
        group.addTask {
            do {
                try await clock.sleep(for: delay)
                continuation.yield(.tick(generation: generation))
            } catch {}
        }
    }

    /// `byOperator`: an operator's resume, which the admin API reports itself.
    private func perform(_ action: StateMachine.Action, elsewhere: Bool = false, byOperator: Bool = false) {
        switch action {
        case .pause(let failures):
            paused.store(true, ordering: .relaxed)
            observer.pauseChanged(consumer: endpoint.name, paused: true, elsewhere: elsewhere)
            if elsewhere {
                logger.warning("consumer paused by another gateway; probing with one delivery at a time across gateways")
            } else {
                logger.warning(
                    "consumer paused after consecutive failures; probing with one delivery at a time",
                    metadata: ["failures": "\(failures)"]
                )
            }
        case .resume:
            paused.store(false, ordering: .relaxed)
            observer.pauseChanged(consumer: endpoint.name, paused: false, elsewhere: elsewhere || byOperator)
            if byOperator {
                logger.notice("consumer resumed by an operator; its pause after failures ends")
                return
            }
            logger.notice(
                elsewhere
                    ? "consumer answered another gateway's probe; resuming its queue" : "consumer answered a probe; resuming its queue")
        }
    }
}
