import Delivery
import Foundation
import Logging
import Testing
import Verification

/// What keeps the SQLite store fit for months unattended: event retention, queue depths kept
/// without counting rows, and one bad request of a group-commit batch failing only itself.
struct SQLiteStoreUpkeepTests {
    let logger = Logger(label: "test")

    func makeStore(_ directory: borrowing TemporaryDirectory, _ clock: ManualClock) throws -> SQLiteStore {
        try SQLiteStore(configuration: .init(path: directory.path("store.sqlite")), logger: logger, now: { clock.now })
    }

    func claimAll(_ store: SQLiteStore, _ clock: ManualClock) async throws -> [ClaimedDelivery] {
        try await store.claim(
            consumer: "orders", limit: 100, now: clock.now, leaseUntil: clock.now.addingTimeInterval(600), ignoringSchedule: false)
    }

    @Test func finishedEventsArePrunedAfterTheRetentionAndUnfinishedOnesAreKept() async throws {
        let directory = try TemporaryDirectory()
        let clock = ManualClock()
        let store = try makeStore(directory, clock)
        var events: [IncomingEvent] = []
        for index in 0..<7 {
            var event = StoreConformance<SQLiteStore>.event(
                key: "k\(index)", id: EventID.make(milliseconds: clock.now.milliseconds), at: clock.now)
            event.orderID = "order-\(index)"
            _ = try await store.accept(event)
            events.append(event)
        }
        let claimed = try await claimAll(store, clock)
        let attempt = DeadLetter.Attempt(at: clock.now, status: 400, error: nil)
        // 0–4 delivered; 5 a dead letter whose line is not written yet; 6 still pending.
        try await store.finish(
            claimed.prefix(5).map { DeliveryUpdate.delivered(id: $0.id) } + [
                DeliveryUpdate.deadLetter(id: claimed[5].id, attempts: [attempt], reason: "not retryable", at: clock.now)
            ])
        let service = PruneService(
            dedup: store, events: store, eventRetention: .seconds(3_600), chunkSize: 2, logger: logger, now: { clock.now })
        let first = await service.pruneOnce()
        #expect(first.eventsMarked == 5)
        #expect(first.eventsPruned == 0)
        // Not yet the retention after they finished.
        clock.advance(by: 3_599)
        #expect(await service.pruneOnce().eventsPruned == 0)
        clock.advance(by: 1)
        #expect(await service.pruneOnce().eventsPruned == 5)
        for event in events.prefix(5) { #expect(try await store.event(id: event.id) == nil) }
        #expect(try await store.event(id: events[5].id) != nil)
        #expect(try await store.event(id: events[6].id) != nil)
        // The dedup keys keep their own retention: a retry of a pruned event is still a duplicate.
        #expect(try await store.accept(events[0]) == .duplicate(firstEventID: events[0].id))

        // Once its line is written, the dead letter's event finishes too and is pruned in time;
        // a replay of it afterwards stores the event again from the line.
        let waiting = try await store.deadLettersToWrite(limit: 10)
        try await store.markDeadLettered(deliveryIDs: waiting.map(\.deliveryID))
        #expect(await service.pruneOnce().eventsMarked == 1)
        clock.advance(by: 3_600)
        #expect(await service.pruneOnce().eventsPruned == 1)
        #expect(try await store.event(id: events[5].id) == nil)
        let replayed = try await store.replay(
            waiting.map(\.deadLetter), consumer: "orders", force: false, dryRun: false, now: clock.now)
        #expect(replayed.replayed.count == 1)
        #expect(try await store.event(id: events[5].id)?.body == events[5].body)
        #expect(try await store.event(id: events[6].id) != nil)
    }

    /// Under a steady load with pruning, the database stops growing once a retention window is
    /// full: pruned rows' pages are reused. Eight simulated days with a one-day retention, 600
    /// deliveries of 1 KiB events a day, pruned every three hours; without pruning the file would
    /// grow by the same amount each day.
    @Test func underASteadyLoadTheDatabaseLevelsOff() async throws {
        let directory = try TemporaryDirectory()
        let clock = ManualClock()
        let store = try SQLiteStore(
            configuration: .init(path: directory.path("store.sqlite"), dedupRetention: .seconds(72 * 3_600)),
            logger: logger, now: { clock.now })
        let service = PruneService(
            dedup: store, events: store, eventRetention: .seconds(86_400), logger: logger, now: { clock.now })
        let padding = String(repeating: "x", count: 1_000)
        var pagesAtEndOfDay: [Int] = []
        for day in 0..<8 {
            for slot in 0..<8 {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<75 {
                        let key = "d\(day)-\(slot)-\(index)"
                        var event = StoreConformance<SQLiteStore>.event(
                            key: key, id: "evt_\(key)", body: #"{"k":"\#(key)","pad":"\#(padding)"}"#, at: clock.now)
                        event.orderID = nil
                        group.addTask { _ = try await store.accept(event) }
                    }
                    try await group.waitForAll()
                }
                let claimed = try await claimAll(store, clock)
                try await store.finish(claimed.map { DeliveryUpdate.delivered(id: $0.id) })
                clock.advance(by: 3 * 3_600)
                await service.pruneOnce()
            }
            pagesAtEndOfDay.append(try await store.pageCounts().total)
        }
        #expect(try await store.depth(consumer: "orders") == 0)
        // The first days fill the windows (a day of events, three days of dedup keys); from
        // day 4 on, the file holds its size within a few percent.
        let settled = pagesAtEndOfDay[4]
        for pages in pagesAtEndOfDay[5...] {
            #expect(Double(pages) <= Double(settled) * 1.05, "pages by day: \(pagesAtEndOfDay)")
        }
        // Without pruning, eight days would hold four times what two days hold.
        #expect(Double(pagesAtEndOfDay[7]) < Double(pagesAtEndOfDay[1]) * 2, "pages by day: \(pagesAtEndOfDay)")
        print("database pages at the end of each simulated day: \(pagesAtEndOfDay)")
    }

    @Test func theQueueDepthIsReadWithoutQueryingAndSurvivesAReopen() async throws {
        let directory = try TemporaryDirectory()
        let clock = ManualClock()
        let store = try makeStore(directory, clock)
        for index in 0..<30 {
            var event = StoreConformance<SQLiteStore>.event(key: "k\(index)", at: clock.now)
            event.orderID = nil
            _ = try await store.accept(event)
        }
        let reads = store.readCount
        for _ in 0..<100 { #expect(try await store.depth(consumer: "orders") == 30) }
        #expect(store.readCount == reads)
        let claimed = try await claimAll(store, clock)
        try await store.finish(claimed.prefix(10).map { DeliveryUpdate.delivered(id: $0.id) })
        #expect(try await store.depth(consumer: "orders") == 20)
        let reopened = try makeStore(directory, clock)
        #expect(try await reopened.depth(consumer: "orders") == 20)
    }

    /// Requests that commit together share a transaction; one whose value SQLite refuses must fail
    /// alone, not take the others of its batch down with it.
    @Test func oneBadRequestFailsOnlyItselfInItsBatch() async throws {
        let directory = try TemporaryDirectory()
        let clock = ManualClock()
        let store = try makeStore(directory, clock)
        try await store.limitValueLength(to: 400)
        let commitsBefore = store.commitCount
        store.holdCommits()
        let good = (0..<4).map { StoreConformance<SQLiteStore>.event(key: "good-\($0)", id: "evt_good\($0)", at: clock.now) }
        let bad = StoreConformance<SQLiteStore>.event(
            key: "bad", id: "evt_bad", body: #"{"pad":""# + String(repeating: "x", count: 1_000) + #""}"#, at: clock.now)
        async let outcomes: [String: Bool] = withTaskGroup(of: (String, Bool).self) { group in
            for event in good + [bad] {
                group.addTask { (event.id, (try? await store.accept(event)) == .accepted(eventID: event.id)) }
            }
            var outcomes: [String: Bool] = [:]
            for await (id, accepted) in group { outcomes[id] = accepted }
            return outcomes
        }
        // Every request waits in the queue before the first transaction starts.
        let deadline = ContinuousClock.now + .seconds(10)
        while store.pendingCount < 5 && ContinuousClock.now < deadline { await Task.yield() }
        #expect(store.pendingCount == 5)
        store.releaseCommits()
        let results = await outcomes
        #expect(results == ["evt_good0": true, "evt_good1": true, "evt_good2": true, "evt_good3": true, "evt_bad": false])
        #expect(store.commitCount == commitsBefore + 1)
        #expect(try await store.event(id: "evt_bad") == nil)
        #expect(try await store.dedupEntry(for: bad.dedupKey) == nil)
        #expect(try await store.depth(consumer: "orders") == 4)
    }
}
