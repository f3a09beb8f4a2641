import Delivery
import Foundation
import GatewayTestSupport
import Logging
import Synchronization
import Testing
import Verification

/// The shared store against a real PostgreSQL (see ``TestPostgres``): the same conformance suites
/// as the SQLite store, and what only several gateways on one database can show.
@Suite(.enabled(if: TestPostgres.enabled, Comment(rawValue: TestPostgres.skipMessage)))
struct PostgresStoreTests {
    let logger = Logger(label: "test")

    func makeStore(
        schema: String = TestPostgres.freshSchema(),
        now: @escaping @Sendable () -> Date = { Date() },
        retention: Duration = .seconds(72 * 3_600)
    ) async throws -> PostgresStore {
        let url = try PostgresURL(parsing: try TestPostgres.requireURL())
        return try await PostgresStore(
            configuration: .init(connection: url, maxConnections: 4, dedupRetention: retention, schema: schema),
            logger: logger,
            now: now
        )
    }

    @Test func passesTheStoreConformanceSuite() async throws {
        let conformance = StoreConformance<PostgresStore>(sharedByGateways: true) { now, retention in
            try await makeStore(now: now, retention: retention)
        }
        try await conformance.runAll()
        try await conformance.runConsumerControlSuite()
        try await conformance.runEventLogSuite()
    }

    /// An operator's pause made through one gateway holds for the others.
    @Test func anOperatorsPauseHoldsForEveryGateway() async throws {
        let schema = TestPostgres.freshSchema()
        let first = try await makeStore(schema: schema)
        let second = try await makeStore(schema: schema)
        let at = Date(timeIntervalSince1970: 1_764_000_000)
        try await first.setConsumerHold(consumer: "orders", held: true, at: at)
        #expect(try await second.consumerHolds() == ["orders": at])
        try await second.setConsumerHold(consumer: "orders", held: false, at: at)
        #expect(try await first.consumerHolds().isEmpty)
        await first.close()
        await second.close()
    }

    /// Two stores on one schema stand for two gateways: the same event sent to both at once is
    /// stored once, and both answers carry the first id.
    @Test func theSameEventAtTwoGatewaysIsStoredOnce() async throws {
        let schema = TestPostgres.freshSchema()
        let first = try await makeStore(schema: schema)
        let second = try await makeStore(schema: schema)
        let now = Date()
        for round in 0..<20 {
            let a = StoreConformance<PostgresStore>.event(key: "k\(round)", id: "evt_a\(round)", at: now)
            let b = StoreConformance<PostgresStore>.event(key: "k\(round)", id: "evt_b\(round)", at: now)
            async let fromFirst = first.accept(a)
            async let fromSecond = second.accept(b)
            let outcomes = try await [fromFirst, fromSecond]
            let accepted = outcomes.compactMap { if case .accepted(let id) = $0 { id } else { nil } }
            let duplicates = outcomes.compactMap { if case .duplicate(let id) = $0 { id } else { nil } }
            #expect(accepted.count == 1, "round \(round): \(outcomes)")
            #expect(duplicates == accepted, "round \(round): \(outcomes)")
        }
        #expect(try await first.eventCount() == 20)
        #expect(try await second.depth(consumer: "orders") == 20)
        await first.close()
        await second.close()
    }

    /// A gateway whose lease ran out cannot overwrite the outcome of the gateway that took the
    /// delivery over; the delivery is claimable by another gateway once the lease expires.
    @Test func anExpiredLeaseIsTakenOverAndTheLateOutcomeIsIgnored() async throws {
        let schema = TestPostgres.freshSchema()
        let clock = ManualClock()
        let slow = try await makeStore(schema: schema, now: { clock.now })
        let other = try await makeStore(schema: schema, now: { clock.now })
        let event = StoreConformance<PostgresStore>.event(key: "k", at: clock.now)
        _ = try await slow.accept(event)
        let held = try await slow.claim(
            consumer: "orders", limit: 10, now: clock.now, leaseUntil: clock.now.addingTimeInterval(30), asProbe: false)
        #expect(held.map(\.eventID) == [event.id])
        #expect(
            try await other.claim(
                consumer: "orders", limit: 10, now: clock.now, leaseUntil: clock.now.addingTimeInterval(30), asProbe: false
            ).isEmpty)
        clock.advance(by: 31)
        let takenOver = try await other.claim(
            consumer: "orders", limit: 10, now: clock.now, leaseUntil: clock.now.addingTimeInterval(30), asProbe: false)
        #expect(takenOver.map(\.eventID) == [event.id])
        // The slow gateway's late failure is not recorded; the new holder's success is.
        let attempt = DeadLetter.Attempt(at: clock.now, status: 500, error: nil)
        try await slow.finish([
            .retry(id: try #require(held.first).id, attempts: [attempt], nextAttemptAt: clock.now.addingTimeInterval(60))
        ])
        #expect(try await other.depth(consumer: "orders") == 1)
        try await other.finish([.delivered(id: try #require(takenOver.first).id)])
        #expect(try await other.depth(consumer: "orders") == 0)
        await slow.close()
        await other.close()
    }

    /// Per-order ordering across gateways: while one gateway holds the head of a lane, no other
    /// gateway can claim the next delivery of that lane.
    @Test func anOrderLaneHasOneHeadAcrossGateways() async throws {
        let schema = TestPostgres.freshSchema()
        let clock = ManualClock()
        let first = try await makeStore(schema: schema, now: { clock.now })
        let second = try await makeStore(schema: schema, now: { clock.now })
        let conformance = StoreConformance<PostgresStore> { _, _ in first }
        for index in 0..<3 { _ = try await first.accept(conformance.event("k\(index)", order: "42", at: clock.now)) }
        _ = try await first.accept(conformance.event("other", order: "43", at: clock.now))
        let lease = clock.now.addingTimeInterval(60)
        let a = try await first.claim(consumer: "orders", limit: 10, now: clock.now, leaseUntil: lease, asProbe: false)
        let b = try await second.claim(consumer: "orders", limit: 10, now: clock.now, leaseUntil: lease, asProbe: false)
        #expect(a.count == 2)
        #expect(b.isEmpty)
        try await first.finish(a.map { .delivered(id: $0.id) })
        let next = try await second.claim(consumer: "orders", limit: 10, now: clock.now, leaseUntil: lease, asProbe: false)
        #expect(next.count == 1)
        #expect(next.first?.dedupKey == "k1")
        await first.close()
        await second.close()
    }

    /// A consumer paused by one gateway is paused for all, and gets one probe at a time across
    /// them: a second gateway's probe waits until the first is back, or until its lease ran out
    /// (the probing gateway died).
    @Test func aPausedConsumerHasOneProbeAcrossGateways() async throws {
        let schema = TestPostgres.freshSchema()
        let clock = ManualClock()
        let first = try await makeStore(schema: schema, now: { clock.now })
        let second = try await makeStore(schema: schema, now: { clock.now })
        let conformance = StoreConformance<PostgresStore> { _, _ in first }
        // Four events of no order: none waits for another.
        for index in 0..<4 { _ = try await first.accept(conformance.event("k\(index)", order: nil, at: clock.now)) }
        #expect(try await second.sharedPause(consumer: "orders") == false)
        try await first.recordPause(consumer: "orders", paused: true, at: clock.now)
        #expect(try await second.sharedPause(consumer: "orders") == true)
        #expect(try await second.sharedPause(consumer: "analytics") == false)

        let lease = clock.now.addingTimeInterval(30)
        let probe = try await first.claim(consumer: "orders", limit: 1, now: clock.now, leaseUntil: lease, asProbe: true)
        try #require(probe.count == 1)
        #expect(try await second.claim(consumer: "orders", limit: 1, now: clock.now, leaseUntil: lease, asProbe: true).isEmpty)
        // The probe failed: its lease on probing is released with the outcome.
        let attempt = DeadLetter.Attempt(at: clock.now, status: 503, error: nil)
        try await first.finish([
            .retry(id: try #require(probe.first).id, attempts: [attempt], nextAttemptAt: clock.now.addingTimeInterval(60))
        ])
        let next = try await second.claim(consumer: "orders", limit: 1, now: clock.now, leaseUntil: lease, asProbe: true)
        #expect(next.count == 1)
        #expect(next.first?.id != probe.first?.id)
        // The gateway probing dies: after its lease another gateway probes.
        #expect(try await first.claim(consumer: "orders", limit: 1, now: clock.now, leaseUntil: lease, asProbe: true).isEmpty)
        clock.advance(by: 31)
        let after = try await first.claim(
            consumer: "orders", limit: 1, now: clock.now, leaseUntil: clock.now.addingTimeInterval(30), asProbe: true)
        let afterProbe = try #require(after.first)
        try await first.finish([.delivered(id: afterProbe.id)])
        try await first.recordPause(consumer: "orders", paused: false, at: clock.now)
        #expect(try await second.sharedPause(consumer: "orders") == false)
        await first.close()
        await second.close()
    }

    /// Dead letters are rows: written twice (two gateways, or a crash in between) they are kept
    /// once, listed oldest first, and loaded back exactly.
    @Test func deadLettersAreSharedRowsKeptOncePerID() async throws {
        let schema = TestPostgres.freshSchema()
        let first = try await makeStore(schema: schema)
        let second = try await makeStore(schema: schema)
        let at = Date(timeIntervalSince1970: 1_764_000_000)
        let deadLetters = (0..<3).map { index in
            DeadLetter(
                id: "dl_\(index)", eventID: "evt_\(index)", consumer: "orders", source: "tiktok",
                eventType: index == 1 ? nil : "minis.trade_order.redeem.success", dedupKey: "k\(index)",
                receivedAt: at, deadLetteredAt: at.addingTimeInterval(Double(index)), reason: "max attempts",
                attempts: [DeadLetter.Attempt(at: at, status: nil, error: "connection refused")],
                headers: ["tiktok-signature": "t=1,s=00"], body: Data("{\"n\":\(index),\"caf\u{e9}\":true}".utf8))
        }
        try await first.append(Array(deadLetters[0..<2]), consumer: "orders")
        try await second.append(Array(deadLetters[1..<3]), consumer: "orders")
        let snapshot = try await second.snapshot(consumer: "orders")
        #expect(snapshot.entries.map(\.id) == ["dl_0", "dl_1", "dl_2"])
        #expect(snapshot.entries[1].eventType == nil)
        let loaded = try await first.load(Array(snapshot.entries.reversed()), consumer: "orders")
        #expect(loaded == deadLetters.reversed())
        #expect(try await first.snapshot(consumer: "analytics").entries.isEmpty)
        await first.close()
        await second.close()
    }

    /// Gateways starting at once on an empty database: one creates the schema, the others wait
    /// for it, and all of them work.
    @Test func gatewaysStartingAtOnceMigrateOnce() async throws {
        let schema = TestPostgres.freshSchema()
        let stores = try await withThrowingTaskGroup(of: PostgresStore.self) { group in
            for _ in 0..<4 { group.addTask { try await makeStore(schema: schema) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for (index, store) in stores.enumerated() {
            let event = StoreConformance<PostgresStore>.event(key: "k\(index)", at: Date())
            #expect(try await store.accept(event) == .accepted(eventID: event.id))
        }
        for store in stores { await store.close() }
    }

    /// An order lane is locked from the moment a gateway stores into it until its COMMIT: another
    /// gateway's event of the same order waits (so its delivery id comes after, in commit
    /// order), while other orders do not. Here psql holds the lane's lock for 1.5 s.
    @Test func anOrderLaneIsLockedUntilTheBatchThatStoresIntoItCommits() async throws {
        let schema = TestPostgres.freshSchema()
        let store = try await makeStore(schema: schema)
        let seed = PostgresStore.laneLockSeed(schema: schema)
        // Another session (a second store on the same schema) holds the lane "tiktok/42".
        let holderStore = try await makeStore(schema: schema)
        async let holder = holderStore.executeForTests([
            "SELECT pg_advisory_xact_lock(hashtextextended('tiktok' || chr(31) || '42', \(seed)))::text",
            "SELECT pg_sleep(1.5)::text",
        ])
        // Until it holds the lock.
        var held = false
        for _ in 0..<500 where !held {
            let count = try await store.executeForTests([
                """
                SELECT count(*)::text FROM pg_locks WHERE locktype = 'advisory' AND granted
                  AND ((classid::bigint << 32) | objid::bigint) = hashtextextended('tiktok' || chr(31) || '42', \(seed))
                """
            ])
            held = count != ["0"]
        }
        #expect(held)
        let conformance = StoreConformance<PostgresStore> { _, _ in store }
        let other = ContinuousClock.now
        _ = try await store.accept(conformance.event("other", order: "43", at: Date()))
        #expect(ContinuousClock.now - other < .seconds(1))
        let same = ContinuousClock.now
        _ = try await store.accept(conformance.event("same", order: "42", at: Date()))
        #expect(ContinuousClock.now - same >= .milliseconds(500))
        _ = try await holder
        await store.close()
        await holderStore.close()
    }

    /// A batch committed at one gateway is announced to the others (a NOTIFY after COMMIT), so
    /// their workers need not wait for the next poll; the gateway that stored it hears its own
    /// notification but does not wake for it (its workers were woken already), and a store on
    /// another schema (another channel) is not woken.
    @Test func aCommittedBatchWakesTheOtherGateways() async throws {
        let schema = TestPostgres.freshSchema()
        let first = try await makeStore(schema: schema)
        let second = try await makeStore(schema: schema)
        let elsewhere = try await makeStore()
        final class Heard: Sendable {
            let woken = Mutex<[String: [[String]?]]>([:])
            let listening = Mutex<Set<String>>([])
        }
        let heard = Heard()
        var listeners: [Task<Void, Never>] = []
        for (name, store) in [("first", first), ("second", second), ("elsewhere", elsewhere)] {
            listeners.append(
                Task {
                    await store.listenForDeliveries(onListening: { _ = heard.listening.withLock { $0.insert(name) } }) { consumers in
                        heard.woken.withLock { $0[name, default: []].append(consumers) }
                    }
                })
        }
        #expect(await Self.eventually { heard.listening.withLock { $0.count == 3 } })
        let conformance = StoreConformance<PostgresStore> { _, _ in first }
        _ = try await first.accept(conformance.event("notified-1", order: "7", at: Date()))
        #expect(await Self.eventually { heard.woken.withLock { $0["second"] != nil } })
        #expect(heard.woken.withLock { $0["second"] } == [["orders"]])
        _ = try await first.accept(conformance.event("notified-2", order: "8", at: Date()))
        #expect(await Self.eventually { heard.woken.withLock { $0["second"]?.count == 2 } })
        // Now the second store stores one. A listener gets a channel's notifications in commit
        // order, so once the first store hears this one it has heard its own two before it: it
        // must have ignored them.
        _ = try await second.accept(conformance.event("notified-3", order: "9", at: Date()))
        #expect(await Self.eventually { heard.woken.withLock { $0["first"] != nil } })
        #expect(heard.woken.withLock { $0["first"] } == [["orders"]])
        #expect(heard.woken.withLock { $0["second"]?.count } == 2)
        #expect(heard.woken.withLock { $0["elsewhere"] } == nil)
        for listener in listeners { listener.cancel() }
        for listener in listeners { await listener.value }
        await first.close()
        await second.close()
        await elsewhere.close()
    }

    /// Repeats `check` until it holds or `timeout` passes.
    static func eventually(timeout: Duration = .seconds(10), _ check: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if check() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return check()
    }

    /// Every session commits synchronously, and bounds its statements, lock waits and idle
    /// transactions below or near the request deadline (5 s).
    @Test func sessionsRunWithDurableCommitsAndShortTimeouts() async throws {
        let store = try await makeStore()
        let settings = try await store.sessionSettings()
        #expect(settings["synchronous_commit"] == "on")
        #expect(settings["statement_timeout"] == "5s")
        #expect(settings["lock_timeout"] == "2s")
        #expect(settings["idle_in_transaction_session_timeout"] == "10s")
        await store.close()
    }

    /// Two replays of one dead letter at once (through two gateways) queue it once.
    @Test func concurrentReplaysQueueADeadLetterOnce() async throws {
        let schema = TestPostgres.freshSchema()
        let clock = ManualClock()
        let first = try await makeStore(schema: schema, now: { clock.now })
        let second = try await makeStore(schema: schema, now: { clock.now })
        let event = StoreConformance<PostgresStore>.event(key: "k", at: clock.now)
        _ = try await first.accept(event)
        let claimed = try await first.claim(
            consumer: "orders", limit: 1, now: clock.now, leaseUntil: clock.now.addingTimeInterval(30), asProbe: false)
        try await first.finish([.deadLetter(id: try #require(claimed.first).id, attempts: [], reason: "refused", at: clock.now)])
        let waiting = try await first.deadLettersToWrite(limit: 10)
        try await first.markDeadLettered(deliveryIDs: waiting.map(\.deliveryID))
        let lines = waiting.map(\.deadLetter)
        for round in 0..<5 {
            async let a = first.replay(lines, consumer: "orders", force: round > 0, dryRun: false, now: clock.now)
            async let b = second.replay(lines, consumer: "orders", force: false, dryRun: false, now: clock.now)
            let results = try await [a, b]
            if round == 0 {
                #expect(results.map(\.replayed.count).reduce(0, +) == 1)
                #expect(results.map(\.skipped.count).reduce(0, +) == 1)
            }
        }
        // Round 0: one replay; rounds 1–4: the forced one each time, the other skipped.
        #expect(try await first.depth(consumer: "orders") == 5)
        await first.close()
        await second.close()
    }

    /// A gateway refuses a database whose schema is newer than it knows, and says why.
    @Test func aNewerSchemaIsRefused() async throws {
        let schema = TestPostgres.freshSchema()
        let store = try await makeStore(schema: schema)
        let url = try PostgresURL(parsing: try TestPostgres.requireURL())
        await store.close()
        let helper = try await makeStore(schema: TestPostgres.freshSchema())
        _ = try await helper.executeForTests(["UPDATE \(schema).webhook_gateway_schema SET version = version + 1"])
        await helper.close()
        do {
            _ = try await PostgresStore(configuration: .init(connection: url, schema: schema), logger: logger)
            Issue.record("a newer schema was accepted")
        } catch {
            #expect(error.description.contains("newer than this gateway knows"))
        }
    }

    @Test func aURLIsParsedAndNeverShowsItsPassword() throws {
        let url = try PostgresURL(parsing: "postgres://gateway:s%40cret@db.internal:6543/events?sslmode=require")
        #expect(url.host == "db.internal")
        #expect(url.port == 6543)
        #expect(url.username == "gateway")
        #expect(url.database == "events")
        #expect(url.tls == .require)
        #expect(!"\(url)".contains("s@cret"))
        #expect(!"\(url)".contains("s%40cret"))
        #expect(throws: PostgresURL.Invalid.self) { try PostgresURL(parsing: "mysql://a@b/c") }
        #expect(throws: PostgresURL.Invalid.self) { try PostgresURL(parsing: "postgres://a@b/c?sslmode=maybe") }
        #expect(throws: PostgresURL.Invalid.self) { try PostgresURL(parsing: "postgres://b/c") }
        #expect(throws: PostgresURL.Invalid.self) { try PostgresURL(parsing: "postgres://a@b") }
    }
}
