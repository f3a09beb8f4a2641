import Delivery
import Foundation
import Testing
import Verification

/// The event log on every backend: the delivery history, the filters and the cursor, redelivery,
/// and the history's retention.
extension StoreConformance where Store: EventLogStore & RetainingStore {
    func runEventLogSuite() async throws {
        try await theHistoryKeepsEveryAttemptOfEveryDelivery()
        try await everyFilterSelectsItsEvents()
        try await pagesDoNotShiftWhenEventsArrive()
        try await redeliveryQueuesBehindTheOrderAndSkipsPendingDeliveries()
        try await historyIsPrunedWithItsEvent()
    }

    func deliveries(_ store: Store, _ id: String, _ clock: ManualClock) async throws -> [String: DeliveryRecord] {
        let record = try #require(try await store.eventRecord(id: id, now: clock.now))
        return Dictionary(record.deliveries.map { ($0.consumer, $0) }, uniquingKeysWith: { $1 })
    }

    func claim(_ store: Store, _ consumer: String, _ clock: ManualClock, lease: TimeInterval = 600) async throws -> [ClaimedDelivery] {
        try await store.claim(
            consumer: consumer, limit: 10, now: clock.now, leaseUntil: clock.now.addingTimeInterval(lease), asProbe: false)
    }

    /// Delivered, dead-lettered, pending, leased: each delivery's state and every attempt with
    /// its status, error and duration, from the outcome writes alone.
    func theHistoryKeepsEveryAttemptOfEveryDelivery() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        let incoming = event("history", order: "42", consumers: ["orders", "audit", "analytics", "crm"], at: clock.now)
        _ = try await store.accept(incoming)

        let first = try #require(try await claim(store, "orders", clock).first)
        let failed = DeadLetter.Attempt(at: clock.now, status: 503, error: nil, durationMs: 12)
        try await store.finish([.retry(id: first.id, attempts: [failed], nextAttemptAt: clock.now.addingTimeInterval(30))])
        clock.advance(by: 30)
        let second = try #require(try await claim(store, "orders", clock).first)
        #expect(second.attempts == [failed])
        let succeeded = DeadLetter.Attempt(at: clock.now, status: 200, error: nil, durationMs: 7)
        try await store.finish([.delivered(id: second.id, attempts: [failed, succeeded])])

        let audit = try #require(try await claim(store, "audit", clock).first)
        let refused = DeadLetter.Attempt(at: clock.now, status: nil, error: "connection refused", durationMs: 1)
        try await store.finish([.deadLetter(id: audit.id, attempts: [refused], reason: "max attempts", at: clock.now)])
        // Decided, line not written yet: already dead-lettered for the log.
        #expect(try await deliveries(store, incoming.id, clock)["audit"]?.status == .deadLettered)
        let waiting = try await store.deadLettersToWrite(limit: 10)
        try await store.markDeadLettered(deliveryIDs: waiting.map(\.deliveryID))

        _ = try await claim(store, "analytics", clock)

        let found = try await deliveries(store, incoming.id, clock)
        #expect(found["orders"]?.status == .delivered)
        #expect(found["orders"]?.attempts == [failed, succeeded])
        #expect(found["orders"]?.nextAttemptAt == nil)
        #expect(found["audit"]?.status == .deadLettered)
        #expect(found["audit"]?.attempts == [refused])
        #expect(found["audit"]?.reason == "max attempts")
        #expect(found["audit"]?.deadLetterID == waiting.first?.deadLetter.id)
        #expect(found["analytics"]?.status == .delivering)
        #expect(found["crm"]?.status == .pending)
        #expect(found["crm"]?.attempts == [])
        #expect(found["crm"]?.nextAttemptAt?.milliseconds == incoming.receivedAt.milliseconds)
        // The finished deliveries left the queue.
        #expect(try await store.depth(consumer: "orders") == 0)
        #expect(try await store.depth(consumer: "audit") == 0)
        #expect(try await store.depth(consumer: "crm") == 1)
        // A late outcome for a finished delivery (a lease that ran out, an outcome recorded twice)
        // changes nothing: the delivered row stays delivered, no dead letter comes of it, and the
        // queue is not counted down again.
        try await store.finish([
            .retry(id: second.id, attempts: [failed], nextAttemptAt: clock.now),
            .deadLetter(id: second.id, attempts: [failed], reason: "max attempts", at: clock.now),
        ])
        #expect(try await deliveries(store, incoming.id, clock)["orders"]?.status == .delivered)
        #expect(try await deliveries(store, incoming.id, clock)["orders"]?.attempts == [failed, succeeded])
        #expect(try await store.deadLettersToWrite(limit: 10).isEmpty)
        #expect(try await store.depth(consumer: "orders") == 0)

        let record = try #require(try await store.eventRecord(id: incoming.id, now: clock.now))
        #expect(record.body == incoming.body)
        #expect(record.orderID == "42")
        #expect(record.headers == Dictionary(incoming.headers, uniquingKeysWith: { $1 }))
        #expect(try await store.eventRecord(id: "evt_unknown", now: clock.now) == nil)
    }

    func everyFilterSelectsItsEvents() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        let start = clock.now
        var a = event("filter-a", order: "42", at: clock.now)
        a.eventType = "minis.trade_order.redeem.success"
        clock.advance(by: 1)
        var b = event("filter-b", order: "43", at: clock.now)
        b.eventType = "minis.trade_order.refund.success"
        clock.advance(by: 1)
        var c = event("filter-c", order: "42", at: clock.now)
        c.source = "shop"
        c.eventType = "shop.order_status_change"
        clock.advance(by: 1)
        let d = event("filter-d", order: nil, at: clock.now)
        for incoming in [a, b, c, d] { _ = try await store.accept(incoming) }
        // a delivered, b dead-lettered, c and d pending.
        let claimed = try await claim(store, "orders", clock)
        let byEvent = Dictionary(claimed.map { ($0.eventID, $0.id) }, uniquingKeysWith: { $1 })
        try await store.finish([
            .delivered(id: try #require(byEvent[a.id]), attempts: [DeadLetter.Attempt(at: clock.now, status: 204, error: nil)]),
            .deadLetter(id: try #require(byEvent[b.id]), attempts: [], reason: "not retryable: status 410", at: clock.now),
            .retry(id: try #require(byEvent[c.id]), attempts: [], nextAttemptAt: clock.now),
            .retry(id: try #require(byEvent[d.id]), attempts: [], nextAttemptAt: clock.now),
        ])

        func ids(_ query: EventQuery) async throws -> [String] {
            try await store.events(matching: query, now: clock.now).events.map(\.id)
        }
        #expect(try await ids(EventQuery()) == [d.id, c.id, b.id, a.id])
        #expect(try await ids(EventQuery(orderID: "42")) == [c.id, a.id])
        #expect(try await ids(EventQuery(source: "shop")) == [c.id])
        #expect(try await ids(EventQuery(source: "tiktok", orderID: "42")) == [a.id])
        #expect(try await ids(EventQuery(eventType: "minis.trade_order.refund.success")) == [b.id])
        #expect(try await ids(EventQuery(dedupKey: "filter-d")) == [d.id])
        #expect(try await ids(EventQuery(status: .delivered)) == [a.id])
        #expect(try await ids(EventQuery(status: .deadLettered)) == [b.id])
        #expect(try await ids(EventQuery(status: .pending)) == [d.id, c.id])
        // `since` included, `until` excluded.
        #expect(try await ids(EventQuery(since: start.addingTimeInterval(1), until: start.addingTimeInterval(3))) == [c.id, b.id])
        #expect(try await ids(EventQuery(orderID: "nothing")) == [])
        let listed = try #require(try await store.events(matching: EventQuery(orderID: "42"), now: clock.now).events.last)
        #expect(listed.source == "tiktok")
        #expect(listed.eventType == "minis.trade_order.redeem.success")
        #expect(listed.deliveries.map(\.status) == [.delivered])
        #expect(listed.deliveries.first?.attempts.map(\.status) == [204])
        // A list does not carry bodies.
        #expect(listed.body == nil)
    }

    /// Newest first with a cursor: events that arrive while an operator pages do not shift the
    /// pages after the first, and no event is listed twice or skipped.
    func pagesDoNotShiftWhenEventsArrive() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        var stored: [String] = []
        for index in 0..<5 {
            let incoming = event("page-\(index)", order: nil, at: clock.now)
            _ = try await store.accept(incoming)
            stored.append(incoming.id)
            // Two events in the same millisecond: the id breaks the tie.
            if index == 2 {
                let twin = event("page-twin", order: nil, at: clock.now)
                _ = try await store.accept(twin)
                stored.append(twin.id)
            }
            clock.advance(by: 0.5)
        }
        let expected = stored.sorted { lhs, rhs in
            let l = stored.firstIndex(of: lhs)!
            let r = stored.firstIndex(of: rhs)!
            // Same millisecond for indexes 2 and 3 (page-2 and the twin): by id, descending.
            if (l == 2 || l == 3) && (r == 2 || r == 3) { return lhs > rhs }
            return l > r
        }
        var seen: [String] = []
        var cursor: EventCursor?
        var pages = 0
        repeat {
            let page = try await store.events(matching: EventQuery(limit: 2, cursor: cursor), now: clock.now)
            seen += page.events.map(\.id)
            cursor = page.nextCursor
            pages += 1
            // Arrivals between pages.
            _ = try await store.accept(event("page-new-\(pages)", order: nil, at: clock.now))
            clock.advance(by: 0.5)
            if let cursor { #expect(EventCursor(text: cursor.text) == cursor) }
        } while cursor != nil && pages < 10
        #expect(seen == expected)
        #expect(pages == 3)
        #expect(EventCursor(text: "12.evt_ok") != nil)
        #expect(EventCursor(text: "x.evt") == nil)
        #expect(EventCursor(text: "12.evt'--") == nil)
    }

    func redeliveryQueuesBehindTheOrderAndSkipsPendingDeliveries() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        let first = event("redeliver-1", order: "42", consumers: ["orders", "audit"], at: clock.now)
        clock.advance(by: 1)
        let second = event("redeliver-2", order: "42", consumers: ["orders"], at: clock.now)
        _ = try await store.accept(first)
        _ = try await store.accept(second)
        let delivered = try #require(try await claim(store, "orders", clock).first)
        #expect(delivered.eventID == first.id)
        try await store.finish([.delivered(id: delivered.id, attempts: [DeadLetter.Attempt(at: clock.now, status: 200, error: nil)])])

        // "audit" still has the event pending: skipped; "orders" gets a new delivery.
        let result = try #require(try await store.redeliver(eventID: first.id, consumers: ["orders", "audit"], now: clock.now))
        #expect(result.queued == ["orders"])
        #expect(result.skipped.map(\.consumer) == ["audit"])
        #expect(try await store.depth(consumer: "orders") == 2)
        // Asked twice while the new one is pending: skipped.
        let again = try #require(try await store.redeliver(eventID: first.id, consumers: ["orders"], now: clock.now))
        #expect(again.queued == [] && again.skipped.map(\.consumer) == ["orders"])

        // The order's later event goes first; the redelivery waits behind it, with the event's
        // original id and a fresh attempt count.
        let next = try await claim(store, "orders", clock)
        #expect(next.map(\.eventID) == [second.id])
        try await store.finish([.delivered(id: next[0].id)])
        let redelivered = try await claim(store, "orders", clock)
        #expect(redelivered.map(\.eventID) == [first.id])
        #expect(redelivered.first?.attempts == [])

        let history = try #require(try await store.eventRecord(id: first.id, now: clock.now))
        let orders = history.deliveries.filter { $0.consumer == "orders" }
        #expect(orders.map(\.status) == [.delivered, .delivering])
        #expect(orders.last?.replayOf == "redeliver")
        #expect(try await store.redeliver(eventID: "evt_unknown", consumers: ["orders"], now: clock.now) == nil)
    }

    /// An event's deliveries' history goes with the event, once its retention is over; an event
    /// redelivered after it finished waits for its new delivery.
    func historyIsPrunedWithItsEvent() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        let kept = event("prune-kept", order: nil, at: clock.now)
        let gone = event("prune-gone", order: nil, at: clock.now)
        _ = try await store.accept(kept)
        _ = try await store.accept(gone)
        for delivery in try await claim(store, "orders", clock) {
            try await store.finish([.delivered(id: delivery.id, attempts: [DeadLetter.Attempt(at: clock.now, status: 200, error: nil)])])
        }
        #expect(try await store.pruneFinishedEvents(now: clock.now, retention: .seconds(60), limit: 100).marked == 2)
        _ = try #require(try await store.redeliver(eventID: kept.id, consumers: ["orders"], now: clock.now))
        clock.advance(by: 61)
        let result = try await store.pruneFinishedEvents(now: clock.now, retention: .seconds(60), limit: 100)
        #expect(result.pruned == 1)
        #expect(try await store.eventRecord(id: gone.id, now: clock.now) == nil)
        #expect(try await store.events(matching: EventQuery(dedupKey: "prune-gone"), now: clock.now).events.isEmpty)
        let stillThere = try #require(try await store.eventRecord(id: kept.id, now: clock.now))
        #expect(stillThere.deliveries.map(\.status) == [.delivered, .pending])
    }
}
