import Delivery
import Foundation
import Logging
import Testing

extension BinaryTests {
    /// Runs the built binary, kills it with SIGKILL in the middle of concurrent signed traffic, and
    /// checks that every request that got a 200 survived: nothing acknowledged is ever lost.
    @Suite(.serialized)
    struct CrashTests {
        static let secret = "crash-test-tiktok-secret"

        @Test func everyAcknowledgedEventSurvivesSIGKILL() async throws {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wg-crash-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let config = try GatewayProcess.writeConfig(in: directory, secret: Self.secret)

            let gateway = try GatewayProcess(config: config, directory: directory, name: "first")
            let acknowledged = Locked<[String: String]>([:])
            let answered = Locked<Int>(0)
            let total = 800
            let killAfter = 200
            await withTaskGroup(of: Void.self) { group in
                for worker in 0..<32 {
                    group.addTask {
                        for index in stride(from: worker, to: total, by: 32) {
                            // Once killed, stop sending: only the requests in flight at the kill remain.
                            if answered.withLock({ $0 >= killAfter }) { break }
                            let orderID = "order-\(index)"
                            guard
                                let reply = try? await GatewayProcess.send(orderID: orderID, secret: Self.secret, port: gateway.ingressPort)
                            else {
                                continue
                            }
                            if reply.status == 200, reply.json["status"] == "accepted", let id = reply.json["id"] {
                                acknowledged.withLock { $0[orderID] = id }
                            }
                            if answered.withLock({
                                $0 += 1
                                return $0
                            }) == killAfter {
                                gateway.kill(SIGKILL)
                            }
                        }
                    }
                }
            }
            #expect(await gateway.waitForExit(timeout: 10) != nil)
            let accepted = acknowledged.withLock { $0 }
            #expect(accepted.count >= killAfter / 2, "the kill should come after many acknowledgements")
            #expect(accepted.count < total, "the kill should come before the traffic ended")

            // Restarted on the same store, every acknowledged event is there: a resend is a duplicate
            // of the very same event id.
            let restarted = try GatewayProcess(config: config, directory: directory, name: "second")
            for (orderID, id) in accepted {
                let reply = try await GatewayProcess.send(orderID: orderID, secret: Self.secret, port: restarted.ingressPort)
                #expect(reply.status == 200)
                #expect(reply.json == ["status": "duplicate", "id": id], "order \(orderID)")
            }

            // The wiring of the running binary: readiness, metrics read from the store, and a signed
            // body that is not an envelope reaching its dead-letter file through the ingest wake-up.
            #expect(try await restarted.admin("/readyz").status == 200)
            #expect(try await restarted.admin("/metrics").status == 401)
            let metrics = try await restarted.admin("/metrics", token: "crash-test-admin-token")
            #expect(metrics.status == 200)
            let depthLine = metrics.text.split(separator: "\n").first { $0.hasPrefix(#"webhook_gateway_queue_depth{consumer="orders"} "#) }
            let depth = depthLine.flatMap { Double($0.split(separator: " ").last ?? "") } ?? -1
            #expect(depth >= Double(accepted.count), "\(depthLine ?? "no queue depth line")")
            #expect(metrics.text.contains(#"webhook_gateway_requests_total{source="tiktok",outcome="duplicate"} \#(accepted.count)"#))

            let garbage = "signed, but not an envelope \(UUID())"
            let reply = try await GatewayProcess.send(body: garbage, secret: Self.secret, port: restarted.ingressPort)
            #expect(reply.status == 200 && reply.json["status"] == "accepted")
            let unparsedFile = directory.appendingPathComponent("dead-letters/_unparsed.jsonl").path
            let deadline = Date().addingTimeInterval(10)
            var written = false
            while !written && Date() < deadline {
                written = (try? String(contentsOfFile: unparsedFile, encoding: .utf8))?.contains(garbage) ?? false
                if !written { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(written, "the unparsed body never reached _unparsed.jsonl")

            // SIGTERM drains and exits 0 well within 10 seconds.
            let start = Date()
            restarted.kill(SIGTERM)
            #expect(await restarted.waitForExit(timeout: 10) == 0)
            #expect(Date().timeIntervalSince(start) < 10)

            // And the store holds each event's exact body with its pending delivery.
            let store = try SQLiteStore(
                configuration: .init(path: directory.appendingPathComponent("gateway.sqlite").path),
                logger: Logger(label: "test")
            )
            for (orderID, id) in accepted {
                let event = try #require(try await store.event(id: id))
                #expect(String(decoding: event.body, as: UTF8.self).contains("\\\"order_id\\\":\\\"\(orderID)\\\""))
            }
            #expect(try await store.depth(consumer: "orders") >= accepted.count)
        }

        @Test func sigtermFinishesInFlightRequestsAndExitsZero() async throws {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wg-drain-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let config = try GatewayProcess.writeConfig(in: directory, secret: Self.secret)
            let gateway = try GatewayProcess(config: config, directory: directory, name: "drain")

            let acknowledged = Locked<[String: String]>([:])
            let statuses = Locked<[Int]>([])
            let answered = Locked<Int>(0)
            await withTaskGroup(of: Void.self) { group in
                for worker in 0..<16 {
                    group.addTask {
                        for index in stride(from: worker, to: 400, by: 16) {
                            if answered.withLock({ $0 >= 100 }) { break }
                            guard
                                let reply = try? await GatewayProcess.send(
                                    orderID: "drain-\(index)", secret: Self.secret, port: gateway.ingressPort)
                            else {
                                continue
                            }
                            statuses.withLock { $0.append(reply.status) }
                            if reply.status == 200, let id = reply.json["id"] {
                                acknowledged.withLock { $0["drain-\(index)"] = id }
                            }
                            if answered.withLock({
                                $0 += 1
                                return $0
                            }) == 100 {
                                gateway.kill(SIGTERM)
                            }
                        }
                    }
                }
            }
            #expect(await gateway.waitForExit(timeout: 10) == 0)
            // Requests answered during the drain were answered properly, never with a 5xx.
            #expect(statuses.withLock { $0.allSatisfy { $0 == 200 } })
            let store = try SQLiteStore(
                configuration: .init(path: directory.appendingPathComponent("gateway.sqlite").path),
                logger: Logger(label: "test")
            )
            for (_, id) in acknowledged.withLock({ $0 }) {
                #expect(try await store.event(id: id) != nil)
            }
        }
    }
}
