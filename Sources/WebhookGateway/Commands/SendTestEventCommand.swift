import ArgumentParser
import AsyncHTTPClient
import Delivery
import Foundation
import GatewayConfiguration
import NIOCore
import NIOHTTP1
import NIOSSL
import Verification

/// `webhook-gateway send-test-event`: sends correctly signed TikTok or TikTok Shop events, so a
/// team can exercise its whole pipeline (gateway, consumer, unlock) without TikTok.
///
/// It speaks each family the way TikTok sends it: trade-order payments (`--refund-amount` for a
/// refund traceback), subscription events (one order, many renewals), sandbox events
/// (`--sandbox`), and TikTok Shop notifications by type. `--count N` sends N distinct events.
struct SendTestEventCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send-test-event",
        abstract: "Send correctly signed TikTok or TikTok Shop events to a gateway.",
        discussion: """
            Examples:
              webhook-gateway send-test-event --config config.json --event minis.trade_order.redeem.success --order-id 42
              webhook-gateway send-test-event --config config.json --event minis.subscription.renew --order-id S1 --sandbox --count 12
              webhook-gateway send-test-event --config config.json --event minis.trade_order.redeem.refund_traceback \
                  --order-id 42 --refund-amount 100
              webhook-gateway send-test-event --config config.json --source shop --event 12 --order-id 576461413038785752
              webhook-gateway send-test-event --url http://127.0.0.1:8080/webhooks/tiktok --scheme tiktok \
                  --secret env:TIKTOK_CLIENT_SECRET --event minis.trade_order.redeem.success --order-id 42
            With --count N, trade-order events get the order ids ID-1 … ID-N, other TikTok events keep the
            order id and get N different create_time values (renewals of one subscription), and Shop
            notifications get N notification ids. The exit status is 0 when every answer is 2xx.
            """
    )

    @OptionGroup var signing: SigningOptions

    @Option(name: .long, help: "Where to send (default with --config: the source's path on the configured listener).")
    var url: String?

    @Option(name: .long, help: "The event: a TikTok event name, or a TikTok Shop type number such as 1.")
    var event: String = "minis.trade_order.redeem.success"

    @Option(name: .long, help: "The order id the event is about.")
    var orderID: String?

    @Flag(name: .long, help: "tiktok: a sandbox event (\"is_sandbox\": true in content).")
    var sandbox = false

    @Option(name: .long, help: "tiktok: the refund_amount of a minis.trade_order.redeem.refund_traceback.")
    var refundAmount: Int?

    @Option(name: .long, help: "How many distinct events to send, one after the other (1 to 100000).")
    var count = 1

    @Option(name: .long, help: "tiktok: the client_key in the envelope.")
    var clientKey: String = "test_client_key"

    @Option(name: .long, help: "tiktok-shop: the tts_notification_id (default: a new one, so each send is a new event).")
    var notificationID: String?

    @Option(name: .long, help: "Send this file's bytes instead of a generated envelope.")
    var bodyFile: String?

    @Flag(name: .long, help: "Accept any TLS certificate (a local gateway with a self-signed one).")
    var insecure = false

    @Option(name: .long, help: "Seconds to wait for each answer.")
    var timeout: Int64 = 10

    static let refundTraceback = "minis.trade_order.redeem.refund_traceback"

    func validate() throws {
        guard orderID != nil || bodyFile != nil else { throw ValidationError("give --order-id (or --body-file)") }
        guard (1...100_000).contains(count) else { throw ValidationError("--count must be from 1 to 100000") }
        if bodyFile != nil, count != 1 { throw ValidationError("--count does not go with --body-file (the same bytes are one event)") }
        if refundAmount != nil, event != Self.refundTraceback {
            throw ValidationError("--refund-amount goes with --event \(Self.refundTraceback)")
        }
        if event == Self.refundTraceback, refundAmount == nil, bodyFile == nil {
            throw ValidationError("a refund traceback needs --refund-amount")
        }
    }

    func run() async throws {
        let signing = try self.signing.resolve()
        guard let target = url ?? signing.url else { throw ValidationError("give --url (or --config)") }
        if signing.scheme == .tiktokShop, sandbox || refundAmount != nil {
            throw ValidationError("--sandbox and --refund-amount are for TikTok events; a TikTok Shop notification has neither")
        }
        var configuration = HTTPClient.Configuration()
        if insecure {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .none
            configuration.tlsConfiguration = tls
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        var tally = Tally()
        var failure: (any Error)?
        do {
            let now = Date()
            let file = try bodyFile.map { try SignCommand.read(body: nil, file: $0) }
            for index in 0..<count {
                let body =
                    try file
                    ?? Self.envelope(
                        scheme: signing.scheme, event: event, orderID: orderID ?? "", clientKey: clientKey,
                        notificationID: notificationID, sandbox: sandbox, refundAmount: refundAmount, now: now,
                        index: index, count: count)
                let (status, text) = try await send(body, signing: signing, to: target, client: client)
                print("\(status) \(text)")
                tally.count(status: status, answer: text)
            }
        } catch {
            failure = error
        }
        try await client.shutdown()
        if count > 1 { print(tally.summary) }
        if let failure {
            if failure is ValidationError { throw failure }
            FileHandle.standardError.write(Data("cannot send to \(target): \(failure)\n".utf8))
            throw ExitCode(1)
        }
        guard tally.failed == 0 else { throw ExitCode(1) }
    }

    /// Signs `body` as TikTok would (now) and posts it; the answer's status and text.
    private func send(
        _ body: [UInt8], signing: SigningOptions.Signing, to target: String, client: HTTPClient
    ) async throws -> (Int, String) {
        let header = signing.header(body: body, timestamp: Int64(Date().timeIntervalSince1970))
        var request = HTTPClientRequest(url: target)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: header.name, value: header.value)
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await client.execute(request, timeout: .seconds(timeout))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    /// What the gateway answered, for the summary of `--count`.
    struct Tally {
        var accepted = 0
        var duplicate = 0
        var failed = 0

        mutating func count(status: Int, answer: String) {
            if !(200..<300).contains(status) {
                failed += 1
            } else if answer.contains(#""status":"duplicate""#) {
                duplicate += 1
            } else {
                accepted += 1
            }
        }

        var summary: String { "sent \(accepted + duplicate + failed): accepted \(accepted), duplicate \(duplicate), failed \(failed)" }
    }

    /// Event `index` of `count`: a TikTok (Minis) event envelope, or a TikTok Shop notification,
    /// shaped as TikTok's documentation shows them.
    static func envelope(
        scheme: SignatureScheme,
        event: String,
        orderID: String,
        clientKey: String,
        notificationID: String?,
        sandbox: Bool = false,
        refundAmount: Int? = nil,
        now: Date,
        index: Int = 0,
        count: Int = 1
    ) throws -> [UInt8] {
        let seconds = Int64(now.timeIntervalSince1970)
        /// `base`, or `base-<n>` (1-based) when several events are sent.
        func numbered(_ base: String) -> String { count == 1 ? base : "\(base)-\(index + 1)" }
        if scheme == .tiktokShop {
            guard let type = Int(event) else { throw ValidationError("for tiktok-shop, --event is a type number such as 1") }
            // By default a new id per event: the run's start, a random part (another run) and the index.
            let id =
                notificationID.map(numbered)
                ?? "\(UInt64(now.timeIntervalSince1970 * 1_000))\(UInt32.random(in: 100_000...999_999))\(String(format: "%06d", index))"
            let data = shopData(type: type, orderID: orderID, updateTime: seconds)
            // `type`, `timestamp` and `data` are not strings, so the object is put together here.
            let text =
                #"{"type":\#(type),"tts_notification_id":\#(JSONText.string(id)),"shop_id":"7494049642642441621","timestamp":\#(seconds),"data":\#(data)}"#
            return Array(text.utf8)
        }
        // A trade order is paid once: several events are several orders. Any other family (a
        // subscription renews under one order) keeps the order and differs by its creation time,
        // the earlier events a second apart before now.
        let isTradeOrder = event.hasPrefix("minis.trade_order.")
        let order = isTradeOrder ? numbered(orderID) : orderID
        let createTime = isTradeOrder ? seconds : seconds - Int64(count - 1 - index)
        var members = [#""order_id":\#(JSONText.string(order))"#]
        if isTradeOrder { members.insert(#""trade_order_id":\#(JSONText.string("TOID_test_\(order)"))"#, at: 0) }
        if let refundAmount { members.append(#""refund_amount":\#(refundAmount)"#) }
        members.append(#""is_sandbox":\#(sandbox)"#)
        let content = "{" + members.joined(separator: ",") + "}"
        let text =
            #"{"client_key":\#(JSONText.string(clientKey)),"event":\#(JSONText.string(event)),"create_time":\#(createTime),"user_openid":"test_user","content":\#(JSONText.string(content))}"#
        return Array(text.utf8)
    }

    /// A Shop notification's `data` by type: order status (1), cancellation (11) and return (12)
    /// changes carry their own status fields; other types the order and the time.
    static func shopData(type: Int, orderID: String, updateTime: Int64) -> String {
        var members: [(String, String)] = [("order_id", orderID)]
        switch type {
        case 1: members.append(("order_status", "AWAITING_SHIPMENT"))
        case 11: members += [("cancel_id", "test_cancel_\(orderID)"), ("cancel_status", "CANCELLATION_REQUEST_PENDING")]
        case 12:
            members += [
                ("return_id", "test_return_\(orderID)"), ("return_status", "RETURN_OR_REFUND_REQUEST_PENDING"),
                ("return_type", "RETURN_AND_REFUND"),
            ]
        default: break
        }
        let object = JSONText.object(members)
        return String(object.dropLast()) + #","update_time":\#(updateTime)}"#
    }
}
