import Foundation
import Testing

@testable import Verification

struct EnvelopeTests {
    let tiktokVerified = VerifiedRequest(scheme: .tiktok, timestamp: 1)
    let shopVerified = VerifiedRequest(scheme: .tiktokShop, timestamp: nil)

    func parseEnvelope(_ body: String, source: String = "tiktok", verified: VerifiedRequest? = nil) -> Envelope? {
        guard case .envelope(let envelope) = Envelope.parse(body: Array(body.utf8), source: source, verified: verified ?? tiktokVerified)
        else {
            return nil
        }
        return envelope
    }

    @Test func tiktokVectorIsKeyedByItsOrder() throws {
        let envelope = try #require(parseEnvelope(Vectors.TikTok.body))
        #expect(envelope.eventType == "minis.trade_order.redeem.success")
        #expect(envelope.orderID == "order_id_as_in_your_system")
        #expect(envelope.tradeOrderID == "TOID667700996")
        #expect(envelope.isSandbox == true)
        #expect(envelope.dedupKey.rawValue == "tiktok:minis.trade_order.redeem.success:order_id_as_in_your_system")
    }

    @Test func sameOrderOtherEventIsAnotherKey() throws {
        let redeem = try #require(parseEnvelope(#"{"event":"minis.trade_order.redeem.success","content":"{\"order_id\":\"42\"}"}"#))
        let retry = try #require(
            parseEnvelope(#"{"event":"minis.trade_order.redeem.success","create_time":2,"content":"{\"order_id\":\"42\"}"}"#))
        let refund = try #require(parseEnvelope(#"{"event":"minis.trade_order.refund_traceback","content":"{\"order_id\":\"42\"}"}"#))
        #expect(redeem.dedupKey == retry.dedupKey)
        #expect(redeem.dedupKey != refund.dedupKey)
        let numeric = try #require(parseEnvelope(#"{"event":"e","content":"{\"order_id\":576461413038785752}"}"#))
        #expect(numeric.orderID == "576461413038785752")
    }

    /// One subscription order renews many times (in TikTok's sandbox every 5 minutes, 12 times):
    /// keyed by the order, every renewal after the first would be dropped as a duplicate. Outside
    /// `minis.trade_order.*` the key is the body's hash, so each renewal is new and only a retry of
    /// the same bytes is a duplicate. (The hash is Python's `hashlib.sha256` of the first body.)
    @Test func subscriptionRenewalsAreKeyedByTheirBody() throws {
        func renewal(_ createTime: Int) -> String {
            #"{"client_key":"awx0d4sbbjnnw6g4","event":"minis.subscription.renew","create_time":\#(createTime),"user_openid":"_000Hq2ksMzR3_VoK","content":"{\"order_id\":\"S1\",\"is_sandbox\":true}"}"#
        }
        let renewals = try (0..<12).map { try #require(parseEnvelope(renewal(1_764_547_200 + 300 * $0))) }
        #expect(Set(renewals.map(\.dedupKey)).count == 12)
        #expect(renewals[0].dedupKey.rawValue == "tiktok:sha256=bd2426741cbb11b38cef28e27ed8adbbaea7161e6d8418eb5afcb87be0113dc0")
        #expect(renewals.allSatisfy { $0.orderID == "S1" })  // still the order lane
        let retried = try #require(parseEnvelope(renewal(1_764_547_200)))
        #expect(retried.dedupKey == renewals[0].dedupKey)
        for event in ["minis.subscription.create", "minis.subscription.expire", "some.future.event"] {
            let envelope = try #require(parseEnvelope(#"{"event":"\#(event)","content":"{\"order_id\":\"S1\"}"}"#))
            #expect(envelope.dedupKey.rawValue.hasPrefix("tiktok:sha256="), "\(event)")
        }
        // A trade-order event without an order id falls back to the body hash too.
        let noOrder = try #require(parseEnvelope(#"{"event":"minis.trade_order.redeem.success","content":"{\"trade_order_id\":\"T1\"}"}"#))
        #expect(noOrder.dedupKey.rawValue.hasPrefix("tiktok:sha256="))
    }

    @Test func withoutOrderTheKeyIsTheBodyHash() throws {
        let envelope = try #require(parseEnvelope(Vectors.NoOrder.body))
        #expect(envelope.orderID == nil)
        #expect(envelope.dedupKey.rawValue == "tiktok:sha256=\(Vectors.NoOrder.sha256)")
    }

    @Test func keyComponentsAreEncodedUnambiguously() throws {
        let odd = try #require(
            parseEnvelope(#"{"event":"minis.trade_order.a:b","content":"{\"order_id\":\"c d/é\"}"}"#, source: "my source"))
        #expect(odd.dedupKey.rawValue == "my%20source:minis.trade_order.a%3Ab:c%20d%2F%C3%A9")
        let other = try #require(
            parseEnvelope(#"{"event":"minis.trade_order.a","content":"{\"order_id\":\"b:c d/é\"}"}"#, source: "my source"))
        #expect(odd.dedupKey != other.dedupKey)
    }

    @Test func shopVectorIsKeyedByNotification() throws {
        let envelope = try #require(parseEnvelope(Vectors.TikTokShop.body, source: "tiktok-shop", verified: shopVerified))
        #expect(envelope.eventType == "1")
        #expect(envelope.notificationID == "7327112393057371910")
        #expect(envelope.shopID == "7494049642642441621")
        #expect(envelope.orderID == "576461413038785752")
        #expect(envelope.dedupKey.rawValue == "tiktok-shop:7327112393057371910")
    }

    @Test(arguments: [
        "not json at all",
        "[]",
        "\"event\"",
        #"{"content":"{}"}"#,
        #"{"event":""}"#,
        #"{"event":7}"#,
        #"{"event":"e","content":{"order_id":"1"}}"#,
    ])
    func notATikTokEnvelope(body: String) {
        guard case .notAnEnvelope(let unparsed) = Envelope.parse(body: Array(body.utf8), source: "tiktok", verified: tiktokVerified) else {
            Issue.record("parsed \(body) as an envelope")
            return
        }
        #expect(unparsed.dedupKey.rawValue.hasPrefix("tiktok:sha256="))
    }

    @Test(arguments: [
        "not json at all",
        #"{"type":"1","tts_notification_id":"1"}"#,
        #"{"tts_notification_id":"1"}"#,
        #"{"type":1.5}"#,
    ])
    func notAShopEnvelope(body: String) {
        guard case .notAnEnvelope = Envelope.parse(body: Array(body.utf8), source: "shop", verified: shopVerified) else {
            Issue.record("parsed \(body) as an envelope")
            return
        }
    }

    @Test func notAnEnvelopeIsKeyedByItsBodyHash() {
        let parsed = Envelope.parse(body: Array("not json at all".utf8), source: "tiktok", verified: tiktokVerified)
        #expect(parsed.dedupKey.rawValue == "tiktok:sha256=\(Vectors.notJSONSHA256)")
    }
}
