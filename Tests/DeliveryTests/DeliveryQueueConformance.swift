import Delivery
import Foundation
import Testing
import Verification

/// The delivery-queue half of the conformance suite: leasing, outcomes, the per-order rule,
/// dead letters waiting for their line, and replay.
extension StoreConformance {
    func event(_ key: String, order: String?, consumers: [String] = ["orders"], at date: Date, body: String? = nil) -> IncomingEvent {
        var event = Self.event(
            key: key, id: EventID.make(milliseconds: date.milliseconds), body: body ?? #"{"key":"\#(key)"}"#,
            consumers: consumers, at: date)
        event.orderID = order
        return event
    }

    func claim(_ store: Store, _ clock: ManualClock, limit: Int = 10, probe: Bool = false) async throws -> [ClaimedDelivery] {
        try await store.claim(
            consumer: "orders", limit: limit, now: clock.now, leaseUntil: clock.now.addingTimeInterval(600), asProbe: probe)
    }

    func leasesHideClaimedDeliveriesUntilFinishedOrExpired() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        let first = event("a", order: nil, at: clock.now)
        let second = event("b", order: nil, at: clock.now)
        _ = try await store.accept(first)
        _ = try await store.accept(second)

        let claimed = try await claim(store, clock, limit: 1)
        #expect(claimed.map(\.eventID) == [first.id])
        #expect(claimed.first?.body == first.body)
        #expect(claimed.first?.source == "tiktok")
        #expect(claimed.first?.dedupKey == "a")
        #expect(claimed.first?.attempts == [])
        // The leased one is not handed out again; the other one is.
        #expect(try await claim(store, clock).map(\.eventID) == [second.id])
        #expect(try await claim(store, clock).isEmpty)
        // A lease that expired (its holder died) is claimable again.
        clock.advance(by: 601)
        #expect(try await claim(store, clock).map(\.eventID) == [first.id, second.id])
        if sharedByGateways {
            // Other gateways' leases stand when one starts: nothing is released, and the leases
            // run out on their own.
            #expect(try await store.releaseAllLeases() == 0)
            #expect(try await claim(store, clock).isEmpty)
        } else {
            // Releasing all leases (a restart) makes them claimable at once.
            #expect(try await store.releaseAllLeases() == 2)
            #expect(try await claim(store, clock).count == 2)
        }
    }

    func outcomesAreRecorded() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        let delivered = event("d", order: nil, at: clock.now)
        let retried = event("r", order: nil, at: clock.now)
        _ = try await store.accept(delivered)
        _ = try await store.accept(retried)
        let claimed = try await claim(store, clock)
        #expect(claimed.count == 2)
        let failure = DeadLetter.Attempt(at: clock.now, status: 503, error: nil)
        try await store.finish([
            .delivered(id: claimed[0].id),
            .retry(id: claimed[1].id, attempts: [failure], nextAttemptAt: clock.now.addingTimeInterval(30)),
        ])
        #expect(try await store.depth(consumer: "orders") == 1)
        // Not due yet, for a probe neither (SPEC: a probe takes the due delivery whose next
        // attempt is earliest).
        #expect(try await claim(store, clock).isEmpty)
        #expect(try await claim(store, clock, limit: 1, probe: true).isEmpty)
        clock.advance(by: 30)
        let again = try await claim(store, clock)
        #expect(again.map(\.eventID) == [retried.id])
        #expect(again.first?.attempts.map(\.status) == [503])
    }

    func laterEventsOfAnOrderWaitForEarlierOnes() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        let a1 = event("a1", order: "A", at: clock.now)
        let a2 = event("a2", order: "A", at: clock.now)
        let b1 = event("b1", order: "B", at: clock.now)
        let a3 = event("a3", order: "A", at: clock.now)
        for item in [a1, a2, b1, a3] { _ = try await store.accept(item) }

        // Only the first of each order is deliverable.
        let first = try await claim(store, clock)
        #expect(first.map(\.eventID) == [a1.id, b1.id])
        // A retry of a1 still holds a2 back, even when it is not due.
        try await store.finish([.retry(id: first[0].id, attempts: [], nextAttemptAt: clock.now.addingTimeInterval(60))])
        #expect(try await claim(store, clock).isEmpty)
        // Once a1 is a dead letter, a2 goes (a dead letter does not block its order forever).
        clock.advance(by: 60)
        let retry = try await claim(store, clock)
        #expect(retry.map(\.eventID) == [a1.id])
        try await store.finish([.deadLetter(id: retry[0].id, attempts: [], reason: "max attempts", at: clock.now)])
        let next = try await claim(store, clock)
        #expect(next.map(\.eventID) == [a2.id])
        try await store.finish([.delivered(id: next[0].id)])
        #expect(try await claim(store, clock).map(\.eventID) == [a3.id])
        // Other consumers of the same order have their own sequence.
        #expect(
            try await store.claim(consumer: "analytics", limit: 10, now: clock.now, leaseUntil: clock.now, asProbe: false).isEmpty)
    }

    func deadLettersCarryTheirLineUntilWritten() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        let body = "{\"event\":\"x\",\"content\":\"caf\u{e9}\"}"
        let item = event("dl", order: "O", at: clock.now, body: body)
        _ = try await store.accept(item)
        let claimed = try await claim(store, clock)
        let attempts = [
            DeadLetter.Attempt(at: clock.now, status: nil, error: "connection refused"),
            DeadLetter.Attempt(at: clock.now.addingTimeInterval(1), status: 500, error: nil),
        ]
        clock.advance(by: 2)
        try await store.finish([.deadLetter(id: claimed[0].id, attempts: attempts, reason: "max attempts", at: clock.now)])
        // Still counted in the queue until its line is durable.
        #expect(try await store.depth(consumer: "orders") == 1)
        #expect(try await claim(store, clock).isEmpty)
        let waiting = try await store.deadLettersToWrite(limit: 10)
        #expect(waiting.count == 1)
        let line = try #require(waiting.first?.deadLetter)
        #expect(line.id.hasPrefix("dl_"))
        #expect(line.eventID == item.id)
        #expect(line.consumer == "orders")
        #expect(line.reason == "max attempts")
        #expect(line.attempts.map(\.status) == [nil, 500])
        #expect(line.attempts.map(\.error) == ["connection refused", nil])
        #expect(line.bodyBytes == Data(body.utf8))
        #expect(line.headers["tiktok-signature"] == "t=1,s=00")
        #expect(abs(line.deadLetteredAt.timeIntervalSince(clock.now)) < 0.001)
        // Read twice (a crash before it was dequeued): the same id. Shared by gateways, a read
        // takes the dead letters for 30 s, so that two gateways do not both write them; a
        // gateway that died meanwhile leaves them to the next read after that.
        if sharedByGateways {
            #expect(try await store.deadLettersToWrite(limit: 10).isEmpty)
            clock.advance(by: 31)
        }
        #expect(try await store.deadLettersToWrite(limit: 10).first?.deadLetter.id == line.id)
        try await store.markDeadLettered(deliveryIDs: waiting.map(\.deliveryID))
        #expect(try await store.deadLettersToWrite(limit: 10).isEmpty)
        #expect(try await store.depth(consumer: "orders") == 0)
    }

    func eventsStoredAsDeadLettersSkipTheQueue() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        var item = Self.event(key: "u", consumers: ["_unparsed"], at: clock.now)
        item.deadLetterReason = "not an envelope"
        _ = try await store.accept(item)
        #expect(
            try await store.claim(consumer: "_unparsed", limit: 5, now: clock.now, leaseUntil: clock.now, asProbe: true).isEmpty)
        let waiting = try await store.deadLettersToWrite(limit: 10)
        #expect(waiting.map(\.deadLetter.reason) == ["not an envelope"])
        #expect(waiting.map(\.deadLetter.consumer) == ["_unparsed"])
        #expect(waiting.first?.deadLetter.attempts == [])
    }

    func replayQueuesOnceUnlessForced() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        let item = event("rp", order: "R", at: clock.now)
        _ = try await store.accept(item)
        let claimed = try await claim(store, clock)
        try await store.finish([.deadLetter(id: claimed[0].id, attempts: [], reason: "not retryable: status 400", at: clock.now)])
        let waiting = try await store.deadLettersToWrite(limit: 10)
        try await store.markDeadLettered(deliveryIDs: waiting.map(\.deliveryID))
        let deadLetter = try #require(waiting.first?.deadLetter)

        let dry = try await store.replay([deadLetter], consumer: "orders", force: false, dryRun: true, now: clock.now)
        #expect(dry == ReplayResult(replayed: [deadLetter.id], skipped: []))
        #expect(try await store.depth(consumer: "orders") == 0)
        #expect(try await store.replayTimes(consumer: "orders").isEmpty)

        let first = try await store.replay([deadLetter], consumer: "orders", force: false, dryRun: false, now: clock.now)
        #expect(first == ReplayResult(replayed: [deadLetter.id], skipped: []))
        let requeued = try await claim(store, clock)
        #expect(requeued.map(\.eventID) == [item.id])  // the original id: the same webhook-id
        #expect(requeued.first?.attempts == [])
        #expect(requeued.first?.body == item.body)
        #expect(try await store.replayTimes(consumer: "orders")[deadLetter.id] != nil)

        let second = try await store.replay([deadLetter], consumer: "orders", force: false, dryRun: false, now: clock.now)
        #expect(second == ReplayResult(replayed: [], skipped: [deadLetter.id]))
        let forced = try await store.replay([deadLetter], consumer: "orders", force: true, dryRun: false, now: clock.now)
        #expect(forced == ReplayResult(replayed: [deadLetter.id], skipped: []))
        #expect(try await store.depth(consumer: "orders") == 2)
    }

    func replayStoresTheEventAgainIfItIsGone() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        let deadLetter = DeadLetter(
            id: "dl_01TESTREPLAYFROMLINE000000",
            eventID: "evt_01TESTREPLAYFROMLINE00000",
            consumer: "orders",
            source: "tiktok",
            eventType: "minis.trade_order.redeem.success",
            dedupKey: "tiktok:minis.trade_order.redeem.success:9",
            receivedAt: clock.now,
            deadLetteredAt: clock.now,
            reason: "max attempts",
            attempts: [],
            headers: ["tiktok-signature": "t=1,s=00"],
            body: Data([0xFF, 0x00, 0x7B])
        )
        let result = try await store.replay([deadLetter], consumer: "orders", force: false, dryRun: false, now: clock.now)
        #expect(result.replayed == [deadLetter.id])
        let claimed = try await claim(store, clock)
        #expect(claimed.map(\.eventID) == [deadLetter.eventID])
        #expect(claimed.first?.body == Data([0xFF, 0x00, 0x7B]))
        #expect(claimed.first?.dedupKey == deadLetter.dedupKey)
        #expect(claimed.first?.sandbox == false)
    }

    /// An event stored again from its dead-letter line keeps what the gateway read from its
    /// envelope: its sandbox flag (the `webhook-sandbox` header) and its order lane.
    func replayedEventsKeepTheirSandboxFlagAndOrder() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        func deadLetter(_ name: String) -> DeadLetter {
            var deadLetter = DeadLetter(
                id: "dl_01TESTREPLAYSANDBOX\(name)", eventID: "evt_01TESTREPLAYSANDBOX\(name)", consumer: "orders",
                source: "tiktok", eventType: "minis.trade_order.redeem.success", dedupKey: "tiktok:x:\(name)",
                receivedAt: clock.now, deadLetteredAt: clock.now, reason: "max attempts", attempts: [], headers: [:],
                body: Data("{}".utf8))
            deadLetter.orderID = "42"
            deadLetter.sandbox = true
            return deadLetter
        }
        _ = try await store.replay([deadLetter("A"), deadLetter("B")], consumer: "orders", force: false, dryRun: false, now: clock.now)
        // One order: the second event waits for the first.
        let claimed = try await claim(store, clock)
        #expect(claimed.map(\.eventID) == ["evt_01TESTREPLAYSANDBOXA"])
        #expect(claimed.first?.sandbox == true)
        try await store.finish([.delivered(id: claimed[0].id)])
        #expect(try await claim(store, clock).map(\.eventID) == ["evt_01TESTREPLAYSANDBOXB"])
    }

    /// A probe (a claim that ignores the schedule) takes the delivery whose next attempt is
    /// earliest: one that keeps failing moves back and cannot hold the others up.
    func probesTakeTheEarliestNextAttempt() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        let poisoned = event("poisoned", order: "p1", at: clock.now)
        _ = try await store.accept(poisoned)
        clock.advance(by: 1)
        let healthy = event("healthy", order: "h1", at: clock.now)
        _ = try await store.accept(healthy)
        let first = try await claim(store, clock, limit: 1, probe: true)
        #expect(first.map(\.eventID) == [poisoned.id])
        // It fails and is due again a second later; once both are due, the next probe takes the
        // healthy one, whose next attempt (its receipt) is earlier, though its row is newer.
        let attempt = DeadLetter.Attempt(at: clock.now, status: 500, error: nil)
        try await store.finish([.retry(id: first[0].id, attempts: [attempt], nextAttemptAt: clock.now.addingTimeInterval(1))])
        clock.advance(by: 10)
        #expect(try await claim(store, clock, limit: 1, probe: true).map(\.eventID) == [healthy.id])
        // Only due deliveries are probed.
        try await store.finish([.retry(id: first[0].id, attempts: [attempt], nextAttemptAt: clock.now.addingTimeInterval(30))])
        #expect(try await claim(store, clock, limit: 1, probe: true).isEmpty)
    }

    /// The order lane is (source, order id): the same order id from two sources is two lanes.
    func orderLanesAreKeptPerSource() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        let minis = event("minis", order: "42", at: clock.now)
        var shop = event("shop", order: "42", at: clock.now)
        shop.source = "tiktok-shop"
        _ = try await store.accept(minis)
        _ = try await store.accept(shop)
        let claimed = try await claim(store, clock)
        #expect(Set(claimed.map(\.eventID)) == [minis.id, shop.id])
    }

    /// The depth follows every change: ingest, delivery, dead letters written, replay.
    func queueDepthFollowsEveryChange() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        for index in 0..<5 {
            _ = try await store.accept(event("d\(index)", order: nil, consumers: ["orders", "analytics"], at: clock.now))
        }
        _ = try await store.accept(event("d0", order: nil, at: clock.now))  // a duplicate adds nothing
        #expect(try await store.depth(consumer: "orders") == 5)
        #expect(try await store.depth(consumer: "analytics") == 5)
        let claimed = try await claim(store, clock, limit: 3)
        let attempt = DeadLetter.Attempt(at: clock.now, status: 400, error: nil)
        try await store.finish([
            .delivered(id: claimed[0].id),
            .retry(id: claimed[1].id, attempts: [attempt], nextAttemptAt: clock.now),
            .deadLetter(id: claimed[2].id, attempts: [attempt], reason: "not retryable", at: clock.now),
        ])
        // The dead letter counts until its line is written.
        #expect(try await store.depth(consumer: "orders") == 4)
        let waiting = try await store.deadLettersToWrite(limit: 10)
        try await store.markDeadLettered(deliveryIDs: waiting.map(\.deliveryID))
        #expect(try await store.depth(consumer: "orders") == 3)
        #expect(try await store.depth(consumer: "analytics") == 5)
        _ = try await store.replay(waiting.map(\.deadLetter), consumer: "orders", force: false, dryRun: false, now: clock.now)
        #expect(try await store.depth(consumer: "orders") == 4)
        _ = try await store.replay(waiting.map(\.deadLetter), consumer: "orders", force: false, dryRun: true, now: clock.now)
        #expect(try await store.depth(consumer: "orders") == 4)
    }

    func runDeliveryQueueSuite() async throws {
        try await probesTakeTheEarliestNextAttempt()
        try await orderLanesAreKeptPerSource()
        try await queueDepthFollowsEveryChange()
        try await leasesHideClaimedDeliveriesUntilFinishedOrExpired()
        try await outcomesAreRecorded()
        try await laterEventsOfAnOrderWaitForEarlierOnes()
        try await deadLettersCarryTheirLineUntilWritten()
        try await eventsStoredAsDeadLettersSkipTheQueue()
        try await replayQueuesOnceUnlessForced()
        try await replayStoresTheEventAgainIfItIsGone()
        try await replayedEventsKeepTheirSandboxFlagAndOrder()
    }
}

/// An operator's pause of consumers, and the oldest queued delivery, on every backend.
extension StoreConformance where Store: ConsumerControlStore {
    func runConsumerControlSuite() async throws {
        try await consumerHoldsAreKeptUntilReleased()
        try await aPausedConsumersClaimsLeaseNothing()
        try await oldestPendingIsTheFirstQueuedDeliveryStillThere()
    }

    func consumerHoldsAreKeptUntilReleased() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        #expect(try await store.consumerHolds().isEmpty)
        let first = clock.now
        try await store.setConsumerHold(consumer: "orders", held: true, at: first)
        clock.advance(by: 5)
        // Pausing again keeps the first time; another consumer is not touched.
        try await store.setConsumerHold(consumer: "orders", held: true, at: clock.now)
        #expect(try await store.consumerHolds().mapValues(\.milliseconds) == ["orders": first.milliseconds])
        try await store.setConsumerHold(consumer: "audit", held: false, at: clock.now)
        #expect(try await store.consumerHolds().keys.sorted() == ["orders"])
        try await store.setConsumerHold(consumer: "orders", held: false, at: clock.now)
        #expect(try await store.consumerHolds().isEmpty)
    }

    /// A paused consumer's claims lease nothing, probes included; another consumer is not held
    /// back; resumed, its deliveries are claimed as before.
    func aPausedConsumersClaimsLeaseNothing() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        _ = try await store.accept(event("held-1", order: "7", consumers: ["orders", "audit"], at: clock.now))
        try await store.setConsumerHold(consumer: "orders", held: true, at: clock.now)
        #expect(try await claim(store, clock).isEmpty)
        #expect(try await claim(store, clock, probe: true).isEmpty)
        let audit = try await store.claim(
            consumer: "audit", limit: 10, now: clock.now, leaseUntil: clock.now.addingTimeInterval(600), asProbe: false)
        #expect(audit.count == 1)
        try await store.setConsumerHold(consumer: "orders", held: false, at: clock.now)
        #expect(try await claim(store, clock).count == 1)
    }

    func oldestPendingIsTheFirstQueuedDeliveryStillThere() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        #expect(try await store.oldestPending(consumer: "orders") == nil)
        let firstAt = clock.now
        _ = try await store.accept(event("oldest-1", order: nil, at: firstAt))
        clock.advance(by: 2)
        _ = try await store.accept(event("oldest-2", order: nil, consumers: ["orders", "audit"], at: clock.now))
        #expect(try await store.oldestPending(consumer: "orders")?.milliseconds == firstAt.milliseconds)
        #expect(try await store.oldestPending(consumer: "audit")?.milliseconds == clock.now.milliseconds)
        // Once the first is delivered, the second is the oldest.
        let claimed = try await claim(store, clock, limit: 1)
        try await store.finish([.delivered(id: try #require(claimed.first).id)])
        #expect(try await store.oldestPending(consumer: "orders")?.milliseconds == clock.now.milliseconds)
    }
}
