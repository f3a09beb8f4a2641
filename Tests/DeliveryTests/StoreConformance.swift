import Delivery
import Foundation
import Testing
import Verification

/// The behaviour every store backend must have, written against the protocols only. A new backend
/// (PostgreSQL, for several gateway instances) passes by running these with its own factory.
struct StoreConformance<Store: EventStore & DedupStore & DeliveryQueue> {
    /// Makes a fresh, empty store using `now` as its clock and the given dedup retention.
    let makeStore: (_ now: @escaping @Sendable () -> Date, _ retention: Duration) async throws -> Store
    /// Several gateways use the store at once (PostgreSQL): a starting gateway releases no lease,
    /// since the leases in the store may belong to gateways that are running.
    var sharedByGateways = false

    init(
        sharedByGateways: Bool = false,
        makeStore: @escaping (_ now: @escaping @Sendable () -> Date, _ retention: Duration) async throws -> Store
    ) {
        self.sharedByGateways = sharedByGateways
        self.makeStore = makeStore
    }

    static func event(
        key: String,
        id: String = EventID.make(milliseconds: 0),
        body: String = #"{"event":"e"}"#,
        consumers: [String] = ["orders"],
        at date: Date
    ) -> IncomingEvent {
        IncomingEvent(
            id: id,
            source: "tiktok",
            eventType: "minis.trade_order.redeem.success",
            dedupKey: DedupKey(rawValue: key),
            orderID: "42",
            receivedAt: date,
            headers: [("tiktok-signature", "t=1,s=00"), ("content-type", "application/json")],
            body: Data(body.utf8),
            consumers: consumers
        )
    }

    func storesAndReadsBackExactly() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        let body = "{\"event\":\"e\",\"content\":\"caf\u{e9} \\\"quoted\\\"\"}"
        let event = Self.event(key: "k1", body: body, consumers: ["orders", "analytics"], at: clock.now)
        #expect(try await store.accept(event) == .accepted(eventID: event.id))
        let stored = try #require(try await store.event(id: event.id))
        #expect(stored.body == Data(body.utf8))
        #expect(stored.source == "tiktok")
        #expect(stored.dedupKey == "k1")
        #expect(stored.orderID == "42")
        #expect(stored.headers == ["tiktok-signature": "t=1,s=00", "content-type": "application/json"])
        #expect(abs(stored.receivedAt.timeIntervalSince(clock.now)) < 0.001)
        #expect(try await store.depth(consumer: "orders") == 1)
        #expect(try await store.depth(consumer: "analytics") == 1)
        #expect(try await store.depth(consumer: "billing") == 0)
        let claimed = try await store.claim(
            consumer: "orders", limit: 10, now: clock.now, leaseUntil: clock.now.addingTimeInterval(60), asProbe: false)
        #expect(claimed.map(\.eventID) == [event.id])
    }

    /// The values at the edges of what a column holds: an empty body is an empty blob (not NULL,
    /// which the column refuses), absent type and order are NULL, empty and non-ASCII text stays
    /// as it was.
    func storesEdgeValuesExactly() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        var event = Self.event(key: "k:caf\u{e9}", body: "", at: clock.now)
        event.eventType = nil
        event.orderID = nil
        event.headers = [("x-empty", ""), ("x-note", "caf\u{e9} \u{1F600}")]
        #expect(try await store.accept(event) == .accepted(eventID: event.id))
        let stored = try #require(try await store.event(id: event.id))
        #expect(stored.body == Data())
        #expect(stored.eventType == nil)
        #expect(stored.orderID == nil)
        #expect(stored.dedupKey == "k:caf\u{e9}")
        #expect(stored.headers == ["x-empty": "", "x-note": "caf\u{e9} \u{1F600}"])
        let claimed = try await store.claim(
            consumer: "orders", limit: 10, now: clock.now, leaseUntil: clock.now.addingTimeInterval(60), asProbe: false)
        #expect(claimed.map(\.eventID) == [event.id])
        #expect(claimed.first?.body == Data())
        #expect(claimed.first?.eventType == nil)
    }

    func duplicatesAnswerTheFirstID() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        let first = Self.event(key: "k", at: clock.now)
        let second = Self.event(key: "k", at: clock.now)
        #expect(try await store.accept(first) == .accepted(eventID: first.id))
        #expect(try await store.accept(second) == .duplicate(firstEventID: first.id))
        #expect(try await store.event(id: second.id) == nil)
        #expect(try await store.depth(consumer: "orders") == 1)
    }

    func concurrentDuplicatesStoreOneEvent() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        let outcomes = try await withThrowingTaskGroup(of: AcceptOutcome.self) { group in
            for _ in 0..<50 {
                group.addTask { try await store.accept(Self.event(key: "same", at: clock.now)) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let accepted = outcomes.compactMap { if case .accepted(let id) = $0 { id } else { nil } }
        #expect(accepted.count == 1)
        let firstID = try #require(accepted.first)
        #expect(outcomes.filter { $0 == .duplicate(firstEventID: firstID) }.count == 49)
        #expect(try await store.depth(consumer: "orders") == 1)
    }

    func keysExpireAfterRetentionAndArePruned() async throws {
        let clock = ManualClock()
        let retention: Duration = .seconds(72 * 3_600)
        let store = try await makeStore({ clock.now }, retention)
        let old = Self.event(key: "old", at: clock.now)
        #expect(try await store.accept(old) == .accepted(eventID: old.id))
        clock.advance(by: 3_600)
        let newer = Self.event(key: "newer", at: clock.now)
        #expect(try await store.accept(newer) == .accepted(eventID: newer.id))

        // One second before the old key's expiry it is still a duplicate.
        clock.advance(by: 71 * 3_600 - 1)
        #expect(try await store.accept(Self.event(key: "old", at: clock.now)) == .duplicate(firstEventID: old.id))
        #expect(try await store.pruneExpiredDedupKeys(now: clock.now, limit: 100) == 0)

        // At expiry, pruning removes the old key only.
        clock.advance(by: 1)
        #expect(try await store.pruneExpiredDedupKeys(now: clock.now, limit: 100) == 1)
        #expect(try await store.dedupEntry(for: DedupKey(rawValue: "old")) == nil)
        #expect(try await store.dedupEntry(for: DedupKey(rawValue: "newer"))?.eventID == newer.id)

        // The same key is a new event again.
        let again = Self.event(key: "old", at: clock.now)
        #expect(try await store.accept(again) == .accepted(eventID: again.id))
    }

    func expiredButUnprunedKeysCountAsAbsent() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        let first = Self.event(key: "k", at: clock.now)
        _ = try await store.accept(first)
        clock.advance(by: 72 * 3_600)
        let second = Self.event(key: "k", at: clock.now)
        #expect(try await store.accept(second) == .accepted(eventID: second.id))
        #expect(try await store.dedupEntry(for: DedupKey(rawValue: "k"))?.eventID == second.id)
    }

    func pruningWorksInChunks() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        for index in 0..<25 {
            _ = try await store.accept(Self.event(key: "k\(index)", at: clock.now))
        }
        clock.advance(by: 73 * 3_600)
        #expect(try await store.pruneExpiredDedupKeys(now: clock.now, limit: 10) == 10)
        #expect(try await store.pruneExpiredDedupKeys(now: clock.now, limit: 10) == 10)
        #expect(try await store.pruneExpiredDedupKeys(now: clock.now, limit: 10) == 5)
        #expect(try await store.pruneExpiredDedupKeys(now: clock.now, limit: 10) == 0)
    }

    func deadLetteredDeliveriesLeaveTheQueue() async throws {
        let clock = ManualClock()
        let store = try await makeStore({ clock.now }, .seconds(72 * 3_600))
        var event = Self.event(key: "k", consumers: ["_unparsed"], at: clock.now)
        event.deadLetterReason = "not an envelope"
        _ = try await store.accept(event)
        #expect(try await store.depth(consumer: "_unparsed") == 1)
        let waiting = try await store.deadLettersToWrite(limit: 10)
        #expect(waiting.count == 1)
        try await store.markDeadLettered(deliveryIDs: waiting.map(\.deliveryID))
        #expect(try await store.depth(consumer: "_unparsed") == 0)
        #expect(await store.checkWritable())
    }

    func runAll() async throws {
        try await storesAndReadsBackExactly()
        try await storesEdgeValuesExactly()
        try await duplicatesAnswerTheFirstID()
        try await concurrentDuplicatesStoreOneEvent()
        try await keysExpireAfterRetentionAndArePruned()
        try await expiredButUnprunedKeysCountAsAbsent()
        try await pruningWorksInChunks()
        try await deadLetteredDeliveriesLeaveTheQueue()
        try await runDeliveryQueueSuite()
    }
}
