import Delivery
import Foundation
import SeededRandom
import Testing

/// Jittered delays use a seeded generator (`SplitMix64`), so they are reproducible.
struct RetryPolicyTests {
    let policy = RetryPolicy(maxAttempts: 12, initialDelay: .seconds(1), maxDelay: .seconds(60))

    @Test func backoffDoublesFromTheInitialDelayUpToTheMaximum() {
        let delays = (1...9).map { policy.baseDelay(afterAttempt: $0) }
        #expect(delays == [1, 2, 4, 8, 16, 32, 60, 60, 60].map { Duration.seconds($0) })
        // Huge attempt counts do not overflow.
        #expect(policy.baseDelay(afterAttempt: 10_000) == .seconds(60))
    }

    @Test func jitterStaysInTheUpperHalfAndVaries() {
        var generator = SplitMix64(state: 42)
        for attempt in 1...8 {
            let base = policy.baseDelay(afterAttempt: attempt)
            var seen = Set<Duration>()
            for _ in 0..<200 {
                let delay = policy.delay(afterAttempt: attempt, retryAfter: nil, using: &generator)
                #expect(delay >= base / 2 && delay <= base)
                seen.insert(delay)
            }
            #expect(seen.count > 50, "jitter should spread retries")
        }
    }

    @Test func retryAfterReplacesTheBackoffWithinTheMaximum() {
        var generator = SplitMix64(state: 1)
        #expect(policy.delay(afterAttempt: 1, retryAfter: .seconds(7), using: &generator) == .seconds(7))
        #expect(policy.delay(afterAttempt: 8, retryAfter: .seconds(0), using: &generator) == .zero)
        #expect(policy.delay(afterAttempt: 1, retryAfter: .seconds(3_600), using: &generator) == .seconds(60))
    }

    @Test(arguments: [
        (200, AttemptClass.delivered), (204, .delivered), (299, .delivered),
        (408, .retryable), (425, .retryable), (429, .retryable), (500, .retryable), (502, .retryable), (503, .retryable), (599, .retryable),
        (400, .permanent), (401, .permanent), (403, .permanent), (404, .permanent), (410, .permanent), (422, .permanent),
        (301, .permanent), (100, .permanent),
    ])
    func statusesAreClassifiedAsTheSpecSays(status: Int, expected: AttemptClass) {
        #expect(AttemptClass(status: status) == expected)
    }

    @Test func noResponseIsRetryable() {
        #expect(AttemptClass(status: nil) == .retryable)
    }

    @Test func retryAfterInSecondsAndHTTPDates() {
        // 2026-11-24T10:00:00Z
        let now = Date(timeIntervalSince1970: 1_795_514_400)
        #expect(RetryAfter.parse("120", now: now) == .seconds(120))
        #expect(RetryAfter.parse(" 0 ", now: now) == .zero)
        #expect(RetryAfter.parse("Tue, 24 Nov 2026 10:00:30 GMT", now: now) == .seconds(30))
        #expect(RetryAfter.parse("Tuesday, 24-Nov-26 10:01:00 GMT", now: now) == .seconds(60))
        #expect(RetryAfter.parse("Tue Nov 24 10:00:05 2026", now: now) == .seconds(5))
        #expect(RetryAfter.parse("Tue Nov  3 10:00:00 2026", now: now) == .zero)  // a date in the past: no wait
        #expect(RetryAfter.parse("soon", now: now) == nil)
        #expect(RetryAfter.parse("-5", now: now) == nil)
        #expect(RetryAfter.parse("1.5", now: now) == nil)
        #expect(RetryAfter.parse("", now: now) == nil)
        #expect(RetryAfter.parse("99999999999999999999999", now: now) == nil)
    }
}
