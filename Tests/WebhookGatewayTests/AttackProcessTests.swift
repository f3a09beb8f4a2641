import Foundation
import Synchronization
import Testing

extension BinaryTests {
    /// Attacks on the running binary's ingress port, each from 127.0.0.2 by `Scripts/attack.py`,
    /// while the test sends valid signed traffic from 127.0.0.1: the attack is contained and every
    /// valid event is still accepted.
    @Suite(.serialized, .timeLimit(.minutes(5)))
    struct AttackProcessTests {
        static let limits = #""limits": { "readTimeout": "1s", "idleTimeout": "5s", "maxConnections": 100 },"#

        /// What the attack reported, and how the valid traffic beside it fared.
        struct Round {
            var attack: [String: Any]
            var accepted: Int
            /// Accepted while the attack was still running.
            var acceptedDuringAttack: Int
            var failures: [String]
        }

        /// Runs attack `kind` against `gateway` and sends valid events until it ends (at least 20;
        /// at most `validLimit`, when given). An event whose connection was closed before any answer
        /// is sent again up to `resends` times, as TikTok resends; with the default 0, a lost
        /// connection is a failure.
        func underAttack(_ kind: String, _ gateway: GatewayProcess, validLimit: Int = .max, resends: Int = 0) async throws -> Round {
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scripts/attack.py").path
            let done = Atomic<Bool>(false)
            async let attack = Task {
                defer { done.store(true, ordering: .relaxed) }
                return try await Edge.run("python3", [script, kind, "\(gateway.ingressPort)"])
            }.value
            var accepted = 0
            var acceptedDuringAttack = 0
            var failures: [String] = []
            var index = 0
            while (!done.load(ordering: .relaxed) || index < 20) && index < validLimit {
                index += 1
                for attempt in 0...resends {
                    do {
                        let reply = try await Edge.send(
                            orderID: "\(kind)-\(index)", url: "http://127.0.0.1:\(gateway.ingressPort)/webhooks/tiktok")
                        if reply.status == 200 {
                            accepted += 1
                            if !done.load(ordering: .relaxed) { acceptedDuringAttack += 1 }
                        } else {
                            failures.append("\(reply.status) \(reply.text)")
                        }
                        break
                    } catch {
                        if attempt == resends { failures.append("\(error)") }
                    }
                }
            }
            let output = try await attack
            let json = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any], "\(output.stderr)")
            // The valid traffic must have run beside the attack, not only after it.
            #expect(acceptedDuringAttack >= 3, "accepted during the \(kind) attack: \(acceptedDuringAttack)")
            return Round(attack: json, accepted: accepted, acceptedDuringAttack: acceptedDuringAttack, failures: failures)
        }

        func startGateway(_ name: String, extra: String = Self.limits) throws -> (GatewayProcess, URL) {
            let directory = try Edge.temporaryDirectory("attack-\(name)")
            let config = try Edge.writeConfig(in: directory, extra: extra)
            return (try GatewayProcess(config: config, directory: directory, name: "gw"), directory)
        }

        @Test func aTricklingClientIsCutOffAfterTheReadTimeout() async throws {
            let (gateway, directory) = try startGateway("slow")
            defer { try? FileManager.default.removeItem(at: directory) }
            let round = try await underAttack("slow-body", gateway)
            let closedAfter = try #require(round.attack["closedAfter"] as? Double, "never cut off: \(round.attack)")
            #expect(closedAfter >= 0.9 && closedAfter < 3, "cut off after \(closedAfter) s")
            #expect(round.failures.isEmpty, "\(round.failures)")
            #expect(round.accepted >= 20)
        }

        @Test func manyIdleConnectionsDoNotLockOutValidTraffic() async throws {
            let (gateway, directory) = try startGateway("idle")
            defer { try? FileManager.default.removeItem(at: directory) }
            // At the limit the connection idle the longest is closed for a newcomer. A valid
            // connection whose request is not read yet is idle too, and while the flood opens a
            // hundred connections faster than that request is read, it is closed like the
            // attacker's: so a valid event may need a second connection, as any sender's would.
            let round = try await underAttack("idle", gateway, resends: 2)
            let opened = try #require(round.attack["opened"] as? Int)
            let closed = try #require(round.attack["closedByServer"] as? Int)
            // At most 100 stay open: the rest were refused or closed to make room.
            #expect(opened - closed <= 100, "\(round.attack)")
            #expect(round.failures.isEmpty, "\(round.failures)")
            #expect(round.accepted >= 20)
        }

        @Test func oversizedHeadersGet431OrAClosedConnection() async throws {
            let (gateway, directory) = try startGateway("headers")
            defer { try? FileManager.default.removeItem(at: directory) }
            let round = try await underAttack("header-flood", gateway)
            let statuses = try #require(round.attack["statuses"] as? [Any])
            #expect(statuses.count == 50)
            for status in statuses {
                #expect(status is NSNull || (status as? Int) == 431, "\(status)")
            }
            #expect(statuses.contains { ($0 as? Int) == 431 })
            #expect(round.failures.isEmpty, "\(round.failures)")
        }

        @Test func tenThousandGarbageRequestsAreRefusedAndValidOnesAccepted() async throws {
            let (gateway, directory) = try startGateway("garbage")
            defer { try? FileManager.default.removeItem(at: directory) }
            let round = try await underAttack("garbage", gateway)
            let statuses = try #require(round.attack["statuses"] as? [String: Int])
            #expect(statuses.values.reduce(0, +) == 10_000)
            #expect(statuses["200"] == nil, "\(statuses)")
            #expect(!statuses.keys.contains { $0.hasPrefix("5") }, "\(statuses)")
            // The unsigned and wrongly signed half: 401 each.
            #expect((statuses["401"] ?? 0) >= 4_900, "\(statuses)")
            #expect(round.failures.isEmpty, "\(round.failures)")
            #expect(round.accepted >= 20)
            let metrics = try await gateway.admin("/metrics", token: Edge.adminToken)
            #expect(metrics.text.contains(#"webhook_gateway_requests_total{source="tiktok",outcome="accepted"} \#(round.accepted)"#))
        }

        /// The gateway's resident memory in MB, sampled every 20 ms while `body` runs: the peak.
        func peakMemory<T>(of gateway: GatewayProcess, during body: () async throws -> T) async throws -> (T, peak: Double) {
            let pid = gateway.process.processIdentifier
            let running = Atomic<Bool>(true)
            @Sendable func sample() async -> Double {
                var peak = 0.0
                while running.load(ordering: .relaxed) {
                    peak = max(peak, Edge.residentMegabytes(pid: pid) ?? 0)
                    try? await Task.sleep(for: .milliseconds(20))
                }
                return max(peak, Edge.residentMegabytes(pid: pid) ?? 0)
            }
            async let peak = sample()
            do {
                let result = try await body()
                running.store(false, ordering: .relaxed)
                return (result, await peak)
            } catch {
                running.store(false, ordering: .relaxed)
                _ = await peak
                throw error
            }
        }

        /// 300 connections each stream a 1 MiB body without a valid signature header: each is
        /// answered 401 before its body is read, so memory stays flat.
        @Test func bigUnsignedBodiesAreRefusedUnread() async throws {
            let (gateway, directory) = try startGateway("big-unsigned", extra: "")
            defer { try? FileManager.default.removeItem(at: directory) }
            let (round, peak) = try await peakMemory(of: gateway) { try await underAttack("big-unsigned", gateway) }
            let after = try #require(Edge.residentMegabytes(pid: gateway.process.processIdentifier))
            let statuses = try #require(round.attack["statuses"] as? [String: Int])
            print("big-unsigned: \(round.attack), peak RSS \(peak) MB, after \(after) MB")
            #expect(statuses == ["401": 300], "\(statuses)")
            // (What the attack sent says little: a connection not yet accepted takes a few MB into
            // the kernel's buffers. The process's own memory is what counts.)
            #expect(peak < 150, "peak RSS \(peak) MB")
            #expect(after < 150, "RSS after the attack \(after) MB")
            #expect(round.failures.isEmpty, "\(round.failures)")
            #expect(round.accepted >= 20)
            let metrics = try await gateway.admin("/metrics", token: Edge.adminToken).text
            #expect(metrics.contains(#"webhook_gateway_requests_total{source="tiktok",outcome="unauthorized"} 300"#))
        }

        /// 300 connections each stream a 1 MiB body with a well-formed but wrong signature: they
        /// pass the early check, so the bodies' memory bound is what holds. Those past it get 503,
        /// the rest their 401 after the body; memory stays bounded and valid events (small bodies,
        /// which keep a share of the bound) are accepted throughout.
        @Test func bigWronglySignedBodiesHitTheMemoryBound() async throws {
            let (gateway, directory) = try startGateway("big-wrong", extra: "")
            defer { try? FileManager.default.removeItem(at: directory) }
            let (round, peak) = try await peakMemory(of: gateway) { try await underAttack("big-wrong-signature", gateway) }
            let after = try #require(Edge.residentMegabytes(pid: gateway.process.processIdentifier))
            let statuses = try #require(round.attack["statuses"] as? [String: Int])
            print("big-wrong-signature: \(round.attack), peak RSS \(peak) MB, after \(after) MB")
            #expect(statuses.values.reduce(0, +) == 300)
            #expect(Set(statuses.keys).isSubset(of: ["401", "503"]), "\(statuses)")
            // At most 28 bodies of 1 MiB (7/8 of 32 MiB) are held at once: with 300 heads sent
            // before any body, some are refused. (How many depends on how many heads the gateway
            // has read when the bodies start, and on how fast admitted bodies finish.)
            #expect((statuses["503"] ?? 0) > 0, "\(statuses)")
            #expect(peak < 150, "peak RSS \(peak) MB")
            #expect(after < 150, "RSS after the attack \(after) MB")
            #expect(round.failures.isEmpty, "\(round.failures)")
            #expect(round.accepted >= 20)
            let metrics = try await gateway.admin("/metrics", token: Edge.adminToken).text
            #expect(metrics.contains(#"webhook_gateway_requests_total{source="tiktok",outcome="unavailable"} \#(statuses["503"] ?? 0)"#))
            #expect(metrics.contains(#"webhook_gateway_requests_total{source="tiktok",outcome="accepted"} \#(round.accepted)"#))
        }

        @Test func aFloodingAddressGets429WhileOthersAreServed() async throws {
            let limits = #""limits": { "rateLimit": { "requestsPerSecond": 20, "burst": 20 } },"#
            let (gateway, directory) = try startGateway("rate", extra: limits)
            defer { try? FileManager.default.removeItem(at: directory) }
            // The valid sender stays within its own budget: 20 requests, the burst.
            let round = try await underAttack("flood", gateway, validLimit: 20)
            let attackStatuses = try #require(round.attack["statuses"] as? [String: Int])
            #expect(attackStatuses.values.reduce(0, +) == 400)
            #expect((attackStatuses["429"] ?? 0) >= 200, "\(attackStatuses)")
            // The requests let through are answered as usual (unsigned: 401).
            #expect((attackStatuses["401"] ?? 0) >= 20, "\(attackStatuses)")
            #expect(round.attack["retryAfter"] as? String == "1")
            #expect(round.failures.isEmpty, "\(round.failures)")
            #expect(round.accepted == 20)
            // Past its own budget the valid sender is limited too: the limit is per address, not per attacker.
            // (100 at once: more than the burst plus what refills while they are answered.)
            let statuses = await withTaskGroup(of: Int.self) { group in
                for index in 0..<100 {
                    group.addTask {
                        (try? await Edge.send(orderID: "over-\(index)", url: "http://127.0.0.1:\(gateway.ingressPort)/webhooks/tiktok")
                            .status)
                            ?? 0
                    }
                }
                return await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.contains(429))
            #expect(Set(statuses).isSubset(of: [200, 429]), "\(statuses)")
        }
    }
}
