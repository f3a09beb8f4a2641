import Foundation
import SeededRandom
import Testing

@testable import Delivery

/// The consumer worker's decisions, tested without a server, a store or a clock: pause after N
/// consecutive failures, probe spacing, resume, and what an unsendable or abandoned attempt does.
struct ConsumerWorkerStateMachineTests {
    typealias Machine = ConsumerWorker.StateMachine
    typealias Report = ConsumerWorker.AttemptReport

    let start = Date(timeIntervalSince1970: 1_764_000_000)
    let retry = RetryPolicy(maxAttempts: 100, initialDelay: .seconds(1), maxDelay: .seconds(8))

    func machine(concurrency: Int = 4, pauseAfter: Int = 3) -> Machine {
        Machine(settings: .init(concurrency: concurrency, pauseAfterFailures: pauseAfter, retry: retry, pollInterval: .seconds(1)))
    }

    func failure(probe: Bool = false, retryAfter: Duration? = nil) -> Report {
        Report(result: .answered(.retryable), wasProbe: probe, retryAfter: retryAfter)
    }

    @Test func leasesUpToTheConcurrencyAndPausesAfterConsecutiveFailures() {
        var machine = machine()
        var generator = SplitMix64(state: 1)
        #expect(machine.capacity(now: start) == 4)
        machine.started(4)
        #expect(machine.capacity(now: start) == 0)
        do {
            let action = machine.wakeUp(now: start)  // every slot busy: only a report changes things
            #expect(action == nil)
        }
        do {
            let action = machine.attemptFinished(failure(), now: start, using: &generator)
            #expect(action == nil)
        }
        do {
            let action = machine.attemptFinished(failure(), now: start, using: &generator)
            #expect(action == nil)
        }
        #expect(machine.capacity(now: start) == 2)
        do {
            let action = machine.attemptFinished(failure(), now: start, using: &generator)
            #expect(action == .pause(failures: 3))
        }
        #expect(machine.probing)
        // One attempt is still in flight: no probe until it is back.
        #expect(machine.capacity(now: start.addingTimeInterval(60)) == 0)
        do {
            let action = machine.attemptFinished(failure(), now: start, using: &generator)
            #expect(action == nil)
        }
        // The first probe comes after the backoff of one failure: 0.5 to 1 s (equal jitter).
        #expect(machine.capacity(now: start.addingTimeInterval(0.49)) == 0)
        #expect(machine.capacity(now: start.addingTimeInterval(1)) == 1)
        let wake = machine.wakeUp(now: start) ?? .distantFuture
        #expect(wake >= start.addingTimeInterval(0.5) && wake <= start.addingTimeInterval(1))
    }

    @Test func aSuccessOrARefusalResetsTheFailureCount() {
        var machine = machine(pauseAfter: 2)
        var generator = SplitMix64(state: 2)
        machine.started(4)
        do {
            let action = machine.attemptFinished(failure(), now: start, using: &generator)
            #expect(action == nil)
        }
        do {
            let action = machine.attemptFinished(Report(result: .answered(.permanent), wasProbe: false), now: start, using: &generator)
            #expect(action == nil)
        }
        do {
            let action = machine.attemptFinished(failure(), now: start, using: &generator)
            #expect(action == nil)
        }
        do {
            let action = machine.attemptFinished(Report(result: .answered(.delivered), wasProbe: false), now: start, using: &generator)
            #expect(action == nil)
        }
        #expect(machine.consecutiveFailures == 0)
        #expect(!machine.probing)
    }

    @Test func failedProbesAreSpacedByTheBackoffAndASuccessfulOneResumes() {
        var machine = machine(concurrency: 1, pauseAfter: 1)
        var generator = SplitMix64(state: 3)
        machine.started(1)
        do {
            let action = machine.attemptFinished(failure(), now: start, using: &generator)
            #expect(action == .pause(failures: 1))
        }
        var now = start
        // Failed probe n waits base(n) = 1, 2, 4, 8, 8 s, with jitter in the upper half.
        for (probe, base) in [(2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0)] {
            now = machine.nextProbeAt
            #expect(machine.capacity(now: now) == 1, "probe \(probe)")
            machine.started(1)
            #expect(machine.capacity(now: now) == 0)
            do {
                let action = machine.attemptFinished(failure(probe: true), now: now, using: &generator)
                #expect(action == nil)
            }
            let wait = machine.nextProbeAt.timeIntervalSince(now)
            #expect(wait >= base / 2 && wait <= base, "probe \(probe) waits \(wait) s")
        }
        // A Retry-After replaces the backoff.
        now = machine.nextProbeAt
        machine.started(1)
        _ = machine.attemptFinished(failure(probe: true, retryAfter: .seconds(3)), now: now, using: &generator)
        #expect(machine.nextProbeAt == now.addingTimeInterval(3))
        now = machine.nextProbeAt
        machine.started(1)
        do {
            let action = machine.attemptFinished(Report(result: .answered(.delivered), wasProbe: true), now: now, using: &generator)
            #expect(action == .resume)
        }
        #expect(!machine.probing)
        #expect(machine.capacity(now: now) == 1)
    }

    /// A delivery that could not be sent, or an attempt whose outcome was not stored, says nothing
    /// about the consumer: no pause, no resume, no failure counted.
    @Test func unsendableAndAbandonedAttemptsLeaveTheConsumersHealthAlone() {
        var machine = machine(pauseAfter: 1)
        var generator = SplitMix64(state: 4)
        machine.started(3)
        do {
            let action = machine.attemptFinished(Report(result: .unsendable, wasProbe: false), now: start, using: &generator)
            #expect(action == nil)
        }
        do {
            let action = machine.attemptFinished(Report(result: .abandoned, wasProbe: false), now: start, using: &generator)
            #expect(action == nil)
        }
        #expect(machine.consecutiveFailures == 0)
        #expect(!machine.probing)
        do {
            let action = machine.attemptFinished(failure(), now: start, using: &generator)
            #expect(action == .pause(failures: 1))
        }
        machine.started(1)
        // While paused, an unsendable probe neither resumes nor pushes the next probe back.
        let due = machine.nextProbeAt
        do {
            let action = machine.attemptFinished(Report(result: .unsendable, wasProbe: true), now: start, using: &generator)
            #expect(action == nil)
        }
        #expect(machine.probing)
        #expect(machine.nextProbeAt == due)
    }

    @Test func wakesUpForTheEarliestRetryOrThePollAndStops() {
        var machine = machine()
        var generator = SplitMix64(state: 5)
        do {
            let action = machine.wakeUp(now: start)
            #expect(action == start.addingTimeInterval(1))
        }
        machine.started(1)
        var report = failure()
        report.nextAttemptAt = start.addingTimeInterval(0.25)
        _ = machine.attemptFinished(report, now: start, using: &generator)
        do {
            let action = machine.wakeUp(now: start)
            #expect(action == start.addingTimeInterval(0.25))
        }
        // Once that time has passed, back to the poll.
        do {
            let action = machine.wakeUp(now: start.addingTimeInterval(0.5))
            #expect(action == start.addingTimeInterval(1.5))
        }
        machine.started(2)
        machine.stop()
        #expect(machine.capacity(now: start) == 0)
        do {
            let action = machine.wakeUp(now: start)
            #expect(action == nil)
        }
        #expect(!machine.finished)
        _ = machine.attemptFinished(Report(result: .answered(.delivered), wasProbe: false), now: start, using: &generator)
        _ = machine.attemptFinished(Report(result: .answered(.delivered), wasProbe: false), now: start, using: &generator)
        #expect(machine.finished)
    }

    /// A paused consumer whose probe finds nothing to take (nothing due, or the store failing)
    /// looks again after the poll interval, not at once: otherwise the loop would lease in a
    /// tight loop, holding a core and the store's writer.
    @Test func aProbeThatFindsNothingWaitsForThePoll() {
        var machine = machine(concurrency: 1, pauseAfter: 1)
        var generator = SplitMix64(state: 6)
        machine.started(1)
        _ = machine.attemptFinished(failure(), now: start, using: &generator)
        let due = machine.nextProbeAt
        #expect(machine.capacity(now: due) == 1)
        machine.probeFoundNothing(now: due)
        #expect(machine.capacity(now: due) == 0)
        let wake = machine.wakeUp(now: due) ?? .distantPast
        #expect(wake == due.addingTimeInterval(1))
        #expect(machine.capacity(now: due.addingTimeInterval(1)) == 1)
    }

    /// An operator's pause sends nothing, not even a probe of a consumer paused by failures; the
    /// loop only polls. Resumed, it delivers, or probes at once (not after the grown backoff).
    @Test func anOperatorsPauseSendsNothingUntilResumed() {
        var machine = machine(concurrency: 4, pauseAfter: 1)
        var generator = SplitMix64(state: 7)
        var changed = machine.setHeld(true, now: start)
        #expect(changed)
        changed = machine.setHeld(true, now: start)
        #expect(!changed)
        #expect(machine.capacity(now: start) == 0)
        let wakeUp = machine.wakeUp(now: start)
        #expect(wakeUp == start.addingTimeInterval(1))
        changed = machine.setHeld(false, now: start)
        #expect(changed)
        #expect(machine.capacity(now: start) == 4)
        // Paused by failures (the next probe about a second away), then held: no probe, even
        // once it is due. Resumed a moment later: the probe goes at once.
        machine.started(1)
        let action = machine.attemptFinished(failure(), now: start, using: &generator)
        #expect(action == .pause(failures: 1))
        let moment = start.addingTimeInterval(0.1)
        #expect(machine.capacity(now: moment) == 0)
        machine.setHeld(true, now: start)
        #expect(machine.capacity(now: start.addingTimeInterval(3_600)) == 0)
        machine.setHeld(false, now: moment)
        #expect(machine.capacity(now: moment) == 1)
    }

    /// An operator's resume ends a pause by failures too: full concurrency at once, and the count
    /// of failures starts over (it takes `pauseAfter` new failures to pause again).
    @Test func anOperatorsResumeEndsAPauseByFailures() {
        var machine = machine(concurrency: 4, pauseAfter: 2)
        var generator = SplitMix64(state: 11)
        #expect(machine.resumed() == nil)  // not paused: nothing to report
        machine.started(2)
        _ = machine.attemptFinished(failure(), now: start, using: &generator)
        let paused = machine.attemptFinished(failure(), now: start, using: &generator)
        #expect(paused == .pause(failures: 2))
        #expect(machine.capacity(now: start.addingTimeInterval(0.1)) == 0)
        #expect(machine.resumed() == .resume)
        #expect(!machine.probing)
        #expect(machine.capacity(now: start.addingTimeInterval(0.1)) == 4)
        machine.started(2)
        let first = machine.attemptFinished(failure(), now: start, using: &generator)
        #expect(first == nil)
        let second = machine.attemptFinished(failure(), now: start, using: &generator)
        #expect(second == .pause(failures: 2))
    }
}
