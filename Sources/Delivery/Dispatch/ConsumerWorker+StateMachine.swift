import Foundation

extension ConsumerWorker {
    /// The decisions of one consumer's delivery loop: how many deliveries to lease, when to pause
    /// and probe, when to resume, and when the loop must wake up by itself. It does no I/O and has
    /// no clock of its own: the loop tells it the time and what happened, and carries out the
    /// actions it returns.
    ///
    /// - Delivering: up to `concurrency` attempts at once. Each retryable failure (no answer,
    ///   timeout, 408, 425, 429, 5xx) counts; any other answer (a 2xx, or a 4xx: the consumer is
    ///   up) resets the count. At `pauseAfterFailures` failures in a row: ``Action/pause(failures:)``.
    /// - Paused: one probe at a time, once `nextProbeAt` has come. After the n-th failed probe the
    ///   next waits `retry.delay(afterAttempt: n)` (1, 2, 4, … times `initialDelay` with jitter, up
    ///   to `maxDelay`), or the consumer's `Retry-After`. The first non-retryable answer:
    ///   ``Action/resume``.
    /// - An attempt that was abandoned (its outcome not stored) or could not be sent at all says
    ///   nothing about the consumer: only the count in flight changes.
    struct StateMachine {
        enum Action: Hashable, Sendable {
            case pause(failures: Int)
            case resume
        }

        struct Settings: Sendable {
            var concurrency: Int
            var pauseAfterFailures: Int
            var retry: RetryPolicy
            var pollInterval: Duration
        }

        let settings: Settings
        private(set) var inFlight = 0
        private(set) var consecutiveFailures = 0
        private(set) var paused = false
        private(set) var failedProbes = 0
        private(set) var nextProbeAt = Date.distantPast
        private(set) var earliestRetry: Date?
        private(set) var stopping = false
        /// An operator paused the consumer through this gateway: nothing goes out, not even a probe,
        /// until released. (A pause made elsewhere reaches this worker through the store's claims,
        /// which lease nothing for a paused consumer.)
        private(set) var held = false

        init(settings: Settings) {
            self.settings = settings
        }

        /// How many deliveries to lease now: the free slots, or one probe when it is due.
        func capacity(now: Date) -> Int {
            if stopping || held { return 0 }
            if paused { return inFlight == 0 && now >= nextProbeAt ? 1 : 0 }
            return max(0, settings.concurrency - inFlight)
        }

        /// Whether what is leased now goes out as a probe.
        var probing: Bool { paused }

        /// Whether the loop is done: stopping, with nothing in flight.
        var finished: Bool { stopping && inFlight == 0 }

        mutating func started(_ count: Int) {
            inFlight += count
        }

        mutating func stop() {
            stopping = true
        }

        /// An operator paused (`true`) or resumed the consumer; whether that changed anything. A
        /// resume of a consumer paused by failures probes at once: the operator resumed it because
        /// it is back, and the backoff between probes may have grown to `maxDelay`.
        @discardableResult
        mutating func setHeld(_ held: Bool, now: Date) -> Bool {
            guard self.held != held else { return false }
            self.held = held
            if !held && paused { nextProbeAt = now }
            return true
        }

        /// A probe was due but the lease found nothing to probe (no delivery due yet, or the store
        /// failed): the next look is a poll interval away, not at once (that would spin).
        mutating func probeFoundNothing(now: Date) {
            let next = now.addingTimeInterval(TimeInterval(settings.pollInterval.milliseconds) / 1_000)
            nextProbeAt = max(nextProbeAt, next)
        }

        /// Takes the report of a finished attempt; returns what to do about the consumer, if anything.
        mutating func attemptFinished(
            _ report: AttemptReport,
            now: Date,
            using generator: inout some RandomNumberGenerator
        ) -> Action? {
            inFlight -= 1
            guard case .answered(let outcome) = report.result else { return nil }
            switch outcome {
            case .delivered, .permanent:
                consecutiveFailures = 0
                guard paused else { return nil }
                paused = false
                failedProbes = 0
                return .resume
            case .retryable:
                consecutiveFailures += 1
                if let next = report.nextAttemptAt {
                    earliestRetry = min(earliestRetry ?? next, next)
                }
                if paused {
                    if report.wasProbe {
                        failedProbes += 1
                        scheduleProbe(now: now, retryAfter: report.retryAfter, using: &generator)
                    }
                    return nil
                }
                guard consecutiveFailures >= settings.pauseAfterFailures else { return nil }
                paused = true
                failedProbes = 1
                scheduleProbe(now: now, retryAfter: report.retryAfter, using: &generator)
                return .pause(failures: consecutiveFailures)
            }
        }

        /// Another gateway paused the consumer (several gateways on one store): stop delivering and
        /// probe as if this gateway had paused it. Whose probe goes out is settled by the store's
        /// probe lease, so the consumer still gets one at a time.
        mutating func pausedElsewhere(now: Date, using generator: inout some RandomNumberGenerator) -> Action? {
            guard !paused else { return nil }
            paused = true
            failedProbes = 1
            scheduleProbe(now: now, retryAfter: nil, using: &generator)
            return .pause(failures: consecutiveFailures)
        }

        /// Another gateway's probe succeeded, or an operator resumed the consumer (the operator says
        /// it is back): deliver again at full concurrency, the count of failures starting over.
        /// `.resume` when it was paused.
        mutating func resumed() -> Action? {
            guard paused else { return nil }
            paused = false
            failedProbes = 0
            consecutiveFailures = 0
            return .resume
        }

        private mutating func scheduleProbe(
            now: Date, retryAfter: Duration?, using generator: inout some RandomNumberGenerator
        ) {
            let delay = settings.retry.delay(afterAttempt: failedProbes, retryAfter: retryAfter, using: &generator)
            nextProbeAt = now.addingTimeInterval(TimeInterval(delay.milliseconds) / 1_000)
        }

        /// When the loop must wake up by itself: when a retry or the next probe comes due, and at
        /// the latest after the poll interval (which also covers deliveries queued without a
        /// wake-up). `nil` when only a finishing attempt can change anything (every slot busy, a
        /// probe in flight, or stopping).
        mutating func wakeUp(now: Date) -> Date? {
            guard !stopping else { return nil }
            var deadline = now.addingTimeInterval(TimeInterval(settings.pollInterval.milliseconds) / 1_000)
            // Held: only the poll, which reads the operator's pause again.
            if held { return deadline }
            if paused {
                return inFlight > 0 ? nil : min(deadline, nextProbeAt)
            }
            if inFlight >= settings.concurrency { return nil }
            if let retry = earliestRetry {
                if retry <= now {
                    earliestRetry = nil
                } else {
                    deadline = min(deadline, retry)
                }
            }
            return deadline
        }
    }
}
