import Delivery
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Testing

@testable import WebhookGateway

/// A correct signature on a request too old to accept is refused like a forgery (401), but counted
/// as `stale` and logged with its age and without the signature, so that an operator can tell
/// TikTok retries that re-use old timestamps from an attack. The signatures were computed with
/// Python's `hmac` over the exact bodies below (the fixture's clock is 1615338610).
struct StaleRequestTests {
    /// Signed an hour before the fixture's clock (t=1615335010) with the fixture's client secret.
    static let staleBody =
        #"{"client_key":"your_client_key","event":"minis.trade_order.redeem.success","create_time":1615335010,"user_openid":"","content":"{\"order_id\":\"stale-1\"}"}"#
    static let staleSignature = "t=1615335010,s=01b8ea046de1f3ae6f9b1a6d9390c09fdfc2a625ad90174b40c1da29c106b0e0"

    func post(_ app: some ApplicationProtocol, path: String, body: String, header: HTTPField) async throws -> (HTTPResponse.Status, String)
    {
        try await app.test(.router) { client in
            try await client.execute(uri: path, method: .post, headers: [header.name: header.value], body: ByteBuffer(string: body)) {
                ($0.status, String(buffer: $0.body))
            }
        }
    }

    @Test func aCorrectSignatureWithAnOldTimestampIsStale() async throws {
        let fixture = try GatewayFixture()
        let logs = CapturedLogs()
        let app = Application(
            responder: fixture.makeResponder(), configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logs.logger)
        let (status, body) = try await post(
            app, path: "/webhooks/tiktok", body: Self.staleBody,
            header: HTTPField(name: .init("TikTok-Signature")!, value: Self.staleSignature))
        #expect(status == .unauthorized)
        #expect(body.contains("timestamp outside tolerance"))
        #expect(fixture.requestCount(source: "tiktok", outcome: "stale") == 1)
        #expect(fixture.requestCount(source: "tiktok", outcome: "unauthorized") == 0)
        let line = try #require(logs.records.first { $0.message.hasPrefix("stale request refused") })
        #expect(line.level == .warning)
        #expect(line.metadata["signedAt"] == "1615335010")
        #expect(line.metadata["ageSeconds"] == "3600")
        let everything = logs.records.map { "\($0.message) \($0.metadata)" }.joined(separator: "\n")
        #expect(!everything.contains("01b8ea046de1f3ae"))
        #expect(try await fixture.store.depth(consumer: "orders") == 0)

        // A wrong signature with the same old timestamp is a forgery, not stale.
        let forged = "t=1615335010,s=" + String(repeating: "0", count: 64)
        let (forgedStatus, forgedBody) = try await post(
            app, path: "/webhooks/tiktok", body: Self.staleBody, header: HTTPField(name: .init("TikTok-Signature")!, value: forged))
        #expect(forgedStatus == .unauthorized)
        #expect(forgedBody.contains("no matching signature"))
        #expect(fixture.requestCount(source: "tiktok", outcome: "stale") == 1)
        #expect(fixture.requestCount(source: "tiktok", outcome: "unauthorized") == 1)
    }

    /// A Shop notification's signature has no timestamp: one whose envelope `timestamp` is older
    /// than `dedup.retention` (7 days here) could be a replay whose dedup key is gone, so it is
    /// refused; exactly 7 days old is still accepted.
    @Test func aShopNotificationOlderThanTheDedupRetentionIsRefused() async throws {
        let fixture = try GatewayFixture()
        let app = Application(responder: fixture.makeResponder(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        let tooOld =
            #"{"type":1,"tts_notification_id":"732711239305737199","shop_id":"7494049642642441621","timestamp":1614733809,"data":{"order_id":"576461413038785752"}}"#
        let (status, _) = try await post(
            app, path: "/webhooks/shop", body: tooOld,
            header: HTTPField(name: .authorization, value: "c8d7aefec063f0901a6690a6a16671d10b8b508a1b0daa9508ae4d98e109ba97"))
        #expect(status == .unauthorized)
        #expect(fixture.requestCount(source: "shop", outcome: "stale") == 1)
        let atTheBound =
            #"{"type":1,"tts_notification_id":"7327112393057371910","shop_id":"7494049642642441621","timestamp":1614733810,"data":{"order_id":"576461413038785752"}}"#
        let (boundStatus, _) = try await post(
            app, path: "/webhooks/shop", body: atTheBound,
            header: HTTPField(name: .authorization, value: "18a6ddc39f70f7a7b8ef558de3ed6e96ccdb2515a3bd81d93720183cd67238f7"))
        #expect(boundStatus == .ok)
        #expect(fixture.requestCount(source: "shop", outcome: "accepted") == 1)
    }
}
