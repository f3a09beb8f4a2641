import AsyncHTTPClient
import Delivery
import Foundation
import GatewayTestSupport
import Logging
import NIOCore
import Synchronization
import Testing
import Verification

@testable import GatewayConfiguration
@testable import WebhookGateway

/// The gateway's operational events (source `_gateway`): what each report stores, who gets it, the
/// one-a-minute aggregation of dead letters, `store.recovered`, and reports kept while the store
/// is down.
struct OperationalEventsTests {
    static let start = Date(timeIntervalSince1970: 1_795_514_400)

    static func consumer(_ name: String, sources: [String]? = nil, events: [String]? = nil) -> GatewayConfiguration.Consumer {
        var consumer = GatewayConfiguration.Consumer(
            name: name,
            url: URL(string: "http://127.0.0.1:1/\(name)")!,
            events: events?.compactMap(EventPattern.init),
            signingSecret: Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            signer: try! StandardWebhooksSigner(secret: Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        )
        consumer.sources = sources
        return consumer
    }

    /// `everything` has no `sources` (every TikTok source) and must get none of them; `pager`
    /// takes only the consumer events.
    static let consumers = [
        consumer("everything"), consumer("ops", sources: ["_gateway"]),
        consumer("pager", sources: ["_gateway", "tiktok"], events: ["consumer.*"]),
    ]

    /// A store that refuses writes while `failing` is set.
    final class SwitchableStore: EventStore, @unchecked Sendable {
        let inner: SQLiteStore
        let failing = Locked(false)
        init(_ inner: SQLiteStore) { self.inner = inner }
        func accept(_ event: IncomingEvent) async throws(StoreError) -> AcceptOutcome {
            if failing.withLock({ $0 }) { throw .unavailable("the disk is full") }
            return try await inner.accept(event)
        }
        func event(id: String) async throws(StoreError) -> StoredEvent? { try await inner.event(id: id) }
        func checkWritable() async -> Bool { !failing.withLock { $0 } }
    }

    struct Setup {
        let fixture: GatewayFixture
        let store: SwitchableStore
        let clock: Locked<Date>
        let woken: Locked<[String]>
        let events: OperationalEvents

        init() throws {
            fixture = try GatewayFixture()
            store = SwitchableStore(fixture.store)
            let clock = Locked(OperationalEventsTests.start)
            let woken = Locked<[String]>([])
            self.clock = clock
            self.woken = woken
            events = OperationalEvents(
                store: store, consumers: Reloadable(OperationalEventsTests.consumers), now: { clock.withLock { $0 } },
                onStored: { names in woken.withLock { $0 += names } }, logger: Logger(label: "test"))
        }

        func advance(_ seconds: TimeInterval) { clock.withLock { $0 = $0.addingTimeInterval(seconds) } }

        /// The stored `_gateway` events, oldest first: type, body and who gets them.
        func stored() async throws -> [(type: String, body: [String: Any], consumers: [String])] {
            let page = try await fixture.store.events(
                matching: EventQuery(source: "_gateway", limit: 1_000), now: clock.withLock { $0 })
            var found: [(String, [String: Any], [String])] = []
            for summary in page.events.reversed() {
                let record = try #require(try await fixture.store.eventRecord(id: summary.id, now: clock.withLock { $0 }))
                let bytes = try #require(record.body)
                let body = try #require(try JSONSerialization.jsonObject(with: bytes) as? [String: Any])
                found.append((try #require(record.eventType), body, record.deliveries.map(\.consumer).sorted()))
            }
            return found
        }
    }

    static func deadLetter(_ id: String, source: String = "tiktok") -> DeadLetter {
        DeadLetter(
            id: id, eventID: "evt_x", consumer: "everything", source: source, eventType: "t", dedupKey: "k",
            receivedAt: start, deadLetteredAt: start, reason: "max attempts", attempts: [], headers: [:], body: Data())
    }

    @Test func pausesAndResumesReachOnlyTheGatewaysSubscribers() async throws {
        let setup = try Setup()
        setup.events.consumerPaused("everything", reason: "failures")
        setup.advance(1)
        setup.events.consumerResumed("everything", reason: "operator")
        #expect(await setup.events.flush())
        let stored = try await setup.stored()
        #expect(stored.map(\.type) == ["consumer.paused", "consumer.resumed"])
        #expect(stored.map(\.consumers) == [["ops", "pager"], ["ops", "pager"]])
        #expect(stored[0].body["type"] as? String == "consumer.paused")
        #expect(stored[0].body["at"] as? String == "2026-11-24T10:00:00.000Z")
        #expect(stored[0].body["consumer"] as? String == "everything")
        #expect(stored[0].body["reason"] as? String == "failures")
        #expect(stored[1].body["reason"] as? String == "operator")
        #expect(setup.woken.withLock { $0 } == ["ops", "pager", "ops", "pager"])
    }

    @Test func deadLettersAreReportedAtMostOncePerConsumerPerMinute() async throws {
        let setup = try Setup()
        setup.events.deadLettersWritten(consumer: "everything", [Self.deadLetter("dl_1")])
        #expect(await setup.events.flush())
        setup.advance(10)
        setup.events.deadLettersWritten(consumer: "everything", [Self.deadLetter("dl_2"), Self.deadLetter("dl_3")])
        setup.advance(20)
        setup.events.deadLettersWritten(consumer: "everything", [Self.deadLetter("dl_4")])
        // Another consumer has its own minute.
        setup.events.deadLettersWritten(consumer: "other", [Self.deadLetter("dl_9")])
        // Dead letters of the gateway's own events are not reported (no loop through `ops`).
        setup.events.deadLettersWritten(consumer: "ops", [Self.deadLetter("dl_ops", source: "_gateway")])
        #expect(await setup.events.flush())
        var stored = try await setup.stored()
        #expect(stored.map { $0.body["ids"] as? [String] ?? [] } == [["dl_1"], ["dl_9"]])
        #expect(stored.allSatisfy { $0.type == "deadletter.created" && $0.consumers == ["ops"] })
        setup.advance(29)
        #expect(await setup.events.flush())
        #expect(try await setup.stored().count == 2)
        // The minute is over: what waited goes in one event.
        setup.advance(1)
        #expect(await setup.events.flush())
        stored = try await setup.stored()
        #expect(stored.count == 3)
        #expect(stored[2].body["consumer"] as? String == "everything")
        #expect(stored[2].body["count"] as? Int == 3)
        #expect(stored[2].body["ids"] as? [String] == ["dl_2", "dl_3", "dl_4"])
        #expect(stored[2].body["at"] as? String == "2026-11-24T10:01:00.000Z")
    }

    /// A flood of dead letters makes one report with the exact count and at most 1,000 ids; a
    /// graceful stop reports what waited for the end of its minute instead of dropping it.
    @Test func aFloodOfDeadLettersIsCountedAndReportedOnAGracefulStop() async throws {
        let setup = try Setup()
        setup.events.deadLettersWritten(consumer: "everything", [Self.deadLetter("dl_first")])
        #expect(await setup.events.flush())
        setup.advance(5)
        for batch in 0..<30 {
            setup.events.deadLettersWritten(consumer: "everything", (0..<100).map { Self.deadLetter("dl_\(batch)_\($0)") })
        }
        #expect(await setup.events.flush())
        #expect(try await setup.stored().count == 1)
        #expect(await setup.events.flush(final: true))
        let stored = try await setup.stored()
        #expect(stored.count == 2)
        #expect(stored[1].body["count"] as? Int == 3_000)
        let ids = try #require(stored[1].body["ids"] as? [String])
        #expect(ids.count == OperationalEvents.maximumReportedIDs)
        #expect(ids.first == "dl_0_0")
    }

    @Test func reportsWaitForTheStoreAndRecoveryIsReported() async throws {
        let setup = try Setup()
        setup.store.failing.withLock { $0 = true }
        setup.events.storeFailed()
        setup.advance(5)
        setup.events.consumerPaused("everything", reason: "failures")
        // Not stored, and kept.
        #expect(await setup.events.flush() == false)
        setup.store.failing.withLock { $0 = false }
        setup.advance(25)
        setup.events.storeSucceeded()
        // Reported once, however many writes succeed.
        setup.events.storeSucceeded()
        #expect(await setup.events.flush())
        let stored = try await setup.stored()
        #expect(stored.map(\.type) == ["consumer.paused", "store.recovered"])
        #expect(stored[1].body["unavailableSince"] as? String == "2026-11-24T10:00:00.000Z")
        #expect(stored[1].consumers == ["ops"])
        #expect(setup.events.droppedCount == 0)
    }
}

extension BinaryTests {
    /// The operational events through the built binary: a dead letter and an operator's pause and
    /// resume reach the `_gateway` consumer, signed, and never the business consumer.
    @Suite(.serialized, .timeLimit(.minutes(3)))
    struct OperationalEventsProcessTests {
        static let secret = "operational-events-tiktok-secret"
        static let token = "crash-test-admin-token"

        @Test func deadLettersAndPausesReachTheOperationsConsumer() async throws {
            let directory = try DeliveryProcessTests.temporaryDirectory("operational-events")
            defer { try? FileManager.default.removeItem(at: directory) }
            // `orders` refuses for good (410): a dead letter at the first attempt.
            let orders = try await ScriptedConsumer.start { _ in .status(410) }
            let ops = try await ScriptedConsumer.start { _ in .status(204) }
            let config = """
                {
                  "listen": { "host": "127.0.0.1", "port": 0 },
                  "admin": { "host": "127.0.0.1", "port": 0, "token": "\(Self.token)" },
                  "storage": { "path": "gateway.sqlite" },
                  "deadLetters": { "directory": "dead-letters" },
                  "sources": [ { "name": "tiktok", "path": "/webhooks/tiktok", "scheme": "tiktok", "secrets": ["\(Self.secret)"] } ],
                  "consumers": [
                    { "name": "orders", "url": "\(orders.url)", "signingSecret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" },
                    { "name": "ops", "url": "\(ops.url)", "sources": ["_gateway"], "signingSecret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }
                  ]
                }
                """
            let path = directory.appendingPathComponent("config.json").path
            try config.write(toFile: path, atomically: true, encoding: .utf8)
            let gateway = try GatewayProcess(config: path, directory: directory, name: "ops")

            let reply = try await GatewayProcess.send(orderID: "ops-1", secret: Self.secret, port: gateway.ingressPort)
            #expect(reply.status == 200)
            func body(_ received: ScriptedConsumer.Received) -> [String: Any] {
                (try? JSONSerialization.jsonObject(with: received.body) as? [String: Any]) ?? [:]
            }
            #expect(await ops.wait { $0.contains { $0.headers["webhook-event-type"] == "deadletter.created" } })
            let created = try #require(ops.received.first { $0.headers["webhook-event-type"] == "deadletter.created" })
            #expect(created.headers["webhook-source"] == "_gateway")
            #expect(created.headers["webhook-signature"]?.hasPrefix("v1,") == true)
            #expect(body(created)["consumer"] as? String == "orders")
            #expect(body(created)["count"] as? Int == 1)
            #expect((body(created)["ids"] as? [String])?.first?.hasPrefix("dl_") == true)

            let paused = try await ConsumerControlProcessTests.post(gateway, "/admin/consumers/orders/pause", token: Self.token)
            #expect(paused.status == 200)
            // Pausing a paused consumer changes nothing and reports nothing.
            _ = try await ConsumerControlProcessTests.post(gateway, "/admin/consumers/orders/pause", token: Self.token)
            _ = try await ConsumerControlProcessTests.post(gateway, "/admin/consumers/orders/resume", token: Self.token)
            #expect(await ops.wait { $0.contains { $0.headers["webhook-event-type"] == "consumer.resumed" } })
            let changes = ops.received.filter { ($0.headers["webhook-event-type"] ?? "").hasPrefix("consumer.") }
            #expect(changes.map { $0.headers["webhook-event-type"] } == ["consumer.paused", "consumer.resumed"])
            #expect(changes.map { body($0)["reason"] as? String } == ["operator", "operator"])
            #expect(changes.map { body($0)["consumer"] as? String } == ["orders", "orders"])
            // The business consumer got its event and nothing of the gateway's.
            #expect(orders.received.allSatisfy { $0.headers["webhook-source"] == "tiktok" })

            gateway.kill(SIGTERM)
            #expect(await gateway.waitForExit(timeout: 10) == 0)
            await orders.stop()
            await ops.stop()
        }
    }
}
