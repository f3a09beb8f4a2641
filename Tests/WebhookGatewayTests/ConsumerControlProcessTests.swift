import AsyncHTTPClient
import Foundation
import GatewayTestSupport
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

@testable import WebhookGateway

/// A consumer's URL as the admin API shows it: no user, password, query or fragment.
@Test(arguments: [
    ("https://user:secret@hooks.example.com:8443/tiktok?token=abc#frag", "https://hooks.example.com:8443/tiktok"),
    ("http://127.0.0.1:9000/hook", "http://127.0.0.1:9000/hook"),
    ("http://:only-password@h/p?x=1", "http://h/p"),
    ("not a url with spaces", ""),
])
func aConsumersURLIsShownWithoutCredentials(url: String, shown: String) {
    #expect(ConsumerAdmin.displayURL(url) == shown)
}

extension BinaryTests {
    /// `GET /admin/consumers` and an operator's pause and resume, through the built binary and the
    /// `consumers` commands: a paused consumer gets nothing (not even after a restart) until it is
    /// resumed, and then gets its queue.
    @Suite(.serialized, .timeLimit(.minutes(3)))
    struct ConsumerControlProcessTests {
        static let secret = "consumer-control-tiktok-secret"
        static let token = "crash-test-admin-token"

        static func consumers(_ gateway: GatewayProcess) async throws -> [String: [String: Any]] {
            let answer = try await gateway.admin("/admin/consumers", token: token)
            #expect(answer.status == 200, "\(answer.text)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(answer.text.utf8)) as? [String: Any])
            let items = try #require(object["consumers"] as? [[String: Any]])
            return Dictionary(uniqueKeysWithValues: items.map { ($0["name"] as? String ?? "", $0) })
        }

        static func post(_ gateway: GatewayProcess, _ path: String, token: String?) async throws -> (status: Int, text: String) {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(gateway.adminPort)\(path)")
            request.method = .POST
            if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
            return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
        }

        @Test func aPausedConsumerGetsNothingUntilResumedEvenAcrossARestart() async throws {
            let directory = try DeliveryProcessTests.temporaryDirectory("consumer-control")
            defer { try? FileManager.default.removeItem(at: directory) }
            let consumer = try await ScriptedConsumer.start { _ in .status(200) }
            // A query string may carry a credential: the API never shows it.
            let config = try GatewayProcess.writeConfig(
                in: directory, secret: Self.secret, consumerURL: consumer.url + "?key=query-credential")
            let gateway = try GatewayProcess(config: config, directory: directory, name: "first")
            let admin = ["--config", config, "--admin-url", "http://127.0.0.1:\(gateway.adminPort)"]

            let fresh = try #require(try await Self.consumers(gateway)["orders"])
            #expect(fresh["paused"] as? Bool == false)
            #expect(fresh["pausedBy"] is NSNull)
            #expect(fresh["queueDepth"] as? Int == 0)
            #expect(fresh["oldestPendingAt"] is NSNull)
            #expect(fresh["lastDeliveredAt"] is NSNull)
            #expect((fresh["url"] as? String)?.hasPrefix(consumer.url) == true)
            #expect(!(fresh["url"] as? String ?? "").contains("query-credential"))

            #expect(try await Self.post(gateway, "/admin/consumers/orders/pause", token: nil).status == 401)
            #expect(try await Self.post(gateway, "/admin/consumers/nobody/pause", token: Self.token).status == 404)
            let paused = try await DeliveryProcessTests.runCLI(["consumers", "pause", "orders"] + admin)
            #expect(paused.status == 0, "\(paused.errors)")
            #expect(paused.output.hasPrefix("orders  paused by an operator"), "\(paused.output)")

            let reply = try await GatewayProcess.send(orderID: "held-1", secret: Self.secret, port: gateway.ingressPort)
            #expect(reply.status == 200)
            let eventID = try #require(reply.json["id"])
            // Nothing goes out: two poll intervals pass and the delivery is still queued.
            try await Task.sleep(for: .seconds(2))
            #expect(consumer.received.isEmpty)
            let held = try #require(try await Self.consumers(gateway)["orders"])
            #expect(held["paused"] as? Bool == true)
            #expect(held["pausedBy"] as? String == "operator")
            #expect(held["queueDepth"] as? Int == 1)
            #expect(held["oldestPendingAt"] is String)

            // The pause is in the store: a restarted gateway keeps it.
            gateway.kill(SIGTERM)
            #expect(await gateway.waitForExit(timeout: 10) == 0)
            let restarted = try GatewayProcess(config: config, directory: directory, name: "second")
            let readmin = ["--config", config, "--admin-url", "http://127.0.0.1:\(restarted.adminPort)"]
            #expect(try await Self.consumers(restarted)["orders"]?["pausedBy"] as? String == "operator")
            try await Task.sleep(for: .seconds(2))
            #expect(consumer.received.isEmpty)
            let list = try await DeliveryProcessTests.runCLI(["consumers", "list"] + readmin)
            #expect(list.status == 0, "\(list.errors)")
            #expect(list.output.contains("orders  paused by an operator  queued 1  oldest "), "\(list.output)")

            let resumed = try await DeliveryProcessTests.runCLI(["consumers", "resume", "orders"] + readmin)
            #expect(resumed.status == 0, "\(resumed.errors)")
            #expect(resumed.output.hasPrefix("orders  delivering"), "\(resumed.output)")
            #expect(await consumer.wait { $0.contains { $0.webhookID == eventID } })
            #expect(try await DeliveryProcessTests.waitForEmptyQueue(restarted))
            let json = try await DeliveryProcessTests.runCLI(["consumers", "list", "--json"] + readmin)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])
            let item = try #require((object["consumers"] as? [[String: Any]])?.first)
            #expect(item["paused"] as? Bool == false)
            #expect(item["lastDeliveredAt"] is String)
            #expect(item["queueDepth"] as? Int == 0)
            restarted.kill(SIGTERM)
            #expect(await restarted.waitForExit(timeout: 10) == 0)
            await consumer.stop()
        }

        /// An operator's resume also ends a pause by failures: the consumer gets new events at once
        /// instead of after the next probe (a minute away here), and the pause gauge drops.
        @Test func aResumeEndsAPauseByFailures() async throws {
            let directory = try DeliveryProcessTests.temporaryDirectory("consumer-resume")
            defer { try? FileManager.default.removeItem(at: directory) }
            let failing = Mutex(true)
            let consumer = try await ScriptedConsumer.start { _ in failing.withLock { $0 } ? .status(500) : .status(200) }
            let config = try GatewayProcess.writeConfig(
                in: directory, secret: Self.secret, consumerURL: consumer.url,
                consumerSettings: #", "concurrency": 8, "retry": {"maxAttempts": 10, "initialDelay": "60s", "maxDelay": "120s"}"#)
            let gateway = try GatewayProcess(config: config, directory: directory, name: "resume")
            for n in 1...5 {
                #expect(try await GatewayProcess.send(orderID: "fail-\(n)", secret: Self.secret, port: gateway.ingressPort).status == 200)
            }
            var pausedBy: String?
            for _ in 0..<200 {
                pausedBy = try await Self.consumers(gateway)["orders"]?["pausedBy"] as? String
                if pausedBy == "failures" { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            try #require(pausedBy == "failures")
            let metrics = try await gateway.admin("/metrics", token: Self.token).text
            #expect(metrics.contains(#"webhook_gateway_consumer_paused{consumer="orders"} 1"#))

            failing.withLock { $0 = false }
            let answer = try await Self.post(gateway, "/admin/consumers/orders/resume", token: Self.token)
            #expect(answer.status == 200, "\(answer.text)")
            let item = try #require(try JSONSerialization.jsonObject(with: Data(answer.text.utf8)) as? [String: Any])
            #expect(item["paused"] as? Bool == false)
            #expect(item["pausedBy"] is NSNull)
            // Delivered now, not at the next probe (which is 30 s or more away).
            let reply = try await GatewayProcess.send(orderID: "after-resume", secret: Self.secret, port: gateway.ingressPort)
            let eventID = try #require(reply.json["id"])
            #expect(await consumer.wait(timeout: .seconds(10), until: { $0.contains { $0.webhookID == eventID } }))
            let after = try await gateway.admin("/metrics", token: Self.token).text
            #expect(after.contains(#"webhook_gateway_consumer_paused{consumer="orders"} 0"#))
            gateway.kill(SIGTERM)
            #expect(await gateway.waitForExit(timeout: 10) == 0)
            await consumer.stop()
        }
    }
}
