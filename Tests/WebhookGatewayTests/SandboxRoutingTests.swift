import Delivery
import Foundation
import Logging
import Prometheus
import Testing
import Verification

@testable import GatewayConfiguration
@testable import WebhookGateway

/// A TikTok sandbox payment (`"is_sandbox": true` in the vector's content) reaches the consumer
/// that asked for sandbox events and not the production one, so testing payments in the sandbox
/// unlocks nothing in production.
struct SandboxRoutingTests {
    @Test func sandboxEventsGoOnlyWhereTheConsumersPolicyAdmitsThem() async throws {
        let fixture = try GatewayFixture()
        func consumer(_ name: String, _ policy: GatewayConfiguration.Consumer.SandboxPolicy) -> GatewayConfiguration.Consumer {
            var consumer = GatewayConfiguration.Consumer(
                name: name,
                url: URL(string: "http://127.0.0.1:1/")!,
                events: [EventPattern("minis.trade_order.*")!],
                signingSecret: Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                signer: try! StandardWebhooksSigner(secret: Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
            )
            consumer.sandbox = policy
            return consumer
        }
        let metrics = GatewayMetrics(
            sources: ["tiktok"], consumers: ["orders", "orders-sandbox", "everything"],
            factory: PrometheusMetricsFactory(registry: PrometheusCollectorRegistry()))
        let ingestor = Ingestor(
            store: fixture.store,
            consumers: Reloadable([consumer("orders", .exclude), consumer("orders-sandbox", .only), consumer("everything", .include)]),
            metrics: metrics,
            now: { GatewayFixture.now },
            onStored: { _ in }
        )
        let source = Ingestor.Source(name: "tiktok", verifier: .tiktok(secrets: [Secret(GatewayFixture.secret)]))
        let outcome = await ingestor.ingest(
            source: source, headers: [("tiktok-signature", IngressTests.tiktokSignature)], body: Data(IngressTests.tiktokBody.utf8),
            logger: Logger(label: "test"))
        guard case .accepted = outcome else {
            Issue.record("not accepted: \(outcome)")
            return
        }
        #expect(try await fixture.store.depth(consumer: "orders") == 0)
        #expect(try await fixture.store.depth(consumer: "orders-sandbox") == 1)
        #expect(try await fixture.store.depth(consumer: "everything") == 1)
    }
}
