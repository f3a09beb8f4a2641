import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import Verification

extension BinaryTests {
    /// The tools for integrating teams: `sign`, `send-test-event`, and the example consumer in
    /// `Examples/Consumer`, all run as built binaries.
    @Suite(.serialized, .timeLimit(.minutes(3)))
    struct ToolsTests {
        // The independent vectors of the Verification issue (computed with Python's hmac).
        static let tiktokBody = IngressTests.tiktokBody
        static let tiktokSignature = IngressTests.tiktokSignature
        static let shopBody = IngressTests.shopBody
        static let shopSignature = IngressTests.shopSignature

        func gateway(_ arguments: [String], environment: [String: String] = [:]) async throws -> Edge.Output {
            try await Edge.run(GatewayProcess.binary.path, arguments, environment: environment)
        }

        @Test func signPrintsTheHeadersOfTheIndependentVectors() async throws {
            let directory = try Edge.temporaryDirectory("sign")
            defer { try? FileManager.default.removeItem(at: directory) }
            let tiktok = directory.appendingPathComponent("tiktok.json")
            try Data(Self.tiktokBody.utf8).write(to: tiktok)
            let shop = directory.appendingPathComponent("shop.json")
            try Data(Self.shopBody.utf8).write(to: shop)

            let signed = try await gateway(
                [
                    "sign", "--scheme", "tiktok", "--secret", "env:VECTOR_SECRET", "--timestamp", "1615338610", "--body-file", tiktok.path,
                ], environment: ["VECTOR_SECRET": "client_secret_example"])
            #expect(signed.status == 0, "\(signed.stderr)")
            #expect(signed.stdout == "TikTok-Signature: \(Self.tiktokSignature)\n")

            let secretFile = directory.appendingPathComponent("shop-secret")
            try "e59af819cc\n".write(to: secretFile, atomically: true, encoding: .utf8)
            let shopSigned = try await gateway([
                "sign", "--scheme", "tiktok-shop", "--secret", "file:\(secretFile.path)", "--app-key", "68xu9ks5p4i8",
                "--body-file", shop.path, "--value-only",
            ])
            #expect(shopSigned.stdout == "\(Self.shopSignature)\n", "\(shopSigned.stderr)")

            // Through a configuration's source.
            let config = try Edge.writeConfig(in: directory, secrets: ["client_secret_example"])
            let viaConfig = try await gateway([
                "sign", "--config", config, "--source", "tiktok", "--timestamp", "1615338610", "--body", Self.tiktokBody, "--value-only",
            ])
            #expect(viaConfig.stdout == "\(Self.tiktokSignature)\n", "\(viaConfig.stderr)")

            // Errors name the option, never a value.
            let missing = try await gateway(["sign", "--scheme", "tiktok", "--secret", "env:SIGN_TEST_UNSET", "--body", "{}"])
            #expect(missing.status != 0)
            #expect(missing.stderr.contains("--secret: environment variable SIGN_TEST_UNSET is not set"), "\(missing.stderr)")
            let noSecret = try await gateway(["sign", "--scheme", "tiktok", "--body", "{}"])
            #expect(noSecret.status != 0)
            #expect(noSecret.stderr.contains("--secret: environment variable TIKTOK_CLIENT_SECRET is not set"), "\(noSecret.stderr)")
            // With the default variable set, the issue's short form works.
            let defaulted = try await gateway(
                ["sign", "--timestamp", "1615338610", "--body", Self.tiktokBody, "--value-only"],
                environment: ["TIKTOK_CLIENT_SECRET": "client_secret_example"])
            #expect(defaulted.stdout == "\(Self.tiktokSignature)\n", "\(defaulted.stderr)")
        }

        @Test func sendTestEventGoesThroughTheGatewayToTheExampleConsumer() async throws {
            let directory = try Edge.temporaryDirectory("send-test-event")
            defer { try? FileManager.default.removeItem(at: directory) }
            let example = GatewayProcess.binary.deletingLastPathComponent().appendingPathComponent("example-consumer")
            let consumer = try ChildProcess(
                example, ["--port", "0"], environment: ["EXAMPLE_SIGNING_SECRET": Edge.signingSecret],
                log: directory.appendingPathComponent("consumer.log"))
            #expect(await Edge.eventually { consumer.output.contains("listening on port ") })
            let port = try #require(
                consumer.output.components(separatedBy: "listening on port ").last?.split(whereSeparator: \.isNewline).first.flatMap {
                    Int($0)
                }
            )
            let consumerURL = "http://127.0.0.1:\(port)/tiktok-events"

            let config = try Edge.writeConfig(in: directory, consumerURL: consumerURL)
            let gateway = try GatewayProcess(config: config, directory: directory, name: "gw")
            // The configured listener is on port 0, so the URL is given.
            let sent = try await self.gateway([
                "send-test-event", "--config", config, "--url", "http://127.0.0.1:\(gateway.ingressPort)/webhooks/tiktok",
                "--event", "minis.trade_order.redeem.success", "--order-id", "episode-6-order",
            ])
            #expect(sent.status == 0, "\(sent.stdout) \(sent.stderr)")
            #expect(sent.stdout.hasPrefix(#"200 {"status":"accepted","id":"evt_"#), "\(sent.stdout)")
            #expect(await Edge.eventually { consumer.output.contains("purchase unlocked") && consumer.output.contains("episode-6-order") })

            // The same event again is a duplicate at the gateway: nothing new reaches the consumer.
            let again = try await self.gateway([
                "send-test-event", "--config", config, "--url", "http://127.0.0.1:\(gateway.ingressPort)/webhooks/tiktok",
                "--order-id", "episode-6-order",
            ])
            #expect(again.stdout.hasPrefix(#"200 {"status":"duplicate""#), "\(again.stdout)")

            // Twelve sandbox renewals of one subscription are twelve events.
            let renewals = try await self.gateway([
                "send-test-event", "--config", config, "--url", "http://127.0.0.1:\(gateway.ingressPort)/webhooks/tiktok",
                "--event", "minis.subscription.renew", "--order-id", "S1", "--sandbox", "--count", "12",
            ])
            #expect(renewals.status == 0, "\(renewals.stdout) \(renewals.stderr)")
            #expect(renewals.stdout.hasSuffix("sent 12: accepted 12, duplicate 0, failed 0\n"), "\(renewals.stdout)")

            // A wrong secret is refused with a non-zero exit.
            let refused = try await self.gateway([
                "send-test-event", "--url", "http://127.0.0.1:\(gateway.ingressPort)/webhooks/tiktok", "--scheme", "tiktok",
                "--secret", "not-the-secret", "--order-id", "x",
            ])
            #expect(refused.status != 0)
            #expect(refused.stdout.hasPrefix("401 "))

            // The example consumer on its own: it unlocks once per webhook-id and refuses bad signatures.
            let signer = try StandardWebhooksSigner(secret: Secret(Edge.signingSecret))
            func deliver(id: String, body: String, timestamp: Int64 = Int64(Date().timeIntervalSince1970), tamper: Bool = false)
                async throws
                -> (Int, String)
            {
                var request = HTTPClientRequest(url: consumerURL)
                request.method = .POST
                request.headers.add(name: "webhook-id", value: id)
                request.headers.add(name: "webhook-timestamp", value: "\(timestamp)")
                request.headers.add(
                    name: "webhook-signature",
                    value: "v1,bm90IGl0 " + signer.signature(id: id, timestamp: timestamp, body: Array(body.utf8)))
                request.body = .bytes(ByteBuffer(string: tamper ? body + " " : body))
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
                return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 16)))
            }
            let body = Edge.tiktokBody(orderID: "direct-1")
            let first = try await deliver(id: "evt_direct", body: body)
            #expect(first.0 == 200 && first.1.contains(#""status":"unlocked""#), "\(first)")
            let replayed = try await deliver(id: "evt_direct", body: body)
            #expect(replayed.0 == 200 && replayed.1.contains(#""status":"already unlocked""#), "\(replayed)")
            #expect(try await deliver(id: "evt_tampered", body: body, tamper: true).0 == 401)
            #expect(try await deliver(id: "evt_old", body: body, timestamp: Int64(Date().timeIntervalSince1970) - 600).0 == 401)
        }
    }
}
