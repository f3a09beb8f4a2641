import AsyncHTTPClient
import Delivery
import Foundation
import GatewayTestSupport
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
import Verification

extension BinaryTests {
    /// Three `serve` processes on one PostgreSQL database (SPEC: Several gateways), each test on a
    /// database of its own.
    @Suite(
        .serialized, .timeLimit(.minutes(3)),
        .enabled(if: TestPostgres.enabled, Comment(rawValue: TestPostgres.skipMessage)))
    struct SeveralGatewaysTests {
        static let secret = "several-gateways-tiktok-secret"
        static let adminToken = "several-gateways-admin-token"

        /// A new, empty database; returns its URL.
        static func freshDatabase() async throws -> String {
            let url = try TestPostgres.requireURL()
            let name = TestPostgres.freshSchema("wg")
            // Through the store's client, not a psql process: this test process starts and kills
            // many processes already.
            let admin = try await PostgresStore(
                configuration: .init(
                    connection: try PostgresURL(parsing: url), maxConnections: 2, schema: TestPostgres.freshSchema("admin")),
                logger: Logger(label: "test"))
            _ = try await admin.executeForTests(["CREATE DATABASE \(name)"], inTransaction: false)
            await admin.close()
            guard let range = url.range(of: "/webhook_gateway?") else { throw EdgeError("unexpected test URL") }
            return url.replacingCharacters(in: range, with: "/\(name)?")
        }

        static func writeConfig(in directory: URL, consumerURL: String, consumerSettings: String = "") throws -> String {
            let config = """
                {
                  "listen": { "host": "127.0.0.1", "port": 0 },
                  "admin": { "host": "127.0.0.1", "port": 0, "token": "\(adminToken)" },
                  "storage": { "kind": "postgres", "url": "env:DATABASE_URL", "maxConnections": 4 },
                  "sources": [ { "name": "tiktok", "path": "/webhooks/tiktok", "scheme": "tiktok", "secrets": ["\(secret)"] } ],
                  "consumers": [ { "name": "orders", "url": "\(consumerURL)",
                    "signingSecret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"\(consumerSettings) } ]
                }
                """
            let path = directory.appendingPathComponent("config.json").path
            try config.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        static func start(_ count: Int, config: String, directory: URL, database: String, first: Int = 0) throws -> [GatewayProcess] {
            try (first..<(first + count)).map { index in
                try GatewayProcess(config: config, directory: directory, name: "gateway-\(index)", environment: ["DATABASE_URL": database])
            }
        }

        /// A subscription renewal of `order`: every one is a new event (its dedup key is the body's
        /// hash), and all share the order's lane.
        static func renewal(order: String, sequence: Int) -> String {
            #"{"client_key":"k","event":"minis.subscription.renew","create_time":\#(1_764_000_000 + sequence),"user_openid":"u","content":"{\"order_id\":\"\#(order)\",\"n\":\#(sequence)}"}"#
        }

        static func sequence(of body: Data) -> Int? {
            guard let envelope = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
                let content = (envelope["content"] as? String).flatMap({ $0.data(using: .utf8) }),
                let inner = try? JSONSerialization.jsonObject(with: content) as? [String: Any]
            else { return nil }
            return inner["n"] as? Int
        }

        /// Signed traffic spread over three gateways; one event sent to two gateways at the same
        /// instant; the events of one order sent through different gateways in turn. Every event
        /// is stored once and delivered once, the duplicate's answers carry one id, the order's
        /// events arrive in order, and the queue is empty on every gateway afterwards.
        @Test func threeGatewaysBehaveAsOne() async throws {
            let directory = try DeliveryProcessTests.temporaryDirectory("several")
            defer { try? FileManager.default.removeItem(at: directory) }
            let consumer = try await ScriptedConsumer.start { _ in .status(200) }
            let database = try await Self.freshDatabase()
            let config = try Self.writeConfig(in: directory, consumerURL: consumer.url)
            let gateways = try Self.start(3, config: config, directory: directory, database: database)

            var accepted = Set<String>()
            for index in 0..<30 {
                let reply = try await GatewayProcess.send(
                    orderID: "spread-\(index)", secret: Self.secret, port: gateways[index % 3].ingressPort)
                #expect(reply.status == 200)
                accepted.insert(try #require(reply.json["id"]))
            }
            // The same signed request at two gateways at once: one event, one id in both answers.
            for round in 0..<5 {
                let body = Self.renewal(order: "same-\(round)", sequence: round)
                async let first = GatewayProcess.send(body: body, secret: Self.secret, port: gateways[0].ingressPort)
                async let second = GatewayProcess.send(body: body, secret: Self.secret, port: gateways[1].ingressPort)
                let replies = try await [first, second]
                #expect(replies.map(\.status) == [200, 200])
                #expect(replies[0].json["id"] != nil && replies[0].json["id"] == replies[1].json["id"])
                accepted.insert(try #require(replies[0].json["id"]))
            }
            // One order, its events through the three gateways in turn.
            for sequence in 0..<9 {
                let reply = try await GatewayProcess.send(
                    body: Self.renewal(order: "lane", sequence: 100 + sequence), secret: Self.secret,
                    port: gateways[sequence % 3].ingressPort)
                #expect(reply.status == 200)
                accepted.insert(try #require(reply.json["id"]))
            }
            #expect(accepted.count == 44)
            let all = accepted
            #expect(await consumer.wait { Set($0.map(\.webhookID)).isSuperset(of: all) })
            var receipts: [String: Int] = [:]
            for request in consumer.received { receipts[request.webhookID, default: 0] += 1 }
            #expect(receipts.values.allSatisfy { $0 == 1 }, "an event was delivered twice: \(receipts.filter { $0.value > 1 })")
            let lane = consumer.received.compactMap { Self.sequence(of: $0.body) }.filter { $0 >= 100 }
            #expect(lane == Array(100..<109))
            // queue_depth is the shared queue: every gateway sees it empty.
            for gateway in gateways { #expect(try await DeliveryProcessTests.waitForEmptyQueue(gateway, token: Self.adminToken)) }
            for gateway in gateways { gateway.kill(SIGTERM) }
            for gateway in gateways { #expect(await gateway.waitForExit(timeout: 10) == 0) }
            await consumer.stop()
        }

        /// `kill -9` of the gateway holding deliveries: the other gateways deliver them once the
        /// lease runs out (`timeout` plus 15 s); nothing acknowledged is lost.
        @Test func deliveriesOfAKilledGatewayAreTakenOverByTheOthers() async throws {
            let directory = try DeliveryProcessTests.temporaryDirectory("takeover")
            defer { try? FileManager.default.removeItem(at: directory) }
            let gate = Gate()
            let consumer = try await ScriptedConsumer.start { _ in
                await gate.wait()
                return .status(200)
            }
            let database = try await Self.freshDatabase()
            let config = try Self.writeConfig(
                in: directory, consumerURL: consumer.url, consumerSettings: #", "concurrency": 4, "timeout": "3s""#)
            let holder = try Self.start(1, config: config, directory: directory, database: database)[0]
            var accepted = Set<String>()
            for index in 0..<12 {
                let reply = try await GatewayProcess.send(orderID: "takeover-\(index)", secret: Self.secret, port: holder.ingressPort)
                #expect(reply.status == 200)
                accepted.insert(try #require(reply.json["id"]))
            }
            // Four deliveries are in flight from the holder; it dies with their leases.
            #expect(await consumer.wait { $0.count >= 4 })
            holder.kill(SIGKILL)
            #expect(await holder.waitForExit(timeout: 10) != nil)
            let killedAt = ContinuousClock.now
            let held = Set(consumer.received.map(\.webhookID))
            gate.open()
            let others = try Self.start(2, config: config, directory: directory, database: database, first: 1)
            let all = accepted
            #expect(await consumer.wait(timeout: .seconds(60)) { Set($0.map(\.webhookID)).isSuperset(of: all) })
            #expect(
                await consumer.wait(timeout: .seconds(60)) { received in
                    held.allSatisfy { id in received.filter { $0.webhookID == id }.count >= 2 }
                })
            // The held ones were sent again, and only after their lease ran out (3 s + 15 s from
            // the claim, just before the first receipt).
            for id in held {
                let times = consumer.received.filter { $0.webhookID == id }.map(\.at).sorted()
                #expect(times.count >= 2)
                if times.count >= 2 { #expect(times[1].timeIntervalSince(times[0]) >= 14, "taken over before the lease ran out") }
            }
            _ = killedAt
            for gateway in others { #expect(try await DeliveryProcessTests.waitForEmptyQueue(gateway, token: Self.adminToken)) }
            var receipts: [String: Int] = [:]
            for request in consumer.received { receipts[request.webhookID, default: 0] += 1 }
            #expect(Set(receipts.filter { $0.value > 1 }.keys).isSubset(of: held))
            for gateway in others { gateway.kill(SIGTERM) }
            for gateway in others { #expect(await gateway.waitForExit(timeout: 10) == 0) }
            await consumer.stop()
        }

        /// A dead letter made by one gateway is listed by another and replayed through a third's
        /// admin API, then delivered (by any of them) with its original id.
        @Test func deadLettersAreSharedAndReplayedThroughAnyGateway() async throws {
            let directory = try DeliveryProcessTests.temporaryDirectory("shared-dead")
            defer { try? FileManager.default.removeItem(at: directory) }
            let refusing = Mutex(true)
            let consumer = try await ScriptedConsumer.start { _ in refusing.withLock { $0 } ? .status(400) : .status(200) }
            let database = try await Self.freshDatabase()
            let config = try Self.writeConfig(in: directory, consumerURL: consumer.url)
            let gateways = try Self.start(3, config: config, directory: directory, database: database)
            let reply = try await GatewayProcess.send(orderID: "refused", secret: Self.secret, port: gateways[0].ingressPort)
            let id = try #require(reply.json["id"])
            #expect(await consumer.wait { $0.contains { $0.webhookID == id } })
            // Listed by another gateway once it is a row.
            let listed = try await Self.poll {
                let page = try await gateways[1].admin("/admin/dead-letters?consumer=orders", token: Self.adminToken)
                return page.text.contains(id) ? page.text : nil
            }
            #expect(listed?.contains(#""reason""#) == true)
            refusing.withLock { $0 = false }
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(gateways[2].adminPort)/admin/dead-letters/replay")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(Self.adminToken)")
            request.body = .bytes(ByteBuffer(string: #"{"consumer":"orders"}"#))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            let text = String(buffer: try await response.body.collect(upTo: 1 << 16))
            #expect(response.status.code == 200)
            #expect(text.contains(#""replayed":1"#))
            #expect(await consumer.wait { $0.filter { $0.webhookID == id }.count == 2 })
            // The CLI exports the shared rows in the dead-letter line format.
            let export = try await DeliveryProcessTests.runCLI(
                ["dead-letters", "export", "--config", config, "--consumer", "orders"], environment: ["DATABASE_URL": database])
            #expect(export.status == 0, "\(export.errors)")
            let lines = export.output.split(separator: "\n")
            #expect(lines.count == 1)
            let line = try #require(lines.first.flatMap { DeadLetter.read(line: Array($0.utf8)) })
            #expect(line.eventID == id)
            #expect(line.consumer == "orders")
            #expect(line.attempts.map(\.status) == [400])
            for gateway in gateways { gateway.kill(SIGTERM) }
            for gateway in gateways { #expect(await gateway.waitForExit(timeout: 10) == 0) }
            await consumer.stop()
        }

        /// A consumer that keeps failing is paused for all three gateways, and gets one probe at a
        /// time across them (not one per gateway); when it recovers, every gateway resumes.
        @Test func aPausedConsumerGetsOneProbeAtATimeAcrossGateways() async throws {
            let directory = try DeliveryProcessTests.temporaryDirectory("shared-pause")
            defer { try? FileManager.default.removeItem(at: directory) }
            struct Watch {
                var refusing = true
                var measuring = false
                var inFlight = 0
                var maxInFlight = 0
                var probes = 0
            }
            let watch = Mutex(Watch())
            let consumer = try await ScriptedConsumer.start { _ in
                let refusing = watch.withLock { watch in
                    watch.inFlight += 1
                    if watch.measuring {
                        watch.maxInFlight = max(watch.maxInFlight, watch.inFlight)
                        watch.probes += 1
                    }
                    return watch.refusing
                }
                try? await Task.sleep(for: .milliseconds(300))
                watch.withLock { $0.inFlight -= 1 }
                return .status(refusing ? 503 : 200)
            }
            let database = try await Self.freshDatabase()
            let config = try Self.writeConfig(
                in: directory, consumerURL: consumer.url,
                consumerSettings: #", "retry": { "maxAttempts": 100, "initialDelay": "200ms", "maxDelay": "400ms" }"#)
            let gateways = try Self.start(3, config: config, directory: directory, database: database)
            var accepted = Set<String>()
            for index in 0..<30 {
                let reply = try await GatewayProcess.send(
                    orderID: "pause-\(index)", secret: Self.secret, port: gateways[index % 3].ingressPort)
                accepted.insert(try #require(reply.json["id"]))
            }
            // Every gateway reports the consumer paused (the ones that did not see five failures
            // themselves follow the shared pause).
            for gateway in gateways {
                let paused = try await Self.poll(timeout: .seconds(30)) { () -> Bool? in
                    let metrics = try await gateway.admin("/metrics", token: Self.adminToken)
                    return metrics.text.contains(#"webhook_gateway_consumer_paused{consumer="orders"} 1"#) ? true : nil
                }
                #expect(paused == true)
            }
            // Attempts still out from before the pause finish within their 300 ms; then, for four
            // seconds, only probes: never two at once, though three gateways probe.
            try await Task.sleep(for: .seconds(1))
            watch.withLock { $0.measuring = true }
            try await Task.sleep(for: .seconds(4))
            let measured = watch.withLock { watch in
                watch.measuring = false
                return watch
            }
            #expect(measured.maxInFlight == 1)
            #expect(measured.probes >= 3)
            // Recovered: one probe succeeds and every gateway delivers again.
            watch.withLock { $0.refusing = false }
            let all = accepted
            #expect(
                await consumer.wait(timeout: .seconds(60)) { received in
                    let delivered = Set(received.map(\.webhookID))
                    return delivered.isSuperset(of: all)
                })
            for gateway in gateways {
                let resumed = try await Self.poll(timeout: .seconds(30)) { () -> Bool? in
                    let metrics = try await gateway.admin("/metrics", token: Self.adminToken)
                    return metrics.text.contains(#"webhook_gateway_consumer_paused{consumer="orders"} 0"#) ? true : nil
                }
                #expect(resumed == true)
                #expect(try await DeliveryProcessTests.waitForEmptyQueue(gateway, token: Self.adminToken))
            }
            for gateway in gateways { gateway.kill(SIGTERM) }
            for gateway in gateways { #expect(await gateway.waitForExit(timeout: 10) == 0) }
            await consumer.stop()
        }

        /// PostgreSQL stopped under two running gateways: each answers 503 to webhooks and on
        /// `/readyz` (within the store's 5 s deadline, never hanging), and both recover without a
        /// restart once it is back. Every event acknowledged before, and after, is delivered.
        @Test func aStoppedDatabaseGives503AndTheGatewaysRecover() async throws {
            let directory = try DeliveryProcessTests.temporaryDirectory("db-trouble")
            defer { try? FileManager.default.removeItem(at: directory) }
            // A cluster of its own: stopping the shared one would fail the other tests.
            let script = Edge.packageRoot.appendingPathComponent("scripts/postgres-test-cluster.sh").path
            var environment = ProcessInfo.processInfo.environment
            environment["TMPDIR"] = directory.path
            let started = try await Edge.run("/bin/bash", [script, "start"], environment: environment)
            #expect(started.status == 0, "\(started.stderr)")
            defer {
                // Its own TMPDIR: the stop must never reach the shared cluster.
                let stop = Process()
                stop.executableURL = URL(fileURLWithPath: "/bin/bash")
                stop.arguments = [script, "stop"]
                stop.environment = environment
                try? stop.run()
                stop.waitUntilExit()
            }
            let url = try #require(
                started.stdout.split(separator: "\n").first { $0.contains("TEST_POSTGRES_URL=") }
                    .flatMap { $0.split(separator: "'").dropFirst().first.map(String.init) })

            let consumer = try await ScriptedConsumer.start { _ in .status(200) }
            let config = try Self.writeConfig(in: directory, consumerURL: consumer.url)
            let gateways = try Self.start(2, config: config, directory: directory, database: url)
            var accepted = Set<String>()
            for index in 0..<6 {
                let reply = try await GatewayProcess.send(
                    orderID: "before-\(index)", secret: Self.secret, port: gateways[index % 2].ingressPort)
                #expect(reply.status == 200)
                accepted.insert(try #require(reply.json["id"]))
            }

            let halted = try await Edge.run("/bin/bash", [script, "halt"], environment: environment)
            #expect(halted.status == 0, "\(halted.stderr)")
            for gateway in gateways {
                let refused = try await GatewayProcess.send(
                    orderID: "during", secret: Self.secret, port: gateway.ingressPort, timeout: .seconds(15))
                #expect(refused.status == 503)
                let notReady = try await Self.poll { () -> Int? in
                    let status = try await gateway.admin("/readyz").status
                    return status == 503 ? status : nil
                }
                #expect(notReady == 503)
            }

            let resumed = try await Edge.run("/bin/bash", [script, "resume"], environment: environment)
            #expect(resumed.status == 0, "\(resumed.stderr)")
            for (index, gateway) in gateways.enumerated() {
                let ready = try await Self.poll(timeout: .seconds(60)) { () -> Int? in
                    let status = try await gateway.admin("/readyz").status
                    return status == 200 ? status : nil
                }
                #expect(ready == 200)
                let reply = try await Self.poll(timeout: .seconds(30)) { () -> [String: String]? in
                    let reply = try await GatewayProcess.send(
                        orderID: "after-\(index)", secret: Self.secret, port: gateway.ingressPort, timeout: .seconds(15))
                    return reply.status == 200 ? reply.json : nil
                }
                accepted.insert(try #require(reply?["id"]))
            }
            let all = accepted
            #expect(await consumer.wait(timeout: .seconds(60)) { Set($0.map(\.webhookID)).isSuperset(of: all) })
            for gateway in gateways { gateway.kill(SIGTERM) }
            for gateway in gateways { #expect(await gateway.waitForExit(timeout: 15) == 0) }
            await consumer.stop()
        }

        static func poll<T>(timeout: Duration = .seconds(20), _ check: () async throws -> T?) async throws -> T? {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if let value = try await check() { return value }
                try await Task.sleep(for: .milliseconds(100))
            }
            return nil
        }
    }
}
