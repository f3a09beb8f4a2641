import Delivery
import Foundation
import GatewayConfiguration
import Logging
import MetricsTestKit
import Testing
import Verification

@testable import WebhookGateway

/// Each of TikTok's event families through the ingest pipeline, with bodies shaped as TikTok's
/// documentation shows them: which arrivals are new events and which are duplicates.
struct EventFamilyTests {
    let fixture: GatewayFixture
    let tiktok = Ingestor.Source(name: "tiktok", verifier: .tiktok(secrets: [Secret(GatewayFixture.secret)]))
    let shop = Ingestor.Source(
        name: "shop", verifier: .tiktokShop(appKey: Secret(GatewayFixture.appKey), secrets: [Secret(GatewayFixture.appSecret)]))

    init() throws {
        fixture = try GatewayFixture()
    }

    func ingestor(rules: [DedupRule] = []) -> Ingestor {
        Ingestor(
            store: fixture.store,
            consumers: Reloadable([]),
            metrics: GatewayMetrics(sources: ["tiktok", "shop"], consumers: [], factory: fixture.metrics),
            now: { GatewayFixture.now },
            onStored: { _ in },
            dedupRules: rules
        )
    }

    /// Sends a TikTok event signed at the fixture's time; "accepted" or "duplicate".
    func send(_ body: String, to ingestor: Ingestor) async -> String {
        let signature = TikTokSigner.tiktokSignature(
            secret: Secret(GatewayFixture.secret), timestamp: 1_615_338_610, body: Array(body.utf8))
        return Self.describe(
            await ingestor.ingest(
                source: tiktok, headers: [("tiktok-signature", signature)], body: Data(body.utf8), logger: Logger(label: "test")))
    }

    func sendShop(_ body: String, to ingestor: Ingestor) async -> String {
        let authorization = TikTokSigner.tiktokShopAuthorization(
            appKey: Secret(GatewayFixture.appKey), secret: Secret(GatewayFixture.appSecret), body: Array(body.utf8))
        return Self.describe(
            await ingestor.ingest(
                source: shop, headers: [("authorization", authorization)], body: Data(body.utf8), logger: Logger(label: "test")))
    }

    static func describe(_ outcome: Ingestor.Outcome) -> String {
        switch outcome {
        case .accepted: "accepted"
        case .duplicate: "duplicate"
        case .unauthorized(let error): "unauthorized \(error)"
        case .unavailable(let error): "unavailable \(error)"
        }
    }

    static func renewal(_ index: Int, order: String = "S1") -> String {
        #"{"client_key":"awx0d4sbbjnnw6g4","event":"minis.subscription.renew","create_time":\#(1_615_338_000 + 300 * index),"user_openid":"_000Hq2ksMzR3_VoK","content":"{\"order_id\":\"\#(order)\",\"is_sandbox\":true}"}"#
    }

    /// TikTok's sandbox renews a subscription every 5 minutes, 12 times, under one order id.
    @Test func twelveRenewalsOfOneSubscriptionAreTwelveEvents() async throws {
        let ingestor = ingestor()
        var outcomes: [String] = []
        for index in 0..<12 { outcomes.append(await send(Self.renewal(index), to: ingestor)) }
        #expect(outcomes == Array(repeating: "accepted", count: 12))
        // TikTok retries the third renewal: the same bytes are one event.
        #expect(await send(Self.renewal(2), to: ingestor) == "duplicate")
        // Every one was a sandbox event, and counted apart.
        #expect(
            try fixture.metrics.expectCounter(
                "webhook_gateway_sandbox_requests_total", [("source", "tiktok"), ("outcome", "accepted")]
            ).totalValue == 12)
        #expect(
            try fixture.metrics.expectCounter(
                "webhook_gateway_sandbox_requests_total", [("source", "tiktok"), ("outcome", "duplicate")]
            ).totalValue == 1)
        #expect(fixture.requestCount(source: "tiktok", outcome: "accepted") == 12)
    }

    @Test func subscriptionLifecycleEventsAreEachDelivered() async throws {
        let ingestor = ingestor()
        for event in ["create", "renew", "onhold", "reactivate", "expire"] {
            let body =
                #"{"client_key":"awx0d4sbbjnnw6g4","event":"minis.subscription.\#(event)","create_time":1615338600,"user_openid":"u","content":"{\"order_id\":\"S2\"}"}"#
            #expect(await send(body, to: ingestor) == "accepted", "\(event)")
        }
        // Production events are not counted as sandbox ones.
        #expect(
            try fixture.metrics.expectCounter(
                "webhook_gateway_sandbox_requests_total", [("source", "tiktok"), ("outcome", "accepted")]
            ).totalValue == 0)
    }

    /// A trade order is redeemed once: a retry, even signed with a fresh `create_time`, is a
    /// duplicate; a refund traceback for the same order is a new event, once.
    @Test func tradeOrderEventsAreKeyedByTheirOrder() async throws {
        let ingestor = ingestor()
        func redeem(_ createTime: Int) -> String {
            #"{"client_key":"k","event":"minis.trade_order.redeem.success","create_time":\#(createTime),"user_openid":"u","content":"{\"trade_order_id\":\"TOID42\",\"order_id\":\"42\",\"is_sandbox\":false}"}"#
        }
        let refund =
            #"{"client_key":"k","event":"minis.trade_order.redeem.refund_traceback","create_time":1615338700,"user_openid":"u","content":"{\"trade_order_id\":\"TOID42\",\"order_id\":\"42\",\"refund_amount\":100,\"is_sandbox\":false}"}"#
        #expect(await send(redeem(1_615_338_600), to: ingestor) == "accepted")
        #expect(await send(redeem(1_615_338_605), to: ingestor) == "duplicate")
        #expect(await send(refund, to: ingestor) == "accepted")
        #expect(await send(refund, to: ingestor) == "duplicate")
        // Without an order id the key is not certain: two different bodies are two events.
        let noOrder = #"{"event":"minis.trade_order.redeem.success","create_time":1,"content":"{\"trade_order_id\":\"T9\"}"}"#
        let noOrderAgain = #"{"event":"minis.trade_order.redeem.success","create_time":2,"content":"{\"trade_order_id\":\"T9\"}"}"#
        #expect(await send(noOrder, to: ingestor) == "accepted")
        #expect(await send(noOrderAgain, to: ingestor) == "accepted")
    }

    /// One Shop order goes through many status changes, each a notification of its own.
    @Test func shopNotificationsAreKeyedByTheirNotificationID() async throws {
        let ingestor = ingestor()
        func notification(_ id: String, type: Int, status: String) -> String {
            #"{"type":\#(type),"tts_notification_id":"\#(id)","shop_id":"7494049642642441621","timestamp":1615338600,"data":{"order_id":"576461413038785752","order_status":"\#(status)","update_time":1615338600}}"#
        }
        #expect(await sendShop(notification("N1", type: 1, status: "UNPAID"), to: ingestor) == "accepted")
        #expect(await sendShop(notification("N2", type: 1, status: "AWAITING_SHIPMENT"), to: ingestor) == "accepted")
        #expect(await sendShop(notification("N3", type: 11, status: "CANCEL"), to: ingestor) == "accepted")
        #expect(await sendShop(notification("N2", type: 1, status: "AWAITING_SHIPMENT"), to: ingestor) == "duplicate")
    }

    /// With a `dedup.keys` rule, a renewal is keyed by its order and creation time, so a retry
    /// whose bytes differ (re-serialized) is still one event, and the next renewal is another.
    @Test func aDedupRuleKeysRenewalsByOrderAndTime() async throws {
        let rule = DedupRule(
            events: [EventPattern("minis.subscription.*")!],
            fields: [DedupRule.Field("content.order_id")!, DedupRule.Field("create_time")!])
        let ingestor = ingestor(rules: [rule])
        let first = Self.renewal(0)
        let reserialized =
            #"{"event":"minis.subscription.renew","create_time":1615338000,"client_key":"awx0d4sbbjnnw6g4","user_openid":"_000Hq2ksMzR3_VoK","content":"{\"is_sandbox\":true,\"order_id\":\"S1\"}"}"#
        #expect(await send(first, to: ingestor) == "accepted")
        #expect(await send(reserialized, to: ingestor) == "duplicate")
        #expect(await send(Self.renewal(1), to: ingestor) == "accepted")
        // Without the rule the re-serialized retry would have been delivered twice.
        let plain = self.ingestor()
        #expect(await send(reserialized, to: plain) == "accepted")
        // A misspelt field keys nothing: the event is delivered (body hash), counted and logged.
        let misspelt = self.ingestor(rules: [
            DedupRule(events: [EventPattern("minis.subscription.*")!], fields: [DedupRule.Field("content.order_di")!])
        ])
        #expect(await send(Self.renewal(5), to: misspelt) == "accepted")
        #expect(try fixture.metrics.expectCounter("webhook_gateway_dedup_rule_fallbacks_total", [("source", "tiktok")]).totalValue == 1)
    }
}
