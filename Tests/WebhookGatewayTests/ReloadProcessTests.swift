import Foundation
import GatewayTestSupport
import Testing

extension BinaryTests {
    /// SIGHUP against the built binary: secrets rotate, consumer settings change without losing a
    /// queued delivery, and a change that needs a restart is refused whole.
    @Suite(.serialized, .timeLimit(.minutes(3)))
    struct ReloadProcessTests {
        static let newSecret = "edge-test-rotated-secret-Zp81"

        func url(_ gateway: GatewayProcess) -> String { "http://127.0.0.1:\(gateway.ingressPort)/webhooks/tiktok" }

        func log(_ directory: URL, _ name: String) -> String {
            (try? String(contentsOf: directory.appendingPathComponent("\(name).log"), encoding: .utf8)) ?? ""
        }

        @Test func sighupRotatesSourceSecrets() async throws {
            let directory = try Edge.temporaryDirectory("reload-secrets")
            defer { try? FileManager.default.removeItem(at: directory) }
            _ = try Edge.writeConfig(in: directory)
            let gateway = try GatewayProcess(config: directory.appendingPathComponent("config.json").path, directory: directory, name: "gw")
            #expect(try await Edge.send(orderID: "r-1", url: url(gateway)).status == 200)
            #expect(try await Edge.send(orderID: "r-2", secret: Self.newSecret, url: url(gateway)).status == 401)

            // Rotation, step 1: both secrets.
            _ = try Edge.writeConfig(in: directory, secrets: [Edge.secret, Self.newSecret])
            gateway.kill(SIGHUP)
            #expect(
                await Edge.eventually { (try? await Edge.send(orderID: "r-3", secret: Self.newSecret, url: url(gateway)).status) == 200 })
            #expect(try await Edge.send(orderID: "r-4", url: url(gateway)).status == 200)

            // Step 2: only the new one.
            _ = try Edge.writeConfig(in: directory, secrets: [Self.newSecret])
            gateway.kill(SIGHUP)
            #expect(await Edge.eventually { (try? await Edge.send(orderID: "r-5", url: url(gateway)).status) == 401 })
            #expect(try await Edge.send(orderID: "r-6", secret: Self.newSecret, url: url(gateway)).status == 200)
            // Nothing of the secrets reaches the log.
            let text = log(directory, "gw")
            #expect(text.contains("configuration reloaded"))
            #expect(!text.contains(Edge.secret) && !text.contains(Self.newSecret))
        }

        @Test func aReloadThatNeedsARestartIsRefusedWhole() async throws {
            let directory = try Edge.temporaryDirectory("reload-refused")
            defer { try? FileManager.default.removeItem(at: directory) }
            let config = try Edge.writeConfig(in: directory)
            let gateway = try GatewayProcess(config: config, directory: directory, name: "gw")

            // A new secret together with a new body limit and a missing variable: nothing applies.
            _ = try Edge.writeConfig(in: directory, secrets: [Self.newSecret], extra: #""maxBodyBytes": 10,"#)
            gateway.kill(SIGHUP)
            #expect(await Edge.eventually { log(directory, "gw").contains("these settings need a restart: maxBodyBytes") })
            #expect(try await Edge.send(orderID: "x-1", secret: Self.newSecret, url: url(gateway)).status == 401)
            #expect(try await Edge.send(orderID: "x-2", url: url(gateway)).status == 200)

            _ = try Edge.writeConfig(in: directory, secrets: ["env:EDGE_TEST_VARIABLE_NOT_SET"])
            gateway.kill(SIGHUP)
            #expect(await Edge.eventually { log(directory, "gw").contains("EDGE_TEST_VARIABLE_NOT_SET is not set") })
            #expect(try await Edge.send(orderID: "x-3", url: url(gateway)).status == 200)
            #expect(gateway.process.isRunning)
        }

        @Test func consumerSettingsChangeWithoutDroppingQueuedDeliveries() async throws {
            let directory = try Edge.temporaryDirectory("reload-consumer")
            defer { try? FileManager.default.removeItem(at: directory) }
            // The old address answers 503 to everything; the new one accepts.
            let old = try await ScriptedConsumer.start { _ in .status(503) }
            let new = try await ScriptedConsumer.start()
            let retry = #", "retry": { "maxAttempts": 100, "initialDelay": "100ms", "maxDelay": "200ms" }"#
            let config = try Edge.writeConfig(in: directory, consumerURL: old.url, consumerExtra: retry)
            let gateway = try GatewayProcess(config: config, directory: directory, name: "gw")
            var accepted: [String] = []
            for index in 0..<20 {
                let reply = try await Edge.send(orderID: "queued-\(index)", url: url(gateway))
                #expect(reply.status == 200)
                accepted.append(reply.text)
            }
            #expect(await Edge.eventually { old.received.count >= 5 })
            #expect(new.received.isEmpty)

            _ = try Edge.writeConfig(in: directory, consumerURL: new.url, consumerExtra: retry)
            gateway.kill(SIGHUP)
            #expect(await Edge.eventually(timeout: .seconds(30)) { Set(new.received.map(\.webhookID)).count == 20 })
            let ids = Set(
                accepted.compactMap { text in
                    (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String])?["id"]
                })
            #expect(Set(new.received.map(\.webhookID)) == ids)
            #expect(log(directory, "gw").contains(#"consumers.changed=["orders"]"#))
            await old.stop()
            await new.stop()
        }
    }
}
