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
                    asProbe: true)
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
                archive: FileDeadLetterArchive(writer: writer),
                store: fixture.store,
                consumers: ["orders"],
                now: { Date() },
                onReplayed: { consumer in replayed.withLock { $0.append(consumer) } },
                schemes: ["tiktok": .tiktok]
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

    /// One page: its items and its `nextCursor` (`nil` when the answer holds null).
    static func page(_ client: some TestClientProtocol, _ query: String) async throws -> (items: [[String: Any]], next: String?) {
        try await client.execute(uri: "/admin/dead-letters?\(query)", method: .get, headers: authorization) { response in
            #expect(response.status == .ok, "\(String(buffer: response.body))")
            let object = try json(response.body)
            #expect(object.keys.contains("nextCursor"))
            return (try #require(object["deadLetters"] as? [[String: Any]]), object["nextCursor"] as? String)
        }
    }

    /// Answers 400 with an error that names `word`.
    static func expectBadRequest(_ client: some TestClientProtocol, _ query: String, naming word: String) async throws {
        try await client.execute(uri: "/admin/dead-letters?\(query)", method: .get, headers: authorization) { response in
            #expect(response.status == .badRequest, "\(query)")
            #expect((try? json(response.body))?["error"] as? String ?? "" != "")
            #expect(String(buffer: response.body).contains(word), "\(query)")
        }
    }

    /// A dead letter as SPEC.md shows one, written straight to a file (not through the store).
    static func letter(_ id: String, consumer: String = "orders", at seconds: Double) -> DeadLetter {
        let at = Date(timeIntervalSince1970: seconds)
        return DeadLetter(
            id: id, eventID: "evt_\(id)", consumer: consumer, source: "tiktok", eventType: "minis.trade_order.redeem.success",
            dedupKey: "tiktok:minis.trade_order.redeem.success:\(id)", receivedAt: at.addingTimeInterval(-60), deadLetteredAt: at,
            reason: "max attempts", attempts: [.init(at: at.addingTimeInterval(-1), status: 500, error: nil)],
            headers: ["tiktok-signature": "t=1,s=00"], body: Data(#"{"id":"\#(id)"}"#.utf8))
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
                consumer: "orders", limit: 10, now: Date(), leaseUntil: Date().addingTimeInterval(60), asProbe: true)
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

    @Test func pagesFollowTheCursorWhileNewDeadLettersArrive() async throws {
        let setup = try await Setup(count: 5)
        let letters = setup.deadLetters.map(\.id)
        try await setup.application().test(.router) { client in
            func ids(_ items: [[String: Any]]) -> [String] { items.compactMap { $0["id"] as? String } }
            let first = try await Self.page(client, "consumer=orders&limit=2")
            #expect(ids(first.items) == [letters[4], letters[3]])
            let cursor = try #require(first.next)

            // Two newer dead letters arrive between the pages: they neither shift nor repeat it.
            try setup.writer.append(
                [Self.letter("dl_new1", at: 1_795_600_000), Self.letter("dl_new2", at: 1_795_600_001)], consumer: "orders")
            let second = try await Self.page(client, "consumer=orders&limit=2&cursor=\(cursor)")
            #expect(ids(second.items) == [letters[2], letters[1]])
            // The same cursor again gives the same page.
            #expect(ids(try await Self.page(client, "consumer=orders&limit=2&cursor=\(cursor)").items) == [letters[2], letters[1]])

            try setup.writer.append([Self.letter("dl_new3", at: 1_795_600_002)], consumer: "orders")
            let third = try await Self.page(client, "consumer=orders&limit=2&cursor=\(try #require(second.next))")
            #expect(ids(third.items) == [letters[0]])
            #expect(third.next == nil)

            // A new listing starts from the newest; exactly `limit` left is the last page.
            let fresh = try await Self.page(client, "consumer=orders&limit=4")
            #expect(ids(fresh.items) == ["dl_new3", "dl_new2", "dl_new1", letters[4]])
            let rest = try await Self.page(client, "consumer=orders&limit=4&cursor=\(try #require(fresh.next))")
            #expect(ids(rest.items) == [letters[3], letters[2], letters[1], letters[0]])
            #expect(rest.next == nil)
            #expect(rest.items.allSatisfy { $0["body"] is String && $0["replayed"] as? Bool == false })
        }
    }

    @Test func pagesOfEveryConsumerMergeNewestFirst() async throws {
        let setup = try await Setup(count: 4)
        let letters = setup.deadLetters
        // An unparsed body dead-lettered between the second and third orders letters.
        let between = letters[1].deadLetteredAt.timeIntervalSince1970 + 0.5
        try setup.writer.append([Self.letter("dl_unparsed", consumer: "_unparsed", at: between)], consumer: "_unparsed")
        try await setup.application().test(.router) { client in
            func ids(_ items: [[String: Any]]) -> [String] { items.compactMap { $0["id"] as? String } }
            var seen: [String] = []
            var query = "limit=2"
            var pages = 0
            while true {
                let page = try await Self.page(client, query)
                seen += ids(page.items)
                pages += 1
                // New lines in both files after every page: none of them shows in this listing.
                try setup.writer.append([Self.letter("dl_late\(pages)", at: 1_795_600_000 + Double(pages))], consumer: "orders")
                try setup.writer.append(
                    [Self.letter("dl_late_u\(pages)", consumer: "_unparsed", at: 1_795_600_000 + Double(pages))], consumer: "_unparsed")
                guard let next = page.next else { break }
                query = "limit=2&cursor=\(next)"
            }
            #expect(seen == [letters[3].id, letters[2].id, "dl_unparsed", letters[1].id, letters[0].id])
            #expect(pages == 3)
            // A cursor of the whole listing does not fit one consumer's listing.
            let whole = try #require(try await Self.page(client, "limit=1").next)
            try await Self.expectBadRequest(client, "consumer=orders&cursor=\(whole)", naming: "cursor")
        }
    }

    @Test func limitHasADefaultAndBounds() async throws {
        let setup = try await Setup(count: 0)
        try setup.writer.append((0..<1_001).map { Self.letter("dl_\($0)", at: 1_795_600_000 + Double($0)) }, consumer: "orders")
        try await setup.application().test(.router) { client in
            let byDefault = try await Self.page(client, "consumer=orders")
            #expect(byDefault.items.count == 100)
            #expect(byDefault.items.first?["id"] as? String == "dl_1000")
            #expect(byDefault.next != nil)
            let most = try await Self.page(client, "consumer=orders&limit=1000")
            #expect(most.items.count == 1_000)
            let last = try await Self.page(client, "consumer=orders&limit=1000&cursor=\(try #require(most.next))")
            #expect(last.items.compactMap { $0["id"] as? String } == ["dl_0"])
            #expect(last.next == nil)
            for bad in ["1001", "0", "-1", "ten", "", "1e3"] {
                try await Self.expectBadRequest(client, "consumer=orders&limit=\(bad)", naming: "limit")
            }
        }
    }

    @Test func aCursorThatWasNotAnsweredIsABadRequest() async throws {
        let setup = try await Setup(count: 3)
        try await setup.application().test(.router) { client in
            let base64 = { (json: String) in
                Data(json.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
                    .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            }
            for bad in [
                "garbage!", "", "e30", base64("[1,2]"), base64(#"{"v":2,"p":{}}"#), base64(#"{"v":1,"p":{"orders":{"before":-5}}}"#),
            ] {
                try await Self.expectBadRequest(client, "consumer=orders&cursor=\(bad)", naming: "cursor")
            }
            let cursor = try #require(try await Self.page(client, "consumer=orders&limit=1").next)
            try await Self.expectBadRequest(client, "consumer=_unparsed&cursor=\(cursor)", naming: "cursor")
        }
    }

    @Test func aFileRotatedBetweenPagesAddsNothingMore() async throws {
        let setup = try await Setup(count: 3)
        try await setup.application().test(.router) { client in
            let first = try await Self.page(client, "consumer=orders&limit=1")
            #expect(first.items.count == 1)
            let path = setup.writer.path(consumer: "orders")
            try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
            try setup.writer.append([Self.letter("dl_after_rotation", at: 1_795_600_000)], consumer: "orders")
            let second = try await Self.page(client, "consumer=orders&limit=1&cursor=\(try #require(first.next))")
            #expect(second.items.isEmpty)
            #expect(second.next == nil)
        }
    }

    @Test func theListCommandFollowsTheCursorThroughEveryPage() async throws {
        let setup = try await Setup(count: 5)
        let directory = setup.fixture.directory
        let config = try GatewayProcess.writeConfig(in: directory, secret: "unused")
        try await setup.application().test(.live) { client in
            let port = try #require(client.port)
            let environment = ["WEBHOOK_GATEWAY_ADMIN_TOKEN": Self.token]
            let admin = ["--config", config, "--admin-url", "http://127.0.0.1:\(port)", "--consumer", "orders", "--page-size", "2"]
            let table = try await Edge.run(GatewayProcess.binary.path, ["dead-letters", "list"] + admin, environment: environment)
            #expect(table.status == 0, "\(table.stderr)")
            #expect(table.stdout.hasSuffix("5 dead letters\n"), "\(table.stdout)")
            let order = setup.deadLetters.reversed().map(\.id)
            let listed = table.stdout.split(separator: "\n").compactMap { line in order.first { line.contains($0) } }
            #expect(listed == order)

            let json = try await Edge.run(GatewayProcess.binary.path, ["dead-letters", "list", "--json"] + admin, environment: environment)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect((object["deadLetters"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == order)
            #expect(object["nextCursor"] is NSNull)

            let limited = try await Edge.run(
                GatewayProcess.binary.path, ["dead-letters", "list", "--limit", "3"] + admin, environment: environment)
            #expect(limited.stdout.hasSuffix("3 dead letters\n"), "\(limited.stdout)")
        }
    }

    /// `count` dead-letter lines for `orders`, as SPEC.md shows them, written as text in one go.
    static func writeLines(count: Int, to path: String) throws {
        var text = ""
        text.reserveCapacity(count * 400)
        for index in 0..<count {
            text += #"{"id":"dl_\#(index)","eventId":"evt_dl_\#(index)","consumer":"orders","source":"tiktok","#
            text += #""eventType":"minis.trade_order.redeem.success","dedupKey":"tiktok:minis.trade_order.redeem.success:dl\#(index)","#
            text += #""receivedAt":"2026-11-24T10:00:00Z","deadLetteredAt":"2026-11-24T10:05:00Z","reason":"max attempts","#
            text += #""attempts":[{"at":"2026-11-24T10:00:01Z","status":500,"error":null}],"#
            text += #""headers":{"tiktok-signature":"t=1,s=00"},"body":"{\"n\":\#(index)}"}"# + "\n"
        }
        try FileManager.default.createDirectory(
            atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    /// A dead letter whose event is no longer stored (pruned, or a new database) is stored again
    /// from its line, and what its envelope says comes back with it: TikTok's vector is a sandbox
    /// payment for an order, so the delivery carries `webhook-sandbox: true` and keeps its order lane.
    @Test func replayOfAPrunedEventKeepsItsSandboxFlagAndOrder() async throws {
        let setup = try await Setup(count: 0)
        // Two dead letters of the same order (the vector's body, delivered twice).
        let lines = ["dl_01TESTPRUNEDSANDBOX0000001", "dl_01TESTPRUNEDSANDBOX0000002"].enumerated().map { index, id in
            var line = Self.letter(id, at: 1_795_514_400 + Double(index))
            line.body = IngressTests.tiktokBody
            return line
        }
        try setup.writer.append(lines, consumer: "orders")
        try await setup.application().test(.router) { client in
            let answer = try await Self.replay(client, #"{"consumer":"orders"}"#)
            #expect(answer["replayed"] as? Int == 2)
        }
        func claim() async throws -> [ClaimedDelivery] {
            try await setup.fixture.store.claim(
                consumer: "orders", limit: 10, now: Date(), leaseUntil: Date().addingTimeInterval(60), asProbe: false)
        }
        // One at a time: the order lane came back with the event.
        let first = try await claim()
        #expect(first.map(\.eventID) == [lines[0].eventID])
        #expect(first.first?.sandbox == true)
        try await setup.fixture.store.finish([.delivered(id: first[0].id)])
        let second = try await claim()
        #expect(second.map(\.eventID) == [lines[1].eventID])
        #expect(second.first?.sandbox == true)
    }

    @Test func replayOfManyChunksQueuesEachOnceInOrder() async throws {
        let setup = try await Setup(count: 0)
        let count = DeadLetterAdmin.replayChunkSize * 2 + 7
        try Self.writeLines(count: count, to: setup.writer.path(consumer: "orders"))
        try await setup.application().test(.router) { client in
            let first = try await Self.replay(client, #"{"consumer":"orders","ids":["dl_3"]}"#)
            #expect(first["replayed"] as? Int == 1)
            let all = try await Self.replay(client, #"{"consumer":"orders"}"#)
            #expect(all["replayed"] as? Int == count - 1)
            #expect(all["skipped"] as? Int == 1)
            // One call per chunk that queued something, so the dispatcher starts on the first.
            #expect(setup.replayedConsumers.withLock { $0.count } == 1 + 3)
            #expect(try await setup.fixture.store.depth(consumer: "orders") == count)
            let queued = try await setup.fixture.store.claim(
                consumer: "orders", limit: count, now: Date(), leaseUntil: Date().addingTimeInterval(60), asProbe: true)
            let expected = ["evt_dl_3"] + (0..<count).filter { $0 != 3 }.map { "evt_dl_\($0)" }
            #expect(queued.map(\.eventID) == expected)
            let again = try await Self.replay(client, #"{"consumer":"orders"}"#)
            #expect(again["replayed"] as? Int == 0)
            #expect(again["skipped"] as? Int == count)
        }
    }
}
