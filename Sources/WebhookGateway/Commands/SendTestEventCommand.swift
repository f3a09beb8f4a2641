import ArgumentParser
import AsyncHTTPClient
import Delivery
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Verification

/// `webhook-gateway send-test-event`: sends a correctly signed TikTok or TikTok Shop event, so a
/// team can exercise its whole pipeline (gateway, consumer, unlock) without TikTok.
struct SendTestEventCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send-test-event",
        abstract: "Send a correctly signed TikTok or TikTok Shop event to a gateway.",
        discussion: """
            Examples:
              webhook-gateway send-test-event --config config.json --event minis.trade_order.redeem.success --order-id 42
              webhook-gateway send-test-event --url http://127.0.0.1:8080/webhooks/tiktok --scheme tiktok \\
                  --secret env:TIKTOK_CLIENT_SECRET --event minis.trade_order.redeem.success --order-id 42
            The exit status is 0 when the gateway answers 2xx.
            """
    )

    @OptionGroup var signing: SigningOptions

    @Option(name: .long, help: "Where to send (default with --config: the source's path on the configured listener).")
    var url: String?

    @Option(name: .long, help: "The event: a TikTok event name, or a TikTok Shop type number such as 1.")
    var event: String = "minis.trade_order.redeem.success"

    @Option(name: .long, help: "The order id the event is about.")
    var orderID: String?

    @Option(name: .long, help: "tiktok: the client_key in the envelope.")
    var clientKey: String = "test_client_key"

    @Option(name: .long, help: "tiktok-shop: the tts_notification_id (default: a new one, so each send is a new event).")
    var notificationID: String?

    @Option(name: .long, help: "Send this file's bytes instead of a generated envelope.")
    var bodyFile: String?

    @Flag(name: .long, help: "Accept any TLS certificate (a local gateway with a self-signed one).")
    var insecure = false

    @Option(name: .long, help: "Seconds to wait for the answer.")
    var timeout: Int64 = 10

    func validate() throws {
        guard orderID != nil || bodyFile != nil else { throw ValidationError("give --order-id (or --body-file)") }
    }

    func run() async throws {
        let signing = try self.signing.resolve()
        guard let target = url ?? signing.url else { throw ValidationError("give --url (or --config)") }
        let now = Date()
        let body =
            try bodyFile.map { try SignCommand.read(body: nil, file: $0) }
            ?? Self.envelope(
                scheme: signing.scheme, event: event, orderID: orderID ?? "", clientKey: clientKey,
                notificationID: notificationID, now: now
            )
        let header = signing.header(body: body, timestamp: Int64(now.timeIntervalSince1970))

        var request = HTTPClientRequest(url: target)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: header.name, value: header.value)
        request.body = .bytes(ByteBuffer(bytes: body))
        var configuration = HTTPClient.Configuration()
        if insecure {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .none
            configuration.tlsConfiguration = tls
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let outcome: Result<(Int, String), any Error>
        do {
            let response = try await client.execute(request, timeout: .seconds(timeout))
            let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
            outcome = .success((Int(response.status.code), text))
        } catch {
            outcome = .failure(error)
        }
        try await client.shutdown()
        switch outcome {
        case .success((let status, let text)):
            print("\(status) \(text)")
            guard (200..<300).contains(status) else { throw ExitCode(1) }
        case .failure(let error):
            FileHandle.standardError.write(Data("cannot send to \(target): \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    /// A TikTok (Minis) event envelope, or a TikTok Shop notification, for `orderID`.
    static func envelope(
        scheme: SignatureScheme,
        event: String,
        orderID: String,
        clientKey: String,
        notificationID: String?,
        now: Date
    ) throws -> [UInt8] {
        let seconds = Int64(now.timeIntervalSince1970)
        if scheme == .tiktokShop {
            guard let type = Int(event) else { throw ValidationError("for tiktok-shop, --event is a type number such as 1") }
            let id = notificationID ?? "\(UInt64(now.timeIntervalSince1970 * 1_000))\(UInt32.random(in: 100_000...999_999))"
            let data = JSONText.object([("order_id", orderID), ("order_status", "AWAITING_SHIPMENT")])
            // `type`, `timestamp` and `data` are not strings, so the object is put together here.
            let text =
                #"{"type":\#(type),"tts_notification_id":\#(JSONText.string(id)),"shop_id":"test_shop","timestamp":\#(seconds),"data":\#(data)}"#
            return Array(text.utf8)
        }
        let content = JSONText.object([("order_id", orderID), ("trade_order_id", "test_\(orderID)")])
        let text =
            #"{"client_key":\#(JSONText.string(clientKey)),"event":\#(JSONText.string(event)),"create_time":\#(seconds),"user_openid":"test_user","content":\#(JSONText.string(content))}"#
        return Array(text.utf8)
    }
}
