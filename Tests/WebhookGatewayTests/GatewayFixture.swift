import Delivery
import Foundation
import Hummingbird
import Logging
import Metrics
import MetricsTestKit
import Verification

@testable import GatewayConfiguration
@testable import WebhookGateway

/// An ingress responder on a real SQLite store in a temporary folder, with a fixed clock and
/// test metrics: what the route tests run against.
final class GatewayFixture: @unchecked Sendable {
    static let secret = "client_secret_example"
    static let appKey = "68xu9ks5p4i8"
    static let appSecret = "e59af819cc"
    /// The time of the independent TikTok vector, so that it verifies.
    static let now = Date(timeIntervalSince1970: 1_615_338_610)

    let directory: URL
    let store: SQLiteStore
    let metrics = TestMetrics()
    let unparsed: DeadLetterService
    let maxBodyBytes: Int
    let bodyBudget: BodyBudget

    init(maxBodyBytes: Int = 4_096, bodyBudget: BodyBudget = BodyBudget()) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("wg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let logger = Logger(label: "test")
        store = try SQLiteStore(
            configuration: .init(path: directory.appendingPathComponent("gateway.sqlite").path),
            logger: logger,
            now: { Self.now }
        )
        unparsed = DeadLetterService(
            store: store,
            writer: DeadLetterWriter(directory: directory.appendingPathComponent("dead-letters").path),
            logger: logger
        )
        self.maxBodyBytes = maxBodyBytes
        self.bodyBudget = bodyBudget
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    var storePath: String { directory.appendingPathComponent("gateway.sqlite").path }

    func makeApplication() -> some ApplicationProtocol {
        Application(
            responder: makeResponder(),
            // The same edge stack as the gateway's ingress listener, with default limits.
            server: ListenerProtocol(limits: ConnectionLimits(), extraHandlers: { [IngressConnectionHandler()] })
                .serverBuilder(gate: ConnectionGate(limits: ConnectionLimits())),
            configuration: .init(address: .hostname("127.0.0.1", port: 0))
        )
    }

    func makeResponder() -> IngressResponder {
        let consumers = [
            GatewayConfiguration.Consumer(
                name: "orders",
                url: URL(string: "http://127.0.0.1:1/")!,
                events: [EventPattern("minis.trade_order.*")!],
                signingSecret: Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                signer: try! StandardWebhooksSigner(secret: Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
            )
        ]
        let gatewayMetrics = GatewayMetrics(sources: ["tiktok", "shop"], consumers: ["orders"], factory: metrics)
        let ingestor = Ingestor(
            store: store,
            consumers: Reloadable(consumers),
            metrics: gatewayMetrics,
            now: { Self.now },
            onStored: { _ in }
        )
        let sources = [
            "/webhooks/tiktok": Ingestor.Source(name: "tiktok", verifier: .tiktok(secrets: [Secret("old-secret"), Secret(Self.secret)])),
            "/webhooks/shop": Ingestor.Source(
                name: "shop", verifier: .tiktokShop(appKey: Secret(Self.appKey), secrets: [Secret(Self.appSecret)])),
        ]
        return IngressResponder(
            sources: sources, ingestor: ingestor, maxBodyBytes: maxBodyBytes, bodyBudget: bodyBudget, metrics: gatewayMetrics)
    }

    /// A signed `minis.trade_order.redeem.success` for `orderID`.
    static func tiktokEvent(orderID: String, event: String = "minis.trade_order.redeem.success") -> (body: String, signature: String) {
        let body =
            #"{"client_key":"k","event":"\#(event)","create_time":1615338610,"user_openid":"","content":"{\"order_id\":\"\#(orderID)\"}"}"#
        let signature = TikTokSigner.tiktokSignature(secret: Secret(secret), timestamp: 1_615_338_610, body: Array(body.utf8))
        return (body, signature)
    }

    func requestCount(source: String, outcome: String) -> Int64 {
        guard let counter = try? metrics.expectCounter("webhook_gateway_requests_total", [("source", source), ("outcome", outcome)]) else {
            return 0
        }
        return counter.totalValue
    }
}
