import Delivery
import Foundation
import Testing
import Verification

struct DeliveryHeadersTests {
    /// The Standard Webhooks reference vector: the delivery's signature must be exactly it.
    @Test func signsWithTheConsumersSecret() throws {
        let signer = try StandardWebhooksSigner(secret: Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        let headers = DeliveryHeaders(
            eventID: "msg_p5jXN8AQM9LWM0D4loKWxJek",
            source: "tiktok",
            eventType: "minis.trade_order.redeem.success",
            dedupKey: "tiktok:minis.trade_order.redeem.success:42",
            attempt: 3,
            timestamp: 1_614_265_330,
            body: Data(#"{"test": 2432232314}"#.utf8),
            signer: signer
        )
        #expect(headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        #expect(headers["webhook-id"] == "msg_p5jXN8AQM9LWM0D4loKWxJek")
        #expect(headers["webhook-timestamp"] == "1614265330")
        #expect(headers["webhook-source"] == "tiktok")
        #expect(headers["webhook-event-type"] == "minis.trade_order.redeem.success")
        #expect(headers["webhook-dedup-key"] == "tiktok:minis.trade_order.redeem.success:42")
        #expect(headers["webhook-attempt"] == "3")
        #expect(headers["content-type"] == "application/json")
        #expect(headers["webhook-sandbox"] == nil)
    }

    /// SPEC: `webhook-sandbox: true` when the TikTok event's `content` has `"is_sandbox": true`.
    @Test func aSandboxEventSaysSo() throws {
        let signer = try StandardWebhooksSigner(secret: Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        let headers = DeliveryHeaders(
            eventID: "evt_1", source: "tiktok", eventType: "minis.trade_order.redeem.success", dedupKey: "k", attempt: 1,
            timestamp: 1_614_265_330, body: Data("{}".utf8), signer: signer, sandbox: true)
        #expect(headers["webhook-sandbox"] == "true")
    }
}
