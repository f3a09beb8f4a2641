import Foundation
import Testing

@testable import Verification

/// `dedup.keys` rules, with bodies shaped as TikTok's documentation shows them.
struct DedupRuleTests {
    let tiktok = VerifiedRequest(scheme: .tiktok, timestamp: 1)
    let shop = VerifiedRequest(scheme: .tiktokShop, timestamp: nil)

    func rule(_ events: [String], _ fields: [String]) throws -> DedupRule {
        DedupRule(
            events: try events.map { try #require(EventPattern($0)) },
            fields: try fields.map { try #require(DedupRule.Field($0)) }
        )
    }

    func key(_ body: String, rules: [DedupRule], source: String = "tiktok", verified: VerifiedRequest? = nil) throws -> String {
        let parsed = Envelope.parse(body: Array(body.utf8), source: source, verified: verified ?? tiktok, rules: rules)
        guard case .envelope(let envelope) = parsed else {
            Issue.record("not an envelope: \(body)")
            return ""
        }
        return envelope.dedupKey.rawValue
    }

    func renewal(order: String = "S1", createTime: Int, sandbox: Bool = true) -> String {
        #"{"client_key":"awx0d4sbbjnnw6g4","event":"minis.subscription.renew","create_time":\#(createTime),"user_openid":"_000Hq2ksMzR3_VoK","content":"{\"order_id\":\"\#(order)\",\"is_sandbox\":\#(sandbox)}"}"#
    }

    @Test func aRuleKeysSubscriptionEventsByOrderAndCreationTime() throws {
        let rules = [try rule(["minis.subscription.*"], ["event", "content.order_id", "create_time"])]
        let keys = try (0..<12).map { try key(renewal(createTime: 1_764_547_200 + 300 * $0), rules: rules) }
        #expect(Set(keys).count == 12)
        #expect(keys[0] == "tiktok:minis.subscription.renew:event=minis.subscription.renew:content.order_id=S1:create_time=1764547200")
        // A retry of the same renewal is the same key, even if its bytes differ (here: the order of
        // the members), which the body hash could not tell.
        let reordered =
            #"{"event":"minis.subscription.renew","user_openid":"_000Hq2ksMzR3_VoK","create_time":1764547200,"client_key":"awx0d4sbbjnnw6g4","content":"{\"is_sandbox\":true,\"order_id\":\"S1\"}"}"#
        #expect(try key(reordered, rules: rules) == keys[0])
        // Events the rule does not match keep the scheme's key.
        let redeem = #"{"event":"minis.trade_order.redeem.success","content":"{\"order_id\":\"42\"}"}"#
        #expect(try key(redeem, rules: rules) == "tiktok:minis.trade_order.redeem.success:42")
    }

    @Test func theFirstMatchingRuleWins() throws {
        let rules = [
            try rule(["minis.subscription.renew"], ["content.order_id", "create_time"]),
            try rule(["minis.subscription.*"], ["content.order_id"]),
        ]
        #expect(try key(renewal(createTime: 7), rules: rules) == "tiktok:minis.subscription.renew:content.order_id=S1:create_time=7")
        let create = #"{"event":"minis.subscription.create","create_time":7,"content":"{\"order_id\":\"S1\"}"}"#
        #expect(try key(create, rules: rules) == "tiktok:minis.subscription.create:content.order_id=S1")
    }

    /// The event type is part of every rule key: a rule that leaves it out cannot make two events
    /// of one order and one second (a subscription's `create` and its first `renew`) one event,
    /// nor can two rules with the same fields make one key.
    @Test func eventsOfDifferentTypesNeverShareARuleKey() throws {
        let rules = [
            try rule(["minis.subscription.*"], ["content.order_id", "create_time"]),
            try rule(["minis.trade_order.*"], ["content.order_id", "create_time"]),
        ]
        let bodies = ["minis.subscription.create", "minis.subscription.renew", "minis.trade_order.redeem.success"].map {
            #"{"event":"\#($0)","create_time":7,"content":"{\"order_id\":\"S1\"}"}"#
        }
        let keys = try bodies.map { try key($0, rules: rules) }
        #expect(Set(keys).count == 3, "\(keys)")
    }

    /// A rule whose field the event lacks says so (the gateway counts and logs it).
    @Test func aFallbackIsFlagged() throws {
        let rules = [try rule(["minis.subscription.*"], ["content.order_di"])]
        let body = #"{"event":"minis.subscription.renew","content":"{\"order_id\":\"S1\"}"}"#
        guard case .envelope(let envelope) = Envelope.parse(body: Array(body.utf8), source: "tiktok", verified: tiktok, rules: rules) else {
            Issue.record("not an envelope")
            return
        }
        #expect(envelope.ruleFellBack)
        #expect(envelope.dedupKey.rawValue.hasPrefix("tiktok:sha256="))
        let matched = Envelope.parse(body: Array(body.utf8), source: "tiktok", verified: tiktok, rules: [try rule(["x"], ["event"])])
        guard case .envelope(let unmatched) = matched else { return }
        #expect(!unmatched.ruleFellBack)
    }

    /// A missing, empty, null or structured field cannot key the event: the body's hash does
    /// (Python's `hashlib.sha256` of each body).
    @Test(arguments: [
        (
            #"{"event":"minis.subscription.renew","content":"{\"order_id\":\"S1\"}"}"#,
            "3e3bea0363d9a71babb60bf04e279b515d6c161a9a2c1d9bbb8e64e983e1731b"
        ),
        (
            #"{"event":"minis.subscription.renew","create_time":null,"content":"{\"order_id\":\"S1\"}"}"#,
            "604845c3b93b42432c3b4f961931cee0500f7244232689b064c635021c0672b6"
        ),
        (
            #"{"event":"minis.subscription.renew","create_time":1,"content":"{\"order_id\":\"\"}"}"#,
            "9aeca8055909fbab615b9b153db62186b1c23fa5de9995668e2a4cf24f3245f5"
        ),
        (
            #"{"event":"minis.subscription.renew","create_time":1,"content":"{\"order_id\":{\"a\":1}}"}"#,
            "027b874ec87042e80afd3f4d9d072b84c4ec9331ceba67c94b97e22ec0984556"
        ),
    ])
    func aMissingFieldFallsBackToTheBodyHash(body: String, sha256: String) throws {
        let rules = [try rule(["minis.subscription.*"], ["content.order_id", "create_time"])]
        #expect(try key(body, rules: rules) == "tiktok:sha256=\(sha256)")
    }

    @Test func valuesOfEveryScalarTypeAndShopFields() throws {
        let refund =
            #"{"event":"minis.trade_order.redeem.refund_traceback","create_time":1,"content":"{\"order_id\":\"42\",\"refund_amount\":1.5,\"is_sandbox\":false}"}"#
        let rules = [
            try rule(["minis.trade_order.redeem.refund_traceback"], ["content.order_id", "content.refund_amount", "content.is_sandbox"])
        ]
        #expect(
            try key(refund, rules: rules)
                == "tiktok:minis.trade_order.redeem.refund_traceback:content.order_id=42:content.refund_amount=1.5:content.is_sandbox=false"
        )

        let notification =
            #"{"type":1,"tts_notification_id":"7327112393057371910","shop_id":"7494049642642441621","timestamp":1644412885,"data":{"order_id":"576461413038785752","order_status":"UNPAID","update_time":1644412885}}"#
        let shopRules = [try rule(["1"], ["shop_id", "data.order_id", "data.order_status"])]
        #expect(
            try key(notification, rules: shopRules, source: "shop", verified: shop)
                == "shop:1:shop_id=7494049642642441621:data.order_id=576461413038785752:data.order_status=UNPAID")
        // A rule for another type leaves the notification id as the key.
        let otherRules = [try rule(["12"], ["data.order_id"])]
        #expect(try key(notification, rules: otherRules, source: "shop", verified: shop) == "shop:7327112393057371910")
    }

    @Test func keyPartsAreEncoded() throws {
        let rules = [try rule(["*"], ["content.order_id"])]
        let body = #"{"event":"e","content":"{\"order_id\":\"a:b=c d\"}"}"#
        #expect(try key(body, rules: rules, source: "my source") == "my%20source:e:content.order_id=a%3Ab%3Dc%20d")
    }

    @Test(arguments: ["", "order_id", "content.", "content.a.b", "data.", "contents.x", "Event", "sha256"])
    func unknownFieldNames(name: String) {
        #expect(DedupRule.Field(name) == nil)
    }

    @Test func knownFieldNames() {
        for name in DedupRule.Field.envelopeNames + ["content.order_id", "data.order_id", "content.is_sandbox"] {
            #expect(DedupRule.Field(name)?.description == name)
        }
    }
}
