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

@testable import WebhookGateway

/// The admin API's dead-letter routes, on a real store and real dead-letter files.
struct DeadLetterAdminTests {
    static let token = "admin-token-for-the-tests"
    static let authorization: HTTPFields = [.authorization: "Bearer \(token)", .contentType: "application/json"]

    /// Dead letters of `orders` made the way the dispatcher makes them, one second apart.
    struct Setup {
        let fixture: GatewayFixture
        let deadLetters: [DeadLetter]
        let replayedConsumers = Locked<[String]>([])

        var writer: DeadLetterWriter { DeadLetterWriter(directory: fixture.directory.appendingPathComponent("dead-letters").path) }

        init(count: Int) async throws {
            fixture = try GatewayFixture()
            let store = fixture.store
            for index in 0..<count {
                let at = Date(timeIntervalSince1970: 1_795_514_400 + Double(index))
                let event = IncomingEvent(
                    id: EventID.make(milliseconds: at.milliseconds),
                    source: "tiktok",
                    eventType: index.isMultiple(of: 2) ? "minis.trade_order.redeem.success" : "minis.trade_order.refund_traceback",
                    dedupKey: DedupKey(rawValue: "tiktok:e:\(index)"),
                    orderID: "o\(index)",
                    receivedAt: at,
                    headers: [("tiktok-signature", "t=1,s=00")],
                    body: Data(#"{"n":\#(index)}"#.utf8),
                    consumers: ["orders"]
                )
                _ = try await store.accept(event)
                let claimed = try await store.claim(
                    consumer: "orders", limit: 1, now: at.addingTimeInterval(1), leaseUntil: at.addingTimeInterval(60),
                    ignoringSchedule: true)
                try await store.finish([
                    .deadLetter(
                        id: claimed[0].id, attempts: [.init(at: at, status: 500, error: nil)], reason: "max attempts",
                        at: at.addingTimeInterval(1))
                ])
            }
            let service = DeadLetterService(
                store: store, writer: DeadLetterWriter(directory: fixture.directory.appendingPathComponent("dead-letters").path),
                logger: Logger(label: "test"))
            #expect(await service.drain())
            deadLetters =
                DeadLetterWriter(directory: fixture.directory.appendingPathComponent("dead-letters").path)
                .read(consumer: "orders").deadLetters
        }

        func application() -> some ApplicationProtocol {
            let replayed = replayedConsumers
            let admin = DeadLetterAdmin(
                index: DeadLetterIndex(writer: writer),
                store: fixture.store,
                consumers: ["orders"],
                now: { Date() },
                onReplayed: { consumer in replayed.withLock { $0.append(consumer) } }
            )
            return Application(
                router: AdminRouter.make(
                    token: Reloadable(Secret(DeadLetterAdminTests.token)), state: GatewayState(store: fixture.store), deadLetters: admin,
                    registry: PrometheusCollectorRegistry(), refreshGauges: {}))
        }
    }

    static func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
    }

    static func list(_ client: some TestClientProtocol, _ query: String) async throws -> [[String: Any]] {
        try await client.execute(uri: "/admin/dead-letters?\(query)", method: .get, headers: authorization) { response in
            #expect(response.status == .ok)
            return try #require(try json(response.body)["deadLetters"] as? [[String: Any]])
        }
    }

    static func replay(_ client: some TestClientProtocol, _ body: String, status: HTTPResponse.Status = .ok) async throws -> [String: Any] {
        try await client.execute(
            uri: "/admin/dead-letters/replay", method: .post, headers: authorization, body: ByteBuffer(string: body)
        ) { response in
            #expect(response.status == status)
            return try json(response.body)
        }
    }

    @Test func listingNeedsTheTokenAndShowsNewestFirst() async throws {
        let setup = try await Setup(count: 3)
        try await setup.application().test(.router) { client in
            try await client.execute(uri: "/admin/dead-letters?consumer=orders", method: .get) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/admin/dead-letters/replay", method: .post, body: ByteBuffer(string: #"{"consumer":"orders"}"#))
            {
                #expect($0.status == .unauthorized)
            }
            let items = try await Self.list(client, "consumer=orders")
            #expect(items.compactMap { $0["id"] as? String } == setup.deadLetters.reversed().map(\.id))
            for item in items {
                #expect(item["replayed"] as? Bool == false)
                #expect(item["replayedAt"] is NSNull)
                #expect(item["consumer"] as? String == "orders")
                #expect(item["reason"] as? String == "max attempts")
                #expect((item["attempts"] as? [[String: Any]])?.first?["status"] as? Int == 500)
                #expect(item["body"] as? String != nil)
            }
            // All consumers when none is named; unknown consumers are 404.
            #expect(try await Self.list(client, "").count == 3)
            try await client.execute(uri: "/admin/dead-letters?consumer=billing", method: .get, headers: Self.authorization) {
                #expect($0.status == .notFound)
            }
        }
    }

    @Test func filtersByIdEventTypeDedupKeyAndTime() async throws {
        let setup = try await Setup(count: 4)
        let letters = setup.deadLetters
        try await setup.application().test(.router) { client in
            func ids(_ query: String) async throws -> [String] {
                try await Self.list(client, "consumer=orders&" + query).compactMap { $0["id"] as? String }
            }
            #expect(try await ids("id=\(letters[1].id)&id=\(letters[3].id)") == [letters[3].id, letters[1].id])
            #expect(try await ids("eventType=minis.trade_order.refund_traceback") == [letters[3].id, letters[1].id])
            #expect(try await ids("dedupKey=tiktok:e:2") == [letters[2].id])
            let since = DeadLetter.rfc3339(letters[1].deadLetteredAt)
            let until = DeadLetter.rfc3339(letters[3].deadLetteredAt)
            #expect(try await ids("since=\(since)&until=\(until)") == [letters[2].id, letters[1].id])
            #expect(try await ids("limit=1") == [letters[3].id])
            try await client.execute(uri: "/admin/dead-letters?since=yesterday", method: .get, headers: Self.authorization) { response in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).contains("since"))
            }
        }
    }

    @Test func replayIsIdempotentUnlessForced() async throws {
        let setup = try await Setup(count: 3)
        let letters = setup.deadLetters
        try await setup.application().test(.router) { client in
            let dry = try await Self.replay(client, #"{"consumer":"orders","dryRun":true}"#)
            #expect(dry["replayed"] as? Int == 3)
            #expect(dry["skipped"] as? Int == 0)
            #expect(dry["ids"] as? [String] == letters.map(\.id))
            #expect(try await setup.fixture.store.depth(consumer: "orders") == 0)
            #expect(setup.replayedConsumers.withLock { $0 }.isEmpty)

            let first = try await Self.replay(client, #"{"consumer":"orders","ids":["\#(letters[0].id)"]}"#)
            #expect(first["replayed"] as? Int == 1)
            #expect(first["skipped"] as? Int == 0)
            #expect(setup.replayedConsumers.withLock { $0 } == ["orders"])
            let queued = try await setup.fixture.store.claim(
                consumer: "orders", limit: 10, now: Date(), leaseUntil: Date().addingTimeInterval(60), ignoringSchedule: true)
            #expect(queued.map(\.eventID) == [letters[0].eventID])

            // All not yet replayed: the other two; then nothing is left.
            let rest = try await Self.replay(client, #"{"consumer":"orders"}"#)
            #expect(rest["replayed"] as? Int == 2)
            #expect(rest["skipped"] as? Int == 1)
            let again = try await Self.replay(client, #"{"consumer":"orders"}"#)
            #expect(again["replayed"] as? Int == 0)
            #expect(again["skipped"] as? Int == 3)
            let forced = try await Self.replay(client, #"{"consumer":"orders","ids":["\#(letters[0].id)"],"force":true}"#)
            #expect(forced["replayed"] as? Int == 1)

            let listed = try await Self.list(client, "consumer=orders")
            #expect(listed.allSatisfy { $0["replayed"] as? Bool == true })
            #expect(listed.allSatisfy { ($0["replayedAt"] as? String).flatMap(DeadLetter.parseRFC3339) != nil })

            let missing = try await Self.replay(client, #"{"consumer":"orders","ids":["dl_nope"]}"#)
            #expect(missing["replayed"] as? Int == 0)
            #expect(missing["notFound"] as? [String] == ["dl_nope"])
        }
    }

    @Test func badReplayRequests() async throws {
        let setup = try await Setup(count: 1)
        try await setup.application().test(.router) { client in
            _ = try await Self.replay(client, #"{"consumer":"_unparsed"}"#, status: .badRequest)
            _ = try await Self.replay(client, #"{"consumer":"billing"}"#, status: .notFound)
            _ = try await Self.replay(client, #"{}"#, status: .badRequest)
            _ = try await Self.replay(client, #"{"consumer":"orders","dryrun":true}"#, status: .badRequest)
            _ = try await Self.replay(client, #"{"consumer":"orders","force":"yes"}"#, status: .badRequest)
            _ = try await Self.replay(client, #"not json"#, status: .badRequest)
            #expect(try await setup.fixture.store.depth(consumer: "orders") == 0)
        }
    }
}
