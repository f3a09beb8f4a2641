import ArgumentParser
import Foundation
import GatewayConfiguration
import Testing
import Verification

@testable import WebhookGateway

/// The bodies `send-test-event` makes for each family: valid JSON (read back with Foundation's
/// parser), keyed by the gateway as TikTok's own events would be.
struct SendTestEventTests {
    let now = Date(timeIntervalSince1970: 1_764_547_200)

    func bodies(
        _ scheme: SignatureScheme = .tiktok, event: String, orderID: String, sandbox: Bool = false, refundAmount: Int? = nil,
        notificationID: String? = nil, count: Int
    ) throws -> [[UInt8]] {
        try (0..<count).map { index in
            try SendTestEventCommand.envelope(
                scheme: scheme, event: event, orderID: orderID, clientKey: "k", notificationID: notificationID, sandbox: sandbox,
                refundAmount: refundAmount, now: now, index: index, count: count)
        }
    }

    func envelope(_ body: [UInt8], _ scheme: SignatureScheme = .tiktok) throws -> Envelope {
        guard case .envelope(let envelope) = Envelope.parse(body: body, source: "s", verified: .verifiedOnArrival(scheme: scheme)) else {
            throw CancellationError()
        }
        return envelope
    }

    /// The envelope and its inner `content` object, as Foundation reads them.
    func json(_ body: [UInt8]) throws -> (envelope: [String: Any], content: [String: Any]) {
        let envelope = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        let text = try #require(envelope["content"] as? String)
        let content = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        return (envelope, content)
    }

    @Test func twelveSandboxRenewalsOfOneSubscription() throws {
        let renewals = try bodies(event: "minis.subscription.renew", orderID: "S1", sandbox: true, count: 12)
        let envelopes = try renewals.map { try envelope($0) }
        #expect(Set(envelopes.map(\.dedupKey)).count == 12)
        #expect(envelopes.allSatisfy { $0.orderID == "S1" && $0.isSandbox == true && $0.eventType == "minis.subscription.renew" })
        let times = try renewals.map { try #require(try json($0).envelope["create_time"] as? Int) }
        #expect(times == (0..<12).map { 1_764_547_200 - 11 + $0 })
    }

    @Test func severalTradeOrdersAreSeveralOrders() throws {
        let orders = try bodies(event: "minis.trade_order.redeem.success", orderID: "42", count: 3)
        #expect(try orders.map { try envelope($0).orderID } == ["42-1", "42-2", "42-3"])
        let first = try json(orders[0])
        #expect(first.content["trade_order_id"] as? String == "TOID_test_42-1")
        #expect(first.content["is_sandbox"] as? Bool == false)
        // One event keeps the order id as given.
        #expect(try envelope(try bodies(event: "minis.trade_order.redeem.success", orderID: "42", count: 1)[0]).orderID == "42")
    }

    @Test func aRefundTracebackCarriesItsAmount() throws {
        let refund = try bodies(event: "minis.trade_order.redeem.refund_traceback", orderID: "42", refundAmount: 100, count: 1)[0]
        #expect(try json(refund).content["refund_amount"] as? Int == 100)
        #expect(try envelope(refund).dedupKey.rawValue == "s:minis.trade_order.redeem.refund_traceback:42")
    }

    @Test(arguments: [(1, "order_status"), (11, "cancel_status"), (12, "return_status"), (36, "update_time")])
    func shopNotificationsByType(type: Int, member: String) throws {
        let notifications = try bodies(.tiktokShop, event: "\(type)", orderID: "576461413038785752", notificationID: "N", count: 2)
        let shop = try notifications.map { try envelope($0, .tiktokShop) }
        #expect(shop.map(\.notificationID) == ["N-1", "N-2"])
        #expect(shop.allSatisfy { $0.eventType == "\(type)" && $0.orderID == "576461413038785752" && $0.timestamp == 1_764_547_200 })
        // Without --notification-id each of many events still has an id of its own.
        let many = try bodies(.tiktokShop, event: "\(type)", orderID: "1", count: 3000).map { try envelope($0, .tiktokShop).notificationID }
        #expect(Set(many).count == 3000)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(notifications[0])) as? [String: Any])
        let data = try #require(object["data"] as? [String: Any])
        #expect(data[member] != nil)
    }

    @Test(arguments: [
        (["--order-id", "1", "--refund-amount", "5"], "--refund-amount goes with --event minis.trade_order.redeem.refund_traceback"),
        (["--order-id", "1", "--event", "minis.trade_order.redeem.refund_traceback"], "a refund traceback needs --refund-amount"),
        (["--order-id", "1", "--count", "0"], "--count must be from 1 to 100000"),
        (["--body-file", "x.json", "--count", "2"], "--count does not go with --body-file"),
    ])
    func optionsThatDoNotGoTogether(arguments: [String], message: String) {
        do {
            _ = try SendTestEventCommand.parse(arguments)
            Issue.record("expected a validation error")
        } catch {
            #expect(SendTestEventCommand.message(for: error).contains(message), "\(SendTestEventCommand.message(for: error))")
        }
    }
}
