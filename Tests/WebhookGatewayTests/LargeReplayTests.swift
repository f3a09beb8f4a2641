import Delivery
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing

@testable import WebhookGateway

extension BinaryTests {
    /// Timing under a large replay, run with the process suites one at a time (they are the load
    /// that would otherwise pile up beside it on a 2-core machine and make the timing meaningless).
    struct LargeReplayTests {
        /// A replay of everything holds the SQLite writer a chunk at a time: ingest (group commit on
        /// the same writer) keeps answering while 100,000 dead letters are queued again.
        @Test(.timeLimit(.minutes(2)))
        func ingestAnswersWhileAHundredThousandDeadLettersAreReplayed() async throws {
            let setup = try await DeadLetterAdminTests.Setup(count: 0)
            let count = 100_000
            try DeadLetterAdminTests.writeLines(count: count, to: setup.writer.path(consumer: "orders"))
            let finished = Locked(false)
            try await setup.fixture.makeApplication().test(.live) { ingress in
                try await setup.application().test(.router) { admin in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            let answer = try await DeadLetterAdminTests.replay(admin, #"{"consumer":"orders"}"#)
                            #expect(answer["replayed"] as? Int == count)
                            finished.withLock { $0 = true }
                        }
                        // Signed events one after another until the replay is done; each must be
                        // answered within a second, also those sent while chunks are being written.
                        var slowest = Duration.zero
                        var answeredDuringReplay = 0
                        var index = 0
                        while !finished.withLock { $0 } {
                            let replayStarted = !setup.replayedConsumers.withLock { $0.isEmpty }
                            let event = GatewayFixture.tiktokEvent(orderID: "during-replay-\(index)")
                            index += 1
                            let started = ContinuousClock.now
                            try await ingress.execute(
                                uri: "/webhooks/tiktok", method: .post, headers: [.init("TikTok-Signature")!: event.signature],
                                body: ByteBuffer(string: event.body)
                            ) { response in
                                #expect(response.status == .ok)
                            }
                            let took = ContinuousClock.now - started
                            slowest = max(slowest, took)
                            if replayStarted && !finished.withLock { $0 } { answeredDuringReplay += 1 }
                        }
                        try await group.waitForAll()
                        #expect(slowest < .seconds(1), "slowest answer \(slowest)")
                        #expect(answeredDuringReplay >= 3, "only \(answeredDuringReplay) events were answered while chunks were written")
                        #expect(try await setup.fixture.store.depth(consumer: "orders") == count + index)
                    }
                }
            }
        }
    }
}
