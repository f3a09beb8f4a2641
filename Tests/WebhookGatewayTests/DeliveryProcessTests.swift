import Foundation
import GatewayTestSupport
import Synchronization
import Testing

extension BinaryTests {
    /// Delivery through the built binary: a crash in the middle of deliveries, a graceful restart,
    /// and the `dead-letters` commands against the running gateway.
    @Suite(.serialized, .timeLimit(.minutes(3)))
    struct DeliveryProcessTests {
        static let secret = "delivery-test-tiktok-secret"
        static let adminToken = "crash-test-admin-token"

        /// Runs the binary with `arguments` (an admin command); returns exit status, stdout, stderr.
        static func runCLI(_ arguments: [String], environment: [String: String] = [:]) async throws -> (
            status: Int32, output: String, errors: String
        ) {
            let result = try await Edge.run(GatewayProcess.binary.path, arguments, environment: environment)
            return (result.status, result.stdout, result.stderr)
        }

        static func temporaryDirectory(_ name: String) throws -> URL {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wg-\(name)-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            return directory
        }

        /// Waits until the gateway reports an empty queue for `orders`.
        static func waitForEmptyQueue(_ gateway: GatewayProcess, token: String = adminToken) async throws -> Bool {
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                let metrics = try await gateway.admin("/metrics", token: token)
                if metrics.text.contains(#"webhook_gateway_queue_depth{consumer="orders"} 0"#) { return true }
                try await Task.sleep(for: .milliseconds(50))
            }
            return false
        }

        @Test func deliveriesInFlightAtSIGKILLAreSentAgainAndNothingIsLost() async throws {
            let directory = try Self.temporaryDirectory("delivery-crash")
            defer { try? FileManager.default.removeItem(at: directory) }
            let gate = Gate()
            let consumer = try await ScriptedConsumer.start { _ in
                await gate.wait()
                return .status(200)
            }
            let config = try GatewayProcess.writeConfig(
                in: directory, secret: Self.secret, consumerURL: consumer.url,
                consumerSettings: #", "concurrency": 4, "timeout": "30s""#)

            let gateway = try GatewayProcess(config: config, directory: directory, name: "first")
            var accepted: [String] = []
            for index in 0..<30 {
                let reply = try await GatewayProcess.send(orderID: "crash-\(index)", secret: Self.secret, port: gateway.ingressPort)
                #expect(reply.status == 200)
                accepted.append(try #require(reply.json["id"]))
            }
            // Four deliveries are in flight, held by the consumer; then the gateway dies.
            #expect(await consumer.wait { $0.count >= 4 })
            gateway.kill(SIGKILL)
            #expect(await gateway.waitForExit(timeout: 10) != nil)
            let inFlightAtKill = Set(consumer.received.map(\.webhookID))
            #expect(inFlightAtKill.count == 4)
            gate.open()

            // After the restart every accepted event arrives, and only the ones in flight twice.
            let restarted = try GatewayProcess(config: config, directory: directory, name: "second")
            let allAccepted = Set(accepted)
            #expect(await consumer.wait { received in Set(received.map(\.webhookID)).isSuperset(of: allAccepted) })
            #expect(try await Self.waitForEmptyQueue(restarted))
            var receipts: [String: Int] = [:]
            for request in consumer.received { receipts[request.webhookID, default: 0] += 1 }
            let sentTwice = Set(receipts.filter { $0.value > 1 }.keys)
            #expect(sentTwice.isSubset(of: inFlightAtKill))
            #expect(receipts.values.allSatisfy { $0 <= 2 })
            let metrics = try await restarted.admin("/metrics", token: Self.adminToken)
            #expect(metrics.text.contains(#"webhook_gateway_deliveries_total{consumer="orders",outcome="delivered"} 30"#))
            #expect(metrics.text.contains(#"webhook_gateway_delivery_latency_seconds_count{consumer="orders"} 30"#))

            // A graceful stop and start sends nothing again: only a new event goes out.
            restarted.kill(SIGTERM)
            #expect(await restarted.waitForExit(timeout: 10) == 0)
            let before = consumer.received.count
            let third = try GatewayProcess(config: config, directory: directory, name: "third")
            let reply = try await GatewayProcess.send(orderID: "after-restart", secret: Self.secret, port: third.ingressPort)
            let fresh = try #require(reply.json["id"])
            #expect(await consumer.wait { $0.contains { $0.webhookID == fresh } })
            #expect(try await Self.waitForEmptyQueue(third))
            #expect(consumer.received.count == before + 1)
            third.kill(SIGTERM)
            #expect(await third.waitForExit(timeout: 10) == 0)
            await consumer.stop()
        }

        @Test func deadLetterCommandsListAndReplayThroughTheAdminAPI() async throws {
            let directory = try Self.temporaryDirectory("dead-letter-cli")
            defer { try? FileManager.default.removeItem(at: directory) }
            let accepting = Atomic<Bool>(false)
            let consumer = try await ScriptedConsumer.start { _ in
                accepting.load(ordering: .relaxed) ? .status(200) : .status(400)
            }
            let config = try GatewayProcess.writeConfig(in: directory, secret: Self.secret, consumerURL: consumer.url)
            let gateway = try GatewayProcess(config: config, directory: directory, name: "cli")
            var ids: [String] = []
            for index in 0..<3 {
                let reply = try await GatewayProcess.send(orderID: "cli-\(index)", secret: Self.secret, port: gateway.ingressPort)
                ids.append(try #require(reply.json["id"]))
            }
            #expect(try await Self.waitForEmptyQueue(gateway))
            let admin = ["--config", config, "--admin-url", "http://127.0.0.1:\(gateway.adminPort)"]

            let list = try await Self.runCLI(["dead-letters", "list"] + admin + ["--consumer", "orders"])
            #expect(list.status == 0, "\(list.errors)")
            #expect(list.output.hasSuffix("3 dead letters\n"))
            for id in ids { #expect(!list.output.contains(id)) }  // dead-letter ids are listed, not event ids
            #expect(list.output.contains("not retryable: status 400"))
            let json = try await Self.runCLI(["dead-letters", "list", "--json"] + admin)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])
            let letters = try #require(object["deadLetters"] as? [[String: Any]])
            #expect(Set(letters.compactMap { $0["eventId"] as? String }) == Set(ids))
            let firstLetter = try #require(letters.last?["id"] as? String)

            let dryRun = try await Self.runCLI(["dead-letters", "replay"] + admin + ["--consumer", "orders", "--dry-run"])
            #expect(dryRun.status == 0, "\(dryRun.errors)")
            #expect(dryRun.output.components(separatedBy: "would replay dl_").count - 1 == 3)
            #expect(dryRun.output.hasSuffix("replayed 3, skipped 0\n"))

            // Replayed while the consumer still refuses: it fails again and becomes a new line.
            let failedAgain = try await Self.runCLI(["dead-letters", "replay"] + admin + ["--consumer", "orders", "--id", firstLetter])
            #expect(failedAgain.output.hasSuffix("replayed 1, skipped 0\n"), "\(failedAgain.output)")
            let deadline = ContinuousClock.now + .seconds(20)
            var relisted: [[String: Any]] = []
            while ContinuousClock.now < deadline && relisted.count < 4 {
                let output = try await Self.runCLI(["dead-letters", "list", "--json"] + admin).output
                relisted =
                    (try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])?["deadLetters"] as? [[String: Any]] ?? []
                if relisted.count < 4 { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(relisted.count == 4)
            let newest = try #require(relisted.first)
            #expect(newest["eventId"] as? String == letters.last?["eventId"] as? String)
            #expect(newest["id"] as? String != firstLetter)
            #expect(newest["replayed"] as? Bool == false)
            #expect(relisted.first { $0["id"] as? String == firstLetter }?["replayed"] as? Bool == true)
            let sentBefore = consumer.received.count

            // Fixed consumer: everything not replayed yet (the two others and the new line) goes again.
            accepting.store(true, ordering: .relaxed)
            let replay = try await Self.runCLI(["dead-letters", "replay"] + admin + ["--consumer", "orders", "--chunk-size", "2"])
            #expect(replay.status == 0, "\(replay.errors)")
            #expect(replay.output.hasSuffix("replayed 3, skipped 1\n"), "\(replay.output)")
            // A replay larger than one request shows its progress.
            #expect(replay.errors.contains("replaying orders: 2/3"))
            #expect(replay.errors.contains("replaying orders: 3/3"))
            // Delivered again with the original webhook-id.
            let eventIDs = Set(ids)
            #expect(
                await consumer.wait { received in
                    Set(received.dropFirst(sentBefore).filter { $0.headers["webhook-attempt"] == "1" }.map(\.webhookID)) == eventIDs
                })
            #expect(try await Self.waitForEmptyQueue(gateway))

            let again = try await Self.runCLI(["dead-letters", "replay"] + admin + ["--consumer", "orders"])
            #expect(again.output.hasSuffix("replayed 0, skipped 4\n"))
            let forced = try await Self.runCLI(
                ["dead-letters", "replay"] + admin + ["--consumer", "orders", "--id", firstLetter, "--force"])
            #expect(forced.output.hasSuffix("replayed 1, skipped 0\n"))

            // Failures: a wrong token, an unreachable admin API, an unknown consumer.
            let wrongToken = try await Self.runCLI(
                ["dead-letters", "list"] + admin, environment: ["WEBHOOK_GATEWAY_ADMIN_TOKEN": "not-the-admin-token"])
            #expect(wrongToken.status != 0)
            #expect(wrongToken.errors.contains("401"))
            #expect(!wrongToken.errors.contains("not-the-admin-token"))
            let unreachable = try await Self.runCLI(["dead-letters", "list", "--config", config, "--admin-url", "http://127.0.0.1:1"])
            #expect(unreachable.status != 0)
            // A second gateway on the same store refuses to start (it would release the first one's leases).
            let second = try await Self.runCLI(["serve", "--config", config])
            #expect(second.status != 0)
            #expect(second.errors.contains("another webhook-gateway is serving this store"))
            let unknown = try await Self.runCLI(["dead-letters", "replay"] + admin + ["--consumer", "billing"])
            #expect(unknown.status != 0)
            #expect(unknown.errors.contains("billing"))

            gateway.kill(SIGTERM)
            #expect(await gateway.waitForExit(timeout: 10) == 0)
            await consumer.stop()
        }
    }
}
