import Delivery
import Foundation
import Logging
import Synchronization
import Testing

/// A delivery queue that only holds dead letters waiting for their line, and whose
/// `markDeadLettered` fails a given number of times (the store is down).
final class FlakyMarkQueue: DeliveryQueue {
    struct State {
        var waiting: [DeadLetterToWrite]
        var failuresLeft: Int
        var markCalls = 0
    }

    let state: Mutex<State>

    init(waiting: [DeadLetterToWrite], failures: Int) {
        state = Mutex(State(waiting: waiting, failuresLeft: failures))
    }

    var markCalls: Int { state.withLock { $0.markCalls } }

    func markDeadLettered(deliveryIDs: [Int64]) async throws(StoreError) {
        try state.withLock { state throws(StoreError) in
            state.markCalls += 1
            if state.failuresLeft > 0 {
                state.failuresLeft -= 1
                throw .unavailable("the store is down")
            }
            state.waiting.removeAll { deliveryIDs.contains($0.deliveryID) }
        }
    }

    func deadLettersToWrite(limit: Int) async throws(StoreError) -> [DeadLetterToWrite] {
        state.withLock { Array($0.waiting.prefix(limit)) }
    }

    func depth(consumer: String) async throws(StoreError) -> Int { state.withLock { $0.waiting.count } }
    func claim(consumer: String, limit: Int, now: Date, leaseUntil: Date, asProbe: Bool) async throws(StoreError)
        -> [ClaimedDelivery]
    { [] }
    func finish(_ updates: [DeliveryUpdate]) async throws(StoreError) {}
    func releaseAllLeases() async throws(StoreError) -> Int { 0 }
    func replay(_ deadLetters: [DeadLetter], consumer: String, force: Bool, dryRun: Bool, now: Date) async throws(StoreError)
        -> ReplayResult
    { ReplayResult() }
    func replayTimes(consumer: String) async throws(StoreError) -> [String: Date] { [:] }
}

/// Writing dead-letter lines, then taking their deliveries out of the queue.
struct DeadLetterServiceTests {
    func waiting(_ index: Int, consumer: String) -> DeadLetterToWrite {
        DeadLetterToWrite(
            deliveryID: Int64(index),
            deadLetter: DeadLetter(
                id: "dl_\(index)", eventID: "evt_\(index)", consumer: consumer, source: "tiktok",
                eventType: "minis.trade_order.redeem.success", dedupKey: "tiktok:e:\(index)",
                receivedAt: Date(timeIntervalSince1970: 1_795_514_400), deadLetteredAt: Date(timeIntervalSince1970: 1_795_514_401),
                reason: "max attempts", attempts: [.init(at: Date(timeIntervalSince1970: 1_795_514_400), status: 500, error: nil)],
                headers: [:], body: Data(#"{"n":\#(index)}"#.utf8)))
    }

    @Test func aFailingMarkDoesNotAppendTheLinesAgain() async throws {
        let directory = try TemporaryDirectory()
        let writer = DeadLetterWriter(directory: directory.path("dead-letters"))
        let queue = FlakyMarkQueue(
            waiting: [waiting(1, consumer: "orders"), waiting(2, consumer: "orders"), waiting(3, consumer: "billing")],
            failures: 5)
        let written = Mutex<[String: Int]>([:])
        let service = DeadLetterService(
            store: queue, writer: writer, logger: Logger(label: "test"),
            onWritten: { consumer, items in written.withLock { $0[consumer, default: 0] += items.count } })

        // Each retry (the service's timer, every 5 s) finds the store still down.
        var drains = 0
        while await service.drain() == false {
            drains += 1
            try #require(drains < 20)
        }
        #expect(queue.markCalls > 5)
        #expect(try await queue.depth(consumer: "orders") == 0)

        // The line of each dead letter is in its file once, and counted once.
        func ids(_ consumer: String) throws -> [String] {
            let data = try Data(contentsOf: URL(fileURLWithPath: writer.path(consumer: consumer)))
            return data.split(separator: UInt8(ascii: "\n")).map { DeadLetter.read(line: $0)?.id ?? "unreadable" }
        }
        #expect(try ids("orders") == ["dl_1", "dl_2"])
        #expect(try ids("billing") == ["dl_3"])
        #expect(written.withLock { $0 } == ["orders": 2, "billing": 1])
    }
}
