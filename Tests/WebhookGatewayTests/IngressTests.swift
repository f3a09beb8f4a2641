import AsyncHTTPClient
import Delivery
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import Testing
import Verification

@testable import WebhookGateway

struct IngressTests {
    /// The independent vectors from the Verification issue, over HTTP.
    static let tiktokBody =
        #"{"client_key":"your_client_key","event":"minis.trade_order.redeem.success","create_time":1615338610,"user_openid":"","content":"{\"trade_order_id\":\"TOID667700996\",\"order_id\":\"order_id_as_in_your_system\",\"is_sandbox\":true}"}"#
    static let tiktokSignature = "t=1615338610,s=9a0403a0527e9b5b80981e143dd32d045f6381f404d4c4625d1c74d32800ea1e"
    static let shopBody =
        #"{"type":1,"tts_notification_id":"7327112393057371910","shop_id":"7494049642642441621","timestamp":1644412885,"data":{"order_id":"576461413038785752","order_status":"AWAITING_SHIPMENT","update_time":1644412885}}"#
    static let shopSignature = "3f67ddd0af15077f0a2dbb669f655cee785ae8dc9c59bea41f88f191029e84ff"

    struct Reply {
        let status: HTTPResponse.Status
        let json: [String: String]
        let headers: HTTPFields
    }

    func post(_ client: some TestClientProtocol, _ path: String, body: String, headers: HTTPFields) async throws -> Reply {
        try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
            let json = (try? JSONDecoder().decode([String: String].self, from: Data(response.body.readableBytesView))) ?? [:]
            return Reply(status: response.status, json: json, headers: response.headers)
        }
    }

    @Test func acceptsThenAnswersDuplicateWithTheFirstID() async throws {
        let fixture = try GatewayFixture()
        try await fixture.makeApplication().test(.router) { client in
            let first = try await post(
                client, "/webhooks/tiktok", body: Self.tiktokBody, headers: [.init("TikTok-Signature")!: Self.tiktokSignature])
            #expect(first.status == .ok)
            #expect(first.json["status"] == "accepted")
            let id = try #require(first.json["id"])
            #expect(id.hasPrefix("evt_"))
            #expect(first.headers[.contentType] == "application/json")

            let again = try await post(
                client, "/webhooks/tiktok", body: Self.tiktokBody, headers: [.init("tiktok-signature")!: Self.tiktokSignature])
            #expect(again.status == .ok)
            #expect(again.json == ["status": "duplicate", "id": id])

            // Stored exactly, with one delivery to the matching consumer.
            let stored = try #require(try await fixture.store.event(id: id))
            #expect(stored.body == Data(Self.tiktokBody.utf8))
            #expect(stored.dedupKey == "tiktok:minis.trade_order.redeem.success:order_id_as_in_your_system")
            #expect(stored.headers["tiktok-signature"] == Self.tiktokSignature)
            #expect(try await fixture.store.depth(consumer: "orders") == 1)
            // The vector's content has "is_sandbox": true: its delivery is marked as a sandbox one.
            let claimed = try await fixture.store.claim(
                consumer: "orders", limit: 1, now: Date(), leaseUntil: Date().addingTimeInterval(60), asProbe: false)
            #expect(claimed.map(\.sandbox) == [true])
        }
        #expect(fixture.requestCount(source: "tiktok", outcome: "accepted") == 1)
        #expect(fixture.requestCount(source: "tiktok", outcome: "duplicate") == 1)
    }

    @Test func sameOrderOtherEventIsNew() async throws {
        let fixture = try GatewayFixture()
        try await fixture.makeApplication().test(.router) { client in
            let redeem = GatewayFixture.tiktokEvent(orderID: "42")
            let refund = GatewayFixture.tiktokEvent(orderID: "42", event: "minis.trade_order.refund_traceback")
            let first = try await post(
                client, "/webhooks/tiktok", body: redeem.body, headers: [.init("TikTok-Signature")!: redeem.signature])
            let second = try await post(
                client, "/webhooks/tiktok", body: refund.body, headers: [.init("TikTok-Signature")!: refund.signature])
            #expect(first.json["status"] == "accepted")
            #expect(second.json["status"] == "accepted")
            #expect(first.json["id"] != second.json["id"])
        }
    }

    @Test func tiktokShopVector() async throws {
        let fixture = try GatewayFixture()
        try await fixture.makeApplication().test(.router) { client in
            let reply = try await post(client, "/webhooks/shop", body: Self.shopBody, headers: [.authorization: Self.shopSignature])
            #expect(reply.status == .ok)
            #expect(reply.json["status"] == "accepted")
            let stored = try #require(try await fixture.store.event(id: reply.json["id"] ?? ""))
            #expect(stored.dedupKey == "shop:7327112393057371910")
            #expect(stored.eventType == "1")
            // Shop events do not match the consumer's `minis.trade_order.*` pattern.
            #expect(try await fixture.store.depth(consumer: "orders") == 0)
        }
    }

    @Test(arguments: [
        ("", "missing TikTok-Signature header"),
        ("t=1615338610,s=9a0403a0527e9b5b80981e143dd32d045f6381f404d4c4625d1c74d32800ea1f", "no matching signature"),
        // The vector's signature under another (old) `t` does not match: a forgery, not stale.
        ("t=1615338000,s=9a0403a0527e9b5b80981e143dd32d045f6381f404d4c4625d1c74d32800ea1e", "no matching signature"),
        ("t=1615338610;s=9a04", "malformed TikTok-Signature header: no s"),
        ("t=1615338610,s=9A04", "malformed TikTok-Signature header: s is not 64 hex digits"),
        ("garbage", "malformed TikTok-Signature header: element without '='"),
    ])
    func unauthorized(signature: String, message: String) async throws {
        let fixture = try GatewayFixture()
        try await fixture.makeApplication().test(.router) { client in
            var headers: HTTPFields = [:]
            if !signature.isEmpty { headers[.init("TikTok-Signature")!] = signature }
            let reply = try await post(client, "/webhooks/tiktok", body: Self.tiktokBody, headers: headers)
            #expect(reply.status == .unauthorized)
            #expect(reply.json == ["error": message])
            #expect(!reply.json.values.contains { $0.contains("9a0403a0527e9b5b") || $0.contains(GatewayFixture.secret) })
            #expect(try await fixture.store.depth(consumer: "orders") == 0)
        }
        #expect(fixture.requestCount(source: "tiktok", outcome: "unauthorized") == 1)
    }

    @Test func shopWithWrongSignatureIsUnauthorized() async throws {
        let fixture = try GatewayFixture()
        try await fixture.makeApplication().test(.router) { client in
            let reply = try await post(client, "/webhooks/shop", body: Self.shopBody + " ", headers: [.authorization: Self.shopSignature])
            #expect(reply.status == .unauthorized)
        }
    }

    @Test func tooLargeWhetherDeclaredOrStreamed() async throws {
        let fixture = try GatewayFixture(maxBodyBytes: 1_000)
        try await fixture.makeApplication().test(.live) { client in
            let big = String(repeating: "x", count: 1_001)
            let declared = try await post(
                client, "/webhooks/tiktok", body: big, headers: [.init("TikTok-Signature")!: Self.tiktokSignature])
            #expect(declared.status == .contentTooLarge)
            #expect(declared.json["error"] == "body larger than 1000 bytes")
            #expect(declared.headers[.connection] == "close")
        }
        try await fixture.makeApplication().test(.router) { client in
            // Exactly at the limit is fine (and then fails verification, as it is not signed).
            let atLimit = try await post(client, "/webhooks/tiktok", body: String(repeating: "x", count: 1_000), headers: [:])
            #expect(atLimit.status == .unauthorized)
        }
        #expect(fixture.requestCount(source: "tiktok", outcome: "too_large") == 1)
    }

    @Test func streamedBodyIsCutAtTheLimit() async throws {
        let fixture = try GatewayFixture(maxBodyBytes: 1_000)
        try await fixture.makeApplication().test(.live) { client in
            // No Content-Length: the body arrives chunked and is cut while reading.
            let chunks = (0..<50).map { _ in ByteBuffer(string: String(repeating: "y", count: 100)) }
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(client.port!)/webhooks/tiktok")
            request.method = .POST
            request.headers.add(name: "TikTok-Signature", value: Self.tiktokSignature)
            request.body = .stream(chunks.async, length: .unknown)
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            #expect(response.status == .payloadTooLarge)
        }
    }

    @Test func methodsAndPaths() async throws {
        let fixture = try GatewayFixture()
        try await fixture.makeApplication().test(.router) { client in
            for method in [HTTPRequest.Method.get, .put, .delete, .patch] {
                try await client.execute(uri: "/webhooks/tiktok", method: method) { response in
                    #expect(response.status == .methodNotAllowed)
                    #expect(response.headers[.allow] == "POST")
                }
            }
            try await client.execute(uri: "/webhooks/unknown", method: .post) { response in
                #expect(response.status == .notFound)
            }
            try await client.execute(uri: "/", method: .get) { response in
                #expect(response.status == .notFound)
            }
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test func oversizedHeadersGet431() async throws {
        let fixture = try GatewayFixture()
        try await fixture.makeApplication().test(.live) { client in
            let huge = String(repeating: "a", count: 100 * 1_024)
            do {
                let status = try await client.executeRequest(
                    uri: "/webhooks/tiktok",
                    method: .post,
                    headers: [.init("X-Padding")!: huge],
                    body: ByteBuffer(string: "{}")
                ).status
                #expect(status == .requestHeaderFieldsTooLarge)
            } catch {
                Issue.record("expected a 431 response, got \(error)")
            }
        }
    }

    @Test func unwritableStoreAnswers503AndRecovers() async throws {
        let fixture = try GatewayFixture()
        let path = fixture.storePath
        try await fixture.makeApplication().test(.router) { client in
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            let event = GatewayFixture.tiktokEvent(orderID: "503")
            for _ in 0..<2 {
                let reply = try await post(
                    client, "/webhooks/tiktok", body: event.body, headers: [.init("TikTok-Signature")!: event.signature])
                #expect(reply.status == .serviceUnavailable)
                #expect(reply.json["error"] == "the event cannot be stored right now; retry later")
            }
            try FileManager.default.removeItem(atPath: path)
            let reply = try await post(client, "/webhooks/tiktok", body: event.body, headers: [.init("TikTok-Signature")!: event.signature])
            #expect(reply.status == .ok)
            #expect(reply.json["status"] == "accepted")
        }
        #expect(fixture.requestCount(source: "tiktok", outcome: "unavailable") == 2)
    }

    @Test func verifiedBodyThatIsNotAnEnvelopeIsAcceptedAndDeadLettered() async throws {
        let fixture = try GatewayFixture()
        let body = "this is signed but it is not JSON"
        let signature = TikTokSigner.tiktokSignature(
            secret: Secret(GatewayFixture.secret), timestamp: 1_615_338_610, body: Array(body.utf8))
        try await fixture.makeApplication().test(.router) { client in
            let reply = try await post(client, "/webhooks/tiktok", body: body, headers: [.init("TikTok-Signature")!: signature])
            #expect(reply.status == .ok)
            #expect(reply.json["status"] == "accepted")
        }
        #expect(try await fixture.store.depth(consumer: "_unparsed") == 1)
        #expect(try await fixture.store.depth(consumer: "orders") == 0)

        await fixture.unparsed.drain()
        #expect(try await fixture.store.depth(consumer: "_unparsed") == 0)
        let file = fixture.directory.appendingPathComponent("dead-letters/_unparsed.jsonl")
        let text = try String(contentsOf: file, encoding: .utf8)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 1)
        let line = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        #expect(line["body"] as? String == body)
        #expect(line["consumer"] as? String == "_unparsed")
        #expect(line["source"] as? String == "tiktok")
        #expect(line["reason"] as? String == "not an envelope")
        #expect(line["eventType"] is NSNull)
        #expect((line["headers"] as? [String: String])?["tiktok-signature"] == signature)
        #expect(!text.contains(GatewayFixture.secret))

        // The writer reads its own lines back, with the exact body.
        let (deadLetters, unreadable) = DeadLetterWriter(directory: fixture.directory.appendingPathComponent("dead-letters").path)
            .read(consumer: "_unparsed")
        #expect(unreadable == 0)
        #expect(deadLetters.count == 1)
        #expect(deadLetters.first?.bodyBytes == Data(body.utf8))
        #expect(deadLetters.first?.eventType == nil)
    }
}

extension Array where Element: Sendable {
    /// The elements as an async sequence.
    var async: AsyncStream<Element> {
        AsyncStream { continuation in
            for element in self { continuation.yield(element) }
            continuation.finish()
        }
    }
}

/// A real 1 GB upload, with curl, against the live server: cut at the limit, never read to the end.
struct LargeUploadTests {
    func curl(_ arguments: String) async throws -> (status: String, uploaded: Double, seconds: Double) {
        // Awaited without blocking a thread: the server under test runs in this process.
        let output = try await Edge.run(
            "/bin/sh", ["-c", arguments + " -s -o /dev/null -w '%{http_code} %{size_upload} %{time_total}'"]
        ).stdout
        let parts = output.split(separator: " ")
        return (String(parts.first ?? ""), Double(parts.dropFirst().first ?? "") ?? -1, Double(parts.last ?? "") ?? -1)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "needs curl"))
    func oneGigabyteUploadIsCutAtTheLimit() async throws {
        let fixture = try GatewayFixture(maxBodyBytes: 1_048_576)
        let sparse = fixture.directory.appendingPathComponent("1g.bin").path
        #expect(FileManager.default.createFile(atPath: sparse, contents: nil))
        let handle = try #require(FileHandle(forWritingAtPath: sparse))
        try handle.truncate(atOffset: 1 << 30)
        try handle.close()
        try await fixture.makeApplication().test(.live) { client in
            let url = "http://127.0.0.1:\(client.port!)/webhooks/tiktok"
            let signature = "-H 'TikTok-Signature: \(IngressTests.tiktokSignature)'"

            // Declared Content-Length: refused before reading.
            let declared = try await curl("curl -X POST \(signature) -T \(sparse) \(url)")
            #expect(declared.status == "413")
            #expect(declared.uploaded < 64 * 1_048_576)

            // Chunked, no length: cut while streaming, and the connection closed, so the client
            // stops long before 1 GB.
            let streamed = try await curl("head -c 1073741824 /dev/zero | curl -X POST \(signature) -T - \(url)")
            #expect(streamed.status == "413", "\(streamed)")
            #expect(streamed.uploaded < 64 * 1_048_576, "\(streamed)")
        }
    }
}
