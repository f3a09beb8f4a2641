import Delivery
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Metrics
import NIOCore
import Prometheus
import Testing
import Verification

@testable import WebhookGateway

struct AdminTests {
    static let token = "admin-token-for-the-tests"

    func makeApplication(state: GatewayState, registry: PrometheusCollectorRegistry = .init()) -> some ApplicationProtocol {
        let store = state.store as! SQLiteStore
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wg-admin-\(UUID().uuidString)").path
        let deadLetters = DeadLetterAdmin(
            archive: FileDeadLetterArchive(writer: DeadLetterWriter(directory: directory)),
            store: store,
            consumers: ["orders"],
            now: { Date() },
            onReplayed: { _ in }
        )
        return Application(
            router: AdminRouter.make(
                token: Reloadable(Secret(Self.token)), state: state, deadLetters: deadLetters, registry: registry, refreshGauges: {}))
    }

    @Test func probesAreOpenAndReflectTheStore() async throws {
        let fixture = try GatewayFixture()
        let state = GatewayState(store: fixture.store)
        try await makeApplication(state: state).test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .ok) }

            // Store unwritable: not ready; fixed: ready again, without a restart.
            let path = fixture.storePath
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .serviceUnavailable) }
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try FileManager.default.removeItem(atPath: path)
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .ok) }

            // Draining: not ready, still alive.
            state.startDraining()
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .serviceUnavailable) }
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
        }
    }

    @Test(arguments: [nil, "Bearer wrong-token-of-right-size", "Bearer admin-token-for-the-test", "admin-token-for-the-tests", "Basic xyz"])
    func metricsNeedTheBearerToken(authorization: String?) async throws {
        let fixture = try GatewayFixture()
        try await makeApplication(state: GatewayState(store: fixture.store)).test(.router) { client in
            var headers: HTTPFields = [:]
            if let authorization { headers[.authorization] = authorization }
            try await client.execute(uri: "/metrics", method: .get, headers: headers) { response in
                #expect(response.status == .unauthorized)
                #expect(response.headers[.wwwAuthenticate] == "Bearer")
                #expect(!String(buffer: response.body).contains(Self.token))
            }
        }
    }

    @Test func metricsUseTheSpecNames() async throws {
        let fixture = try GatewayFixture()
        let registry = PrometheusCollectorRegistry()
        let metrics = GatewayMetrics(sources: ["tiktok"], consumers: ["orders"], factory: PrometheusMetricsFactory(registry: registry))
        metrics.request(source: "tiktok", outcome: .accepted)
        metrics.request(source: "tiktok", outcome: .tooLarge)
        metrics.queueDepth(consumer: "orders", depth: 7)
        metrics.deadLettered(consumer: "orders", count: 2)
        metrics.delivered(consumer: "orders", latency: .milliseconds(30))
        metrics.retried(consumer: "orders")
        metrics.pauseChanged(consumer: "orders", paused: true)
        try await makeApplication(state: GatewayState(store: fixture.store), registry: registry).test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer \(Self.token)"]) { response in
                #expect(response.status == .ok)
                let text = String(buffer: response.body)
                #expect(text.contains(#"webhook_gateway_requests_total{source="tiktok",outcome="accepted"} 1"#))
                #expect(text.contains(#"webhook_gateway_requests_total{source="tiktok",outcome="too_large"} 1"#))
                #expect(text.contains(#"webhook_gateway_requests_total{source="tiktok",outcome="unauthorized"} 0"#))
                #expect(text.contains(#"webhook_gateway_queue_depth{consumer="orders"} 7"#))
                #expect(text.contains(#"webhook_gateway_dead_letters_total{consumer="orders"} 2"#))
                #expect(text.contains(#"webhook_gateway_deliveries_total{consumer="orders",outcome="dead_lettered"} 2"#))
                #expect(text.contains(#"webhook_gateway_deliveries_total{consumer="orders",outcome="delivered"} 1"#))
                #expect(text.contains(#"webhook_gateway_deliveries_total{consumer="orders",outcome="retried"} 1"#))
                #expect(text.contains(#"webhook_gateway_delivery_latency_seconds_bucket{consumer="orders",le="0.05"} 1"#))
                #expect(text.contains(#"webhook_gateway_delivery_latency_seconds_bucket{consumer="orders",le="0.025"} 0"#))
                #expect(text.contains(#"webhook_gateway_consumer_paused{consumer="orders"} 1"#))
            }
        }
    }

    @Test func signatureHeadersAreRedactedInLogs() {
        let headers: HTTPFields = [
            .init("TikTok-Signature")!: "t=1,s=abcdef", .authorization: "0123456789abcdef", .contentType: "application/json",
            .cookie: "session=secret",
        ]
        let text = RedactedHeaders.describe(headers)
        #expect(text.contains("tiktok-signature: <redacted>"))
        #expect(text.contains("authorization: <redacted>"))
        #expect(text.contains("content-type: application/json"))
        #expect(!text.contains("abcdef"))
        #expect(!text.contains("session=secret"))
    }
}
