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
        let result29 = machine.wakeUp(now: start)  // every slot busy: only a report changes things
        #expect(result29 == nil)
        let result31 = machine.attemptFinished(failure(), now: start, using: &generator)
        #expect(result31 == nil)
        let result33 = machine.attemptFinished(failure(), now: start, using: &generator)
        #expect(result33 == nil)
        #expect(machine.capacity(now: start) == 2)
        let result36 = machine.attemptFinished(failure(), now: start, using: &generator)
        #expect(result36 == .pause(failures: 3))
        #expect(machine.probing)
        // One attempt is still in flight: no probe until it is back.
        #expect(machine.capacity(now: start.addingTimeInterval(60)) == 0)
        let result41 = machine.attemptFinished(failure(), now: start, using: &generator)
        #expect(result41 == nil)
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
        let result54 = machine.attemptFinished(failure(), now: start, using: &generator)
        #expect(result54 == nil)
        let result56 = machine.attemptFinished(Report(result: .answered(.permanent), wasProbe: false), now: start, using: &generator)
        #expect(result56 == nil)
        let result58 = machine.attemptFinished(failure(), now: start, using: &generator)
        #expect(result58 == nil)
        let result60 = machine.attemptFinished(Report(result: .answered(.delivered), wasProbe: false), now: start, using: &generator)
        #expect(result60 == nil)
        #expect(machine.consecutiveFailures == 0)
        #expect(!machine.probing)
    }

    @Test func failedProbesAreSpacedByTheBackoffAndASuccessfulOneResumes() {
        var machine = machine(concurrency: 1, pauseAfter: 1)
        var generator = SplitMix64(state: 3)
        machine.started(1)
        let result70 = machine.attemptFinished(failure(), now: start, using: &generator)
        #expect(result70 == .pause(failures: 1))
        var now = start
        // Failed probe n waits base(n) = 1, 2, 4, 8, 8 s, with jitter in the upper half.
        for (probe, base) in [(2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0)] {
            now = machine.nextProbeAt
            #expect(machine.capacity(now: now) == 1, "probe \(probe)")
            machine.started(1)
            #expect(machine.capacity(now: now) == 0)
            let result79 = machine.attemptFinished(failure(probe: true), now: now, using: &generator)
            #expect(result79 == nil)
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
        let result91 = machine.attemptFinished(Report(result: .answered(.delivered), wasProbe: true), now: now, using: &generator)
        #expect(result91 == .resume)
        #expect(!machine.probing)
        #expect(machine.capacity(now: now) == 1)
    }

    /// A delivery that could not be sent, or an attempt whose outcome was not stored, says nothing
    /// about the consumer: no pause, no resume, no failure counted.
    @Test func unsendableAndAbandonedAttemptsLeaveTheConsumersHealthAlone() {
        var machine = machine(pauseAfter: 1)
        var generator = SplitMix64(state: 4)
        machine.started(3)
        let result103 = machine.attemptFinished(Report(result: .unsendable, wasProbe: false), now: start, using: &generator)
        #expect(result103 == nil)
        let result105 = machine.attemptFinished(Report(result: .abandoned, wasProbe: false), now: start, using: &generator)
        #expect(result105 == nil)
        #expect(machine.consecutiveFailures == 0)
        #expect(!machine.probing)
        let result109 = machine.attemptFinished(failure(), now: start, using: &generator)
        #expect(result109 == .pause(failures: 1))
        machine.started(1)
        // While paused, an unsendable probe neither resumes nor pushes the next probe back.
        let due = machine.nextProbeAt
        let result114 = machine.attemptFinished(Report(result: .unsendable, wasProbe: true), now: start, using: &generator)
        #expect(result114 == nil)
        #expect(machine.probing)
        #expect(machine.nextProbeAt == due)
    }

    @Test func wakesUpForTheEarliestRetryOrThePollAndStops() {
        var machine = machine()
        var generator = SplitMix64(state: 5)
        let result123 = machine.wakeUp(now: start)
        #expect(result123 == start.addingTimeInterval(1))
        machine.started(1)
        var report = failure()
        report.nextAttemptAt = start.addingTimeInterval(0.25)
        _ = machine.attemptFinished(report, now: start, using: &generator)
        let result129 = machine.wakeUp(now: start)
        #expect(result129 == start.addingTimeInterval(0.25))
        // Once that time has passed, back to the poll.
        let result132 = machine.wakeUp(now: start.addingTimeInterval(0.5))
        #expect(result132 == start.addingTimeInterval(1.5))
        machine.started(2)
        machine.stop()
        #expect(machine.capacity(now: start) == 0)
        let result137 = machine.wakeUp(now: start)
        #expect(result137 == nil)
        #expect(!machine.finished)
        _ = machine.attemptFinished(Report(result: .answered(.delivered), wasProbe: false), now: start, using: &generator)
        _ = machine.attemptFinished(Report(result: .answered(.delivered), wasProbe: false), now: start, using: &generator)
        #expect(machine.finished)
    }
}
