import Delivery
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Prometheus
import Synchronization
import Testing
import Verification

@testable import GatewayConfiguration
@testable import WebhookGateway

/// The admin API's event log: `GET /admin/events` and its filters, one event's story, redelivery,
/// and the `events show` timeline (golden file), on a real store.
struct EventAdminTests {
    static let token = "admin-token-for-the-tests"
    static let authorization: HTTPFields = [.authorization: "Bearer \(token)", .contentType: "application/json"]
    static let start = Date(timeIntervalSince1970: 1_795_514_400)  // 2026-11-24T10:00:00Z

    struct Setup {
        let fixture: GatewayFixture
        let queued = Locked<[String]>([])
        var now: Date = EventAdminTests.start.addingTimeInterval(3 * 3_600)

        init() throws { fixture = try GatewayFixture() }

        var store: SQLiteStore { fixture.store }

        static let consumers: [GatewayConfiguration.Consumer] = {
            func consumer(_ name: String, sources: [String]? = nil, events: [String]? = nil) -> GatewayConfiguration.Consumer {
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
            return [
                consumer("orders", sources: ["tiktok"]), consumer("entitlement", events: ["minis.trade_order.*"]),
                consumer("analytics"),
            ]
        }()

        func application() -> some ApplicationProtocol {
            let queued = self.queued
            let now = self.now
            let deadLetters = DeadLetterAdmin(
                archive: FileDeadLetterArchive(writer: DeadLetterWriter(directory: fixture.directory.appendingPathComponent("dl").path)),
                store: fixture.store, consumers: ["orders"], now: { now }, onReplayed: { _ in }, schemes: ["tiktok": .tiktok])
            let events = EventAdmin(
                store: fixture.store, consumers: Reloadable(Self.consumers), now: { now },
                onQueued: { names in queued.withLock { $0 += names } }, logger: Logger(label: "test"))
            return Application(
                router: AdminRouter.make(
                    token: Reloadable(Secret(EventAdminTests.token)), state: GatewayState(store: fixture.store),
                    deadLetters: deadLetters, registry: PrometheusCollectorRegistry(), events: events, refreshGauges: {}))
        }

        /// Stores an event as ingest would.
        @discardableResult
        func accept(
            id: String? = nil, source: String = "tiktok", type: String = "minis.trade_order.redeem.success", order: String?,
            at offset: TimeInterval, consumers: [String] = ["orders"]
        ) async throws -> IncomingEvent {
            let at = EventAdminTests.start.addingTimeInterval(offset)
            let event = IncomingEvent(
                id: id ?? EventID.make(milliseconds: at.milliseconds), source: source, eventType: type,
                dedupKey: DedupKey(rawValue: "\(source):\(type):\(order ?? "none"):\(offset)"), orderID: order, receivedAt: at,
                headers: [("tiktok-signature", "t=1795514400,s=00ff")],
                body: Data(#"{"type":"\#(type)","content":"{\"order_id\":\"\#(order ?? "")\"}"}"#.utf8), consumers: consumers)
            _ = try await store.accept(event)
            return event
        }

        func claim(_ consumer: String, at offset: TimeInterval) async throws -> ClaimedDelivery {
            let at = EventAdminTests.start.addingTimeInterval(offset)
            return try #require(
                try await store.claim(consumer: consumer, limit: 1, now: at, leaseUntil: at.addingTimeInterval(60), asProbe: false)
                    .first)
        }
    }

    static func get(_ client: some TestClientProtocol, _ uri: String, status: HTTPResponse.Status = .ok) async throws -> [String: Any] {
        try await client.execute(uri: uri, method: .get, headers: authorization) { response in
            #expect(response.status == status, "\(uri): \(String(buffer: response.body))")
            return try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
        }
    }

    static func ids(_ client: some TestClientProtocol, _ query: String) async throws -> [String] {
        let page = try await get(client, "/admin/events?\(query)")
        return try #require(page["events"] as? [[String: Any]]).compactMap { $0["id"] as? String }
    }

    @Test func everyFilterOfTheListWorks() async throws {
        let setup = try Setup()
        let a = try await setup.accept(order: "42", at: 0)
        let b = try await setup.accept(type: "minis.trade_order.refund.success", order: "43", at: 1)
        let c = try await setup.accept(source: "shop", type: "shop.order_status_change", order: "42", at: 2)
        let d = try await setup.accept(order: nil, at: 3)
        let delivered = try await setup.claim("orders", at: 10)
        #expect(delivered.eventID == a.id)
        try await setup.store.finish([
            .delivered(id: delivered.id, attempts: [.init(at: Self.start.addingTimeInterval(10), status: 200, error: nil, durationMs: 9)])
        ])
        let failed = try await setup.claim("orders", at: 11)
        try await setup.store.finish([.deadLetter(id: failed.id, attempts: [], reason: "not retryable: status 410", at: Self.start)])

        try await setup.application().test(.router) { client in
            #expect(try await Self.ids(client, "") == [d.id, c.id, b.id, a.id])
            #expect(try await Self.ids(client, "orderId=42") == [c.id, a.id])
            #expect(try await Self.ids(client, "orderId=42&source=tiktok") == [a.id])
            #expect(try await Self.ids(client, "source=shop") == [c.id])
            #expect(try await Self.ids(client, "eventType=minis.trade_order.refund.success") == [b.id])
            #expect(try await Self.ids(client, "dedupKey=\(d.dedupKey.rawValue)") == [d.id])
            #expect(try await Self.ids(client, "status=delivered") == [a.id])
            #expect(try await Self.ids(client, "status=dead_lettered") == [b.id])
            #expect(try await Self.ids(client, "status=pending") == [d.id, c.id])
            #expect(try await Self.ids(client, "since=2026-11-24T10:00:01Z&until=2026-11-24T10:00:03Z") == [c.id, b.id])

            // Paging: two at a time, then the rest.
            let first = try await Self.get(client, "/admin/events?limit=2")
            #expect((first["events"] as? [[String: Any]])?.count == 2)
            let cursor = try #require(first["nextCursor"] as? String)
            let second = try await Self.get(client, "/admin/events?limit=2&cursor=\(cursor)")
            #expect((second["events"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [b.id, a.id])
            #expect(second["nextCursor"] is NSNull)

            // The list item's shape.
            let item = try #require(
                (try await Self.get(client, "/admin/events?orderId=42&source=tiktok")["events"] as? [[String: Any]])?.first)
            #expect(item["orderId"] as? String == "42")
            #expect(item["receivedAt"] as? String == "2026-11-24T10:00:00.000Z")
            #expect(item["sandbox"] as? Bool == false)
            #expect(item["body"] == nil)
            let delivery = try #require((item["deliveries"] as? [[String: Any]])?.first)
            #expect(delivery["consumer"] as? String == "orders")
            #expect(delivery["status"] as? String == "delivered")
            #expect(delivery["attempts"] as? Int == 1)
            #expect(delivery["lastStatus"] as? Int == 200)
            #expect(delivery["lastAttemptAt"] as? String == "2026-11-24T10:00:10.000Z")
            #expect(delivery["nextAttemptAt"] is NSNull)

            // Bad requests name what is wrong.
            for (query, message) in [
                ("status=done", "status must be"), ("limit=0", "limit must be"), ("limit=1001", "limit must be"),
                ("cursor=nonsense", "cursor"), ("since=yesterday", "since must be"), ("order=42", "unknown parameter"),
                ("orderId=", "orderId is empty"), ("orderId=42%00", "orderId contains a NUL"),
            ] {
                let answer = try await Self.get(client, "/admin/events?\(query)", status: .badRequest)
                #expect((answer["error"] as? String)?.contains(message) == true, "\(query): \(answer)")
            }
            try await client.execute(uri: "/admin/events", method: .get) { response in
                #expect(response.status == .unauthorized)
            }
        }
    }

    @Test func oneEventCarriesItsHeadersBodyAndEveryAttempt() async throws {
        let setup = try Setup()
        let event = try await setup.accept(order: "42", at: 0, consumers: ["orders", "analytics"])
        let first = try await setup.claim("orders", at: 1)
        let refused = DeadLetter.Attempt(at: Self.start.addingTimeInterval(1), status: nil, error: "connection refused", durationMs: 3)
        try await setup.store.finish([.retry(id: first.id, attempts: [refused], nextAttemptAt: Self.start.addingTimeInterval(31))])
        try await setup.application().test(.router) { client in
            let answer = try await Self.get(client, "/admin/events/\(event.id)")
            #expect(answer["body"] as? String == String(decoding: event.body, as: UTF8.self))
            #expect((answer["headers"] as? [String: String])?["tiktok-signature"] == "t=1795514400,s=00ff")
            let deliveries = try #require(answer["deliveries"] as? [[String: Any]])
            #expect(deliveries.map { $0["consumer"] as? String } == ["orders", "analytics"])
            let attempts = try #require(deliveries[0]["attempts"] as? [[String: Any]])
            #expect(attempts.count == 1)
            #expect(attempts[0]["status"] is NSNull)
            #expect(attempts[0]["error"] as? String == "connection refused")
            #expect(attempts[0]["durationMs"] as? Int == 3)
            #expect(attempts[0]["at"] as? String == "2026-11-24T10:00:01.000Z")
            #expect(deliveries[0]["status"] as? String == "pending")
            #expect(deliveries[0]["nextAttemptAt"] as? String == "2026-11-24T10:00:31.000Z")
            #expect((deliveries[1]["attempts"] as? [Any])?.isEmpty == true)

            let missing = try await Self.get(client, "/admin/events/evt_00000000000000000000000000", status: .notFound)
            #expect((missing["error"] as? String)?.contains("evt_00000000000000000000000000") == true)
        }
    }

    @Test func redeliveryQueuesMatchingConsumersAndSkipsPendingOnes() async throws {
        let setup = try Setup()
        // orders (tiktok only), entitlement (minis.trade_order.*) and analytics (all) match.
        let event = try await setup.accept(order: "42", at: 0, consumers: ["orders", "entitlement", "analytics"])
        for consumer in ["orders", "entitlement"] {
            let claimed = try await setup.claim(consumer, at: 1)
            try await setup.store.finish([.delivered(id: claimed.id, attempts: [.init(at: Self.start, status: 200, error: nil)])])
        }
        let shop = try await setup.accept(source: "shop", type: "shop.order_status_change", order: "9", at: 2, consumers: [])
        try await setup.application().test(.router) { client in
            func redeliver(_ id: String, _ body: String?, status: HTTPResponse.Status = .ok) async throws -> [String: Any] {
                try await client.execute(
                    uri: "/admin/events/\(id)/redeliver", method: .post, headers: Self.authorization,
                    body: body.map { ByteBuffer(string: $0) }
                ) { response in
                    #expect(response.status == status, "\(String(buffer: response.body))")
                    return try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
                }
            }
            // Default: every consumer the event matches now; analytics still has it pending.
            let all = try await redeliver(event.id, nil)
            #expect(all["queued"] as? [String] == ["orders", "entitlement"])
            let skipped = try #require(all["skipped"] as? [[String: Any]])
            #expect(skipped.map { $0["consumer"] as? String } == ["analytics"])
            #expect((skipped.first?["reason"] as? String)?.contains("pending") == true)
            #expect(setup.queued.withLock { $0 } == ["orders", "entitlement"])
            // Named consumers, pending again now: skipped.
            let again = try await redeliver(event.id, #"{"consumers":["orders"]}"#)
            #expect(again["queued"] as? [String] == [])
            // A named consumer whose subscription does not take the event (orders: tiktok only) is
            // skipped with the reason; the shop event matches only analytics.
            let unsubscribed = try await redeliver(shop.id, #"{"consumers":["orders","analytics"]}"#)
            #expect(unsubscribed["queued"] as? [String] == ["analytics"])
            let notTaken = try #require(unsubscribed["skipped"] as? [[String: Any]])
            #expect(notTaken.map { $0["consumer"] as? String } == ["orders"])
            #expect((notTaken.first?["reason"] as? String)?.contains("does not subscribe") == true)

            let unknown = try await redeliver(event.id, #"{"consumers":["nobody"]}"#, status: .badRequest)
            #expect((unknown["error"] as? String)?.contains("nobody") == true)
            _ = try await redeliver(event.id, #"{"consumer":"orders"}"#, status: .badRequest)
            _ = try await redeliver(event.id, #"{"consumers":[]}"#, status: .badRequest)
            _ = try await redeliver("evt_00000000000000000000000000", nil, status: .notFound)

            // The redelivery goes through the queue with the event's id.
            let claimed = try await setup.claim("orders", at: 3 * 3_600 + 1)
            #expect(claimed.eventID == event.id)
        }
        #expect(try await setup.store.depth(consumer: "orders") == 1)
    }

    /// `events show` reads as a timeline; the golden file is what an operator sees at 3 a.m.
    /// (regenerate with `UPDATE_GOLDEN=1` after a deliberate change, and read the diff).
    @Test func theTimelineOfOneEventMatchesTheGoldenFile() async throws {
        var setup = try Setup()
        setup.now = Self.start.addingTimeInterval(7_300)
        let id = "evt_01KAV0H5J0GOLDENTIMELINE00"
        let event = try await setup.accept(id: id, order: "42", at: 0, consumers: ["orders", "entitlement", "analytics"])
        func at(_ seconds: TimeInterval) -> Date { Self.start.addingTimeInterval(seconds) }
        // orders: a 503, then delivered.
        var claimed = try await setup.claim("orders", at: 0.2)
        let busy = DeadLetter.Attempt(at: at(0.2), status: 503, error: nil, durationMs: 35)
        try await setup.store.finish([.retry(id: claimed.id, attempts: [busy], nextAttemptAt: at(30))])
        claimed = try await setup.claim("orders", at: 30)
        try await setup.store.finish([
            .delivered(id: claimed.id, attempts: [busy, .init(at: at(30), status: 200, error: nil, durationMs: 12)])
        ])
        // entitlement: refused, timed out, dead-lettered, replayed an hour later.
        claimed = try await setup.claim("entitlement", at: 0.3)
        let refused = DeadLetter.Attempt(at: at(0.3), status: nil, error: "connection refused", durationMs: 2)
        try await setup.store.finish([.retry(id: claimed.id, attempts: [refused], nextAttemptAt: at(60))])
        claimed = try await setup.claim("entitlement", at: 60)
        let timeout = DeadLetter.Attempt(at: at(60), status: nil, error: "timeout", durationMs: 10_000)
        try await setup.store.finish([.deadLetter(id: claimed.id, attempts: [refused, timeout], reason: "max attempts", at: at(70))])
        let waiting = try await setup.store.deadLettersToWrite(limit: 10)
        try await setup.store.markDeadLettered(deliveryIDs: waiting.map(\.deliveryID))
        let deadLetterID = try #require(waiting.first?.deadLetter.id)
        _ = try await setup.store.replay(waiting.map(\.deadLetter), consumer: "entitlement", force: false, dryRun: false, now: at(3_600))
        claimed = try await setup.claim("entitlement", at: 3_600.5)
        try await setup.store.finish([
            .delivered(id: claimed.id, attempts: [.init(at: at(3_600.5), status: 204, error: nil, durationMs: 8)])
        ])
        // analytics: a 500 so far, next attempt due; and an operator's redelivery to orders.
        claimed = try await setup.claim("analytics", at: 0.4)
        try await setup.store.finish([
            .retry(id: claimed.id, attempts: [.init(at: at(0.4), status: 500, error: nil, durationMs: 51)], nextAttemptAt: at(7_400))
        ])
        _ = try await setup.store.redeliver(eventID: event.id, consumers: ["orders"], now: at(7_200))

        let rendered = try await setup.application().test(.router) { client in
            EventTimeline.render(try await Self.get(client, "/admin/events/\(id)"))
        }
        .replacingOccurrences(of: deadLetterID, with: "dl_DEADLETTERID")
        let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/events-show.txt")
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try Data(rendered.utf8).write(to: golden)
        }
        let expected = try String(contentsOf: golden, encoding: .utf8)
        #expect(rendered == expected, "\n\(rendered)")
    }
}
