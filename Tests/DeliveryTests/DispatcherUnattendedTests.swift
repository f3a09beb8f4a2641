import Delivery
import Foundation
import GatewayTestSupport
import Synchronization
import Testing

/// The dispatcher left alone for months: a consumer that stalls its answer, an event the
/// consumer always refuses, a delivery that cannot be sent at all, two sources with the same
/// order ids. None of them may stop the others silently.
@Suite(.timeLimit(.minutes(2)))
struct DispatcherUnattendedTests {
    /// A consumer that sends its status line and then stalls the body used to hold a delivery
    /// slot forever; `timeout` bounds the whole attempt, so each such attempt is a timeout.
    @Test func aStalledAnswerBodyIsCutOffAtTheTimeoutAndRetried() async throws {
        let behaves = Atomic<Bool>(false)
        let consumer = try await ScriptedConsumer.start { _ in
            behaves.load(ordering: .relaxed) ? .status(200) : .stalledBody
        }
        let harness = try DispatchHarness(
            retry: RetryPolicy(maxAttempts: 100, initialDelay: .milliseconds(50), maxDelay: .milliseconds(200)),
            timeout: .seconds(1),
            concurrency: 2,
            consumer: consumer
        )
        harness.start()
        for index in 0..<4 { try await harness.ingest(order: "stall-\(index)") }
        // Every event is tried, and tried again after its stalled attempt was cut off.
        #expect(
            await consumer.wait(timeout: .seconds(30)) { received in
                Dictionary(grouping: received, by: \.webhookID).count == 4
                    && Dictionary(grouping: received, by: \.webhookID).values.allSatisfy { $0.count >= 2 }
            })
        behaves.store(true, ordering: .relaxed)
        #expect(try await harness.waitUntilDrained(timeout: .seconds(30)))
        try await harness.stop()
        await consumer.stop()
        #expect(harness.observer.snapshot.delivered == 4)
        #expect(harness.observer.snapshot.retried >= 4)
        #expect(try harness.deadLetterLines().isEmpty)
    }

    /// The same for a probe of a paused consumer: a stalled probe is cut off, the next probe goes
    /// out, and the consumer resumes once it answers.
    @Test func aStalledProbeIsCutOffAndTheConsumerResumesWhenItBehaves() async throws {
        let behaves = Atomic<Bool>(false)
        let consumer = try await ScriptedConsumer.start { _ in
            behaves.load(ordering: .relaxed) ? .status(200) : .stalledBody
        }
        let harness = try DispatchHarness(
            retry: RetryPolicy(maxAttempts: 100, initialDelay: .milliseconds(50), maxDelay: .milliseconds(100)),
            timeout: .seconds(1),
            concurrency: 1,
            pauseAfterFailures: 2,
            consumer: consumer
        )
        harness.start()
        for index in 0..<3 { try await harness.ingest(order: "probe-\(index)") }
        // Two failures pause it; then at least two probes, each cut off at the timeout.
        #expect(await consumer.wait(timeout: .seconds(30)) { $0.count >= 4 })
        #expect(harness.dispatcher?.isPaused(consumer: "orders") == true)
        behaves.store(true, ordering: .relaxed)
        #expect(try await harness.waitUntilDrained(timeout: .seconds(30)))
        #expect(harness.dispatcher?.isPaused(consumer: "orders") == false)
        try await harness.stop()
        await consumer.stop()
        #expect(harness.observer.snapshot.pauses == [true, false])
        #expect(harness.observer.snapshot.delivered == 3)
    }

    /// Five events the consumer always refuses, then a good one: probes take the delivery whose
    /// next attempt is earliest, so the good one is probed and resumes the consumer instead of
    /// waiting behind every retry of the poisoned ones.
    @Test func poisonedEventsDoNotKeepARecoveredConsumerPaused() async throws {
        let consumer = try await ScriptedConsumer.start { received in
            String(decoding: received.body, as: UTF8.self).contains("poison") ? .status(500) : .status(200)
        }
        let harness = try DispatchHarness(
            retry: RetryPolicy(maxAttempts: 4, initialDelay: .seconds(1), maxDelay: .seconds(10)),
            concurrency: 1,
            pauseAfterFailures: 5,
            consumer: consumer
        )
        harness.start()
        for index in 0..<5 { try await harness.ingest(order: "poison-\(index)") }
        let pausedWithin = ContinuousClock.now + .seconds(30)
        while harness.observer.snapshot.pauses != [true] && ContinuousClock.now < pausedWithin {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(harness.observer.snapshot.pauses == [true])
        let good = try await harness.ingest(order: "good")
        let sentAt = ContinuousClock.now
        #expect(
            await consumer.wait(timeout: .seconds(30)) { received in
                received.contains { $0.webhookID == good.id }
            })
        #expect(ContinuousClock.now - sentAt < .seconds(30))
        // Its 2xx resumes the consumer (the report reaches the loop just after the consumer answered).
        let resumedWithin = ContinuousClock.now + .seconds(10)
        while harness.observer.snapshot.pauses != [true, false] && ContinuousClock.now < resumedWithin {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(harness.observer.snapshot.pauses == [true, false])
        try await harness.stop()
        await consumer.stop()
    }

    /// A delivery the HTTP client refuses to send (a control character in a header value) is
    /// dead-lettered at once, with one attempt and the reason, and does not pause the consumer.
    @Test func aDeliveryThatCannotBeSentIsDeadLetteredAtOnceWithoutPausing() async throws {
        let consumer = try await ScriptedConsumer.start { _ in .status(200) }
        let harness = try DispatchHarness(
            retry: RetryPolicy(maxAttempts: 5, initialDelay: .milliseconds(10), maxDelay: .milliseconds(20)),
            pauseAfterFailures: 1,
            consumer: consumer
        )
        harness.start()
        try await harness.ingest(order: "bad", event: "minis.trade_order.redeem.success\r\nx-injected: 1")
        try await harness.ingest(order: "fine")
        #expect(try await harness.waitUntilDrained())
        try await harness.stop()
        await consumer.stop()
        #expect(consumer.received.count == 1)
        #expect(harness.observer.snapshot.pauses.isEmpty)
        #expect(harness.observer.snapshot.delivered == 1)
        let lines = try harness.deadLetterLines()
        #expect(lines.count == 1)
        let reason = try #require(lines.first?["reason"] as? String)
        #expect(reason.hasPrefix("cannot be sent"), "\(reason)")
        #expect(!reason.contains("x-injected"))
        let attempts = try #require(lines.first?["attempts"] as? [[String: Any]])
        #expect(attempts.count == 1)
        #expect(attempts.first?["status"] is NSNull)
    }

    /// A sandbox event's deliveries carry `webhook-sandbox: true`; others do not carry the header.
    @Test func sandboxEventsAreMarkedInTheirDeliveries() async throws {
        let consumer = try await ScriptedConsumer.start { _ in .status(200) }
        let harness = try DispatchHarness(consumer: consumer)
        harness.start()
        let sandbox = try await harness.ingest(order: "s1", sandbox: true)
        let production = try await harness.ingest(order: "p1")
        #expect(try await harness.waitUntilDrained())
        try await harness.stop()
        await consumer.stop()
        let byID = Dictionary(uniqueKeysWithValues: consumer.received.map { ($0.webhookID, $0.headers) })
        #expect(byID[sandbox.id]?["webhook-sandbox"] == "true")
        #expect(byID[production.id]?["webhook-sandbox"] == nil)
    }

    /// Order lanes are per source: an order of one source that is failing does not hold up the
    /// same order id from another source.
    @Test func theSameOrderIDFromAnotherSourceIsNotHeldUp() async throws {
        let consumer = try await ScriptedConsumer.start { received in
            received.headers["webhook-source"] == "tiktok" ? .status(503) : .status(200)
        }
        let harness = try DispatchHarness(
            retry: RetryPolicy(maxAttempts: 100, initialDelay: .seconds(30), maxDelay: .seconds(60)),
            consumer: consumer
        )
        harness.start()
        try await harness.ingest(order: "42", source: "tiktok")
        #expect(await consumer.wait { $0.count == 1 })
        let shop = try await harness.ingest(order: "42", source: "tiktok-shop")
        #expect(await consumer.wait { received in received.contains { $0.webhookID == shop.id } })
        try await harness.stop()
        await consumer.stop()
    }
}
