import Delivery
import Foundation
import GatewayTestSupport
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import Verification

/// Records what the dispatcher reports.
final class RecordingObserver: DispatchObserver {
    struct Counts: Sendable {
        var delivered = 0
        var retried = 0
        var pauses: [Bool] = []
    }

    let counts = Mutex(Counts())

    func delivered(consumer: String, latency: Duration) { counts.withLock { $0.delivered += 1 } }
    func retried(consumer: String) { counts.withLock { $0.retried += 1 } }
    func pauseChanged(consumer: String, paused: Bool) { counts.withLock { $0.pauses.append(paused) } }

    var snapshot: Counts { counts.withLock { $0 } }
}

/// A store, a scripted consumer, a dispatcher and a dead-letter writer, run in a service group.
final class DispatchHarness: Sendable {
    static let signingSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    static let tiktokSecret = "tiktok-client-secret-never-in-files"

    let directory: URL
    let store: SQLiteStore
    let consumer: ScriptedConsumer
    let observer = RecordingObserver()
    let writer: DeadLetterWriter
    let endpoint: ConsumerEndpoint
    let logger = Logger(label: "test")
    let running = Mutex<(group: ServiceGroup, task: Task<Void, any Error>)?>(nil)
    let dispatcherBox = Mutex<Dispatcher?>(nil)

    init(
        directory: URL? = nil,
        retry: RetryPolicy = RetryPolicy(maxAttempts: 5, initialDelay: .milliseconds(10), maxDelay: .milliseconds(40)),
        timeout: Duration = .seconds(5),
        concurrency: Int = 4,
        pauseAfterFailures: Int = 1_000,
        url: String? = nil,
        consumer: ScriptedConsumer
    ) throws {
        let directory =
            directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("wg-dispatch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.directory = directory
        self.consumer = consumer
        store = try SQLiteStore(configuration: .init(path: directory.appendingPathComponent("g.sqlite").path), logger: logger)
        writer = DeadLetterWriter(directory: directory.appendingPathComponent("dead-letters").path)
        endpoint = ConsumerEndpoint(
            name: "orders",
            url: url ?? consumer.url,
            signer: try StandardWebhooksSigner(secret: Secret(Self.signingSecret)),
            timeout: timeout,
            concurrency: concurrency,
            retry: retry,
            pauseAfterFailures: pauseAfterFailures
        )
    }

    func start() {
        let deadLetters = DeadLetterService(store: store, writer: writer, logger: logger)
        let dispatcher = Dispatcher(
            consumers: [endpoint],
            store: store,
            observer: observer,
            logger: logger,
            pollInterval: .milliseconds(200),
            connectTimeout: .milliseconds(200),
            onDeadLetterDecided: { deadLetters.wake() }
        )
        let group = ServiceGroup(services: [deadLetters, dispatcher], logger: logger)
        let task = Task { try await group.run() }
        dispatcherBox.withLock { $0 = dispatcher }
        running.withLock { $0 = (group, task) }
    }

    /// Stops gracefully: in-flight deliveries finish and their outcomes are stored.
    func stop() async throws {
        guard let (group, task) = running.withLock({ $0 }) else { return }
        await group.triggerGracefulShutdown()
        try await task.value
        running.withLock { $0 = nil }
    }

    var dispatcher: Dispatcher? { dispatcherBox.withLock { $0 } }

    /// Stores a signed TikTok order event for `order` and wakes the dispatcher.
    @discardableResult
    func ingest(
        order: String, event: String = "minis.trade_order.redeem.success", key: String? = nil, source: String = "tiktok",
        sandbox: Bool = false
    ) async throws -> IncomingEvent {
        let body = #"{"event":"\#(event)","content":"{\"order_id\":\"\#(order)\"}","n":"\#(UUID().uuidString)"}"#
        let now = Date()
        let incoming = IncomingEvent(
            id: EventID.make(milliseconds: now.milliseconds),
            source: source,
            eventType: event,
            dedupKey: DedupKey(rawValue: key ?? "tiktok:\(event):\(order):\(UUID().uuidString)"),
            orderID: order,
            receivedAt: now,
            headers: [("tiktok-signature", "t=1,s=\(String(repeating: "ab", count: 32))"), ("content-type", "application/json")],
            body: Data(body.utf8),
            consumers: ["orders"],
            sandbox: sandbox
        )
        #expect(try await store.accept(incoming) == .accepted(eventID: incoming.id))
        dispatcher?.wake(consumers: ["orders"])
        return incoming
    }

    /// Waits until the queue of `orders` is empty and every dead letter is written.
    func waitUntilDrained(timeout: Duration = .seconds(20)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await store.depth(consumer: "orders") == 0 { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    func deadLetterLines() throws -> [[String: Any]] {
        let path = writer.path(consumer: "orders")
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return try data.split(separator: UInt8(ascii: "\n")).map {
            try #require(try JSONSerialization.jsonObject(with: Data($0)) as? [String: Any])
        }
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }
}

@Suite(.timeLimit(.minutes(2)))
struct DispatcherTests {
    @Test func retriesFiveHundredsThenDeliversWithSignedHeaders() async throws {
        let consumer = try await ScriptedConsumer.start { received in
            received.index < 2 ? .status(500) : .status(200)
        }
        let harness = try DispatchHarness(consumer: consumer)
        harness.start()
        let event = try await harness.ingest(order: "42")
        #expect(try await harness.waitUntilDrained())
        try await harness.stop()
        await consumer.stop()

        let received = consumer.received
        #expect(received.count == 3)
        #expect(received.map(\.attempt) == [1, 2, 3])
        let verifier = try StandardWebhooksVerifier(secret: Secret(DispatchHarness.signingSecret))
        for request in received {
            #expect(request.body == event.body)
            #expect(request.webhookID == event.id)
            #expect(request.headers["content-type"] == "application/json")
            #expect(request.headers["webhook-source"] == "tiktok")
            #expect(request.headers["webhook-event-type"] == "minis.trade_order.redeem.success")
            #expect(request.headers["webhook-dedup-key"] == event.dedupKey.rawValue)
            #expect(throws: Never.self) {
                try verifier.verify(body: request.body, headers: request.headers.map { ($0.key, $0.value) }, now: Date())
            }
        }
        // Backoff: each retry waited at least half the scheduled delay (10 ms, then 20 ms).
        #expect(received[1].at.timeIntervalSince(received[0].at) >= 0.005)
        #expect(received[2].at.timeIntervalSince(received[1].at) >= 0.010)
        let counts = harness.observer.snapshot
        #expect(counts.delivered == 1)
        #expect(counts.retried == 2)
        #expect(try harness.deadLetterLines().isEmpty)
    }

    @Test func concurrencyBoundsTheDeliveriesInFlight() async throws {
        let consumer = try await ScriptedConsumer.start { _ in ScriptedConsumer.Reply(status: 200, delay: .milliseconds(30)) }
        let harness = try DispatchHarness(concurrency: 3, consumer: consumer)
        for index in 0..<24 { try await harness.ingest(order: "p\(index)") }
        harness.start()
        #expect(try await harness.waitUntilDrained())
        try await harness.stop()
        await consumer.stop()
        #expect(consumer.received.count == 24)
        #expect(consumer.maxInFlight == 3)
    }

    @Test func retryAfterIsHonoured() async throws {
        let consumer = try await ScriptedConsumer.start { received in
            received.index == 0 ? ScriptedConsumer.Reply(status: 429, headers: ["retry-after": "1"]) : .status(200)
        }
        // Without Retry-After the retry would come after 5 to 10 ms.
        let harness = try DispatchHarness(
            retry: RetryPolicy(maxAttempts: 5, initialDelay: .milliseconds(10), maxDelay: .seconds(30)), consumer: consumer)
        harness.start()
        try await harness.ingest(order: "1")
        #expect(try await harness.waitUntilDrained())
        try await harness.stop()
        await consumer.stop()
        let received = consumer.received
        #expect(received.count == 2)
        #expect(received[1].at.timeIntervalSince(received[0].at) >= 0.95)
    }

    /// A consumer's answer body is read to its end and dropped: a large one does not stop the
    /// delivery, and the connection goes on to carry the next one.
    @Test func aLargeAnswerBodyIsReadAndDropped() async throws {
        let consumer = try await ScriptedConsumer.start { _ in ScriptedConsumer.Reply(status: 200, bodyBytes: 32 << 20) }
        // The timeout bounds the whole attempt, body included: 32 MiB through a debug build on a
        // loaded 2-core machine took more than the default 5 s once (a retry, 3 requests).
        let harness = try DispatchHarness(timeout: .seconds(60), concurrency: 1, consumer: consumer)
        harness.start()
        try await harness.ingest(order: "1")
        try await harness.ingest(order: "2")
        #expect(try await harness.waitUntilDrained())
        try await harness.stop()
        await consumer.stop()
        #expect(consumer.received.count == 2)
        #expect(try harness.deadLetterLines().isEmpty)
    }

    /// A status, once received, is the consumer's answer even if the body then breaks off: a 200
    /// is delivered, a 400 refused, neither retried.
    @Test(arguments: [(200, 0), (400, 1)])
    func aStatusStandsWhenTheAnswerBodyBreaksOff(status: Int, deadLetters: Int) async throws {
        let consumer = try await ScriptedConsumer.start { _ in
            ScriptedConsumer.Reply(status: status, bodyBytes: 100 << 10, breaksBody: true)
        }
        let harness = try DispatchHarness(
            retry: RetryPolicy(maxAttempts: 5, initialDelay: .milliseconds(10), maxDelay: .seconds(1)), consumer: consumer)
        harness.start()
        try await harness.ingest(order: "1")
        #expect(try await harness.waitUntilDrained())
        try await harness.stop()
        await consumer.stop()
        #expect(consumer.received.count == 1)
        let lines = try harness.deadLetterLines()
        #expect(lines.count == deadLetters)
        if deadLetters == 1 {
            #expect(lines.first?["reason"] as? String == "not retryable: status 400")
        }
    }

    @Test func aPermanentRefusalIsDeadLetteredAtOnce() async throws {
        let consumer = try await ScriptedConsumer.start { _ in .status(400) }
        let harness = try DispatchHarness(consumer: consumer)
        harness.start()
        let event = try await harness.ingest(order: "7")
        #expect(try await harness.waitUntilDrained())
        try await harness.stop()
        await consumer.stop()
        #expect(consumer.received.count == 1)
        let lines = try harness.deadLetterLines()
        #expect(lines.count == 1)
        #expect(lines.first?["reason"] as? String == "not retryable: status 400")
        #expect(lines.first?["eventId"] as? String == event.id)
        let attempts = try #require(lines.first?["attempts"] as? [[String: Any]])
        #expect(attempts.map { $0["status"] as? Int } == [400])
    }

    @Test func timeoutsAreRetriedThenDeadLettered() async throws {
        let gate = Gate()
        let consumer = try await ScriptedConsumer.start { _ in
            await gate.wait()
            return .status(200)
        }
        let harness = try DispatchHarness(
            retry: RetryPolicy(maxAttempts: 2, initialDelay: .milliseconds(10), maxDelay: .milliseconds(20)),
            timeout: .milliseconds(300),
            consumer: consumer
        )
        harness.start()
        try await harness.ingest(order: "slow")
        #expect(try await harness.waitUntilDrained())
        try await harness.stop()
        gate.open()
        await consumer.stop()
        let lines = try harness.deadLetterLines()
        #expect(lines.count == 1)
        #expect(lines.first?["reason"] as? String == "max attempts")
        let attempts = try #require(lines.first?["attempts"] as? [[String: Any]])
        #expect(attempts.count == 2)
        for attempt in attempts {
            #expect(attempt["status"] is NSNull)
            #expect(attempt["error"] as? String == "timeout")
        }
    }

    @Test func connectionRefusedIsRetriedThenDeadLettered() async throws {
        let consumer = try await ScriptedConsumer.start()
        // Port 1 on loopback: nothing listens there.
        let harness = try DispatchHarness(
            retry: RetryPolicy(maxAttempts: 3, initialDelay: .milliseconds(10), maxDelay: .milliseconds(20)),
            url: "http://127.0.0.1:1/hook",
            consumer: consumer
        )
        // (Connection errors take up to the connect timeout: the client's pool retries connecting
        // until then. The harness sets it to 200 ms.)
        harness.start()
        try await harness.ingest(order: "nobody")
        #expect(try await harness.waitUntilDrained())
        try await harness.stop()
        await consumer.stop()
        let lines = try harness.deadLetterLines()
        let attempts = try #require(lines.first?["attempts"] as? [[String: Any]])
        #expect(attempts.count == 3)
        #expect(attempts.allSatisfy { $0["status"] is NSNull && $0["error"] as? String == "connection refused" })
    }

    @Test func eventsOfAnOrderArriveInOrderAndADeadLetterDoesNotBlockIt() async throws {
        // a1 fails twice then is refused for good (400); a2 and a3 must wait for it, and b1 must not.
        let scripted = try await ScriptedConsumer.start { received in
            let body = String(decoding: received.body, as: UTF8.self)
            if body.contains("a1-marker") {
                return .status(received.attempt < 3 ? 500 : 400)
            }
            return .status(200)
        }
        let harness = try DispatchHarness(concurrency: 8, consumer: scripted)
        harness.start()
        let a1 = try await harness.ingest(order: "A", event: "minis.trade_order.a1-marker")
        let a2 = try await harness.ingest(order: "A")
        let b1 = try await harness.ingest(order: "B")
        let a3 = try await harness.ingest(order: "A")
        #expect(try await harness.waitUntilDrained())
        try await harness.stop()
        await scripted.stop()

        let received = scripted.received
        let order = received.map(\.webhookID)
        // a1 three times (500, 500, 400), then a2, then a3; b1 anywhere, but not held back by a1.
        let aOnly = order.filter { $0 != b1.id }
        #expect(aOnly == [a1.id, a1.id, a1.id, a2.id, a3.id])
        let b1Index = try #require(order.firstIndex(of: b1.id))
        let lastA1 = try #require(order.lastIndex(of: a1.id))
        #expect(b1Index < lastA1, "b1 waited for another order's retries")
        #expect(try harness.deadLetterLines().map { $0["eventId"] as? String } == [a1.id])
    }

    @Test func replacingAConsumersSettingsMovesItsQueueToTheNewOnes() async throws {
        let old = try await ScriptedConsumer.start { _ in .status(503) }
        let new = try await ScriptedConsumer.start()
        let harness = try DispatchHarness(
            retry: RetryPolicy(maxAttempts: 1_000, initialDelay: .milliseconds(20), maxDelay: .milliseconds(40)),
            consumer: old
        )
        harness.start()
        var ids: Set<String> = []
        for index in 0..<10 { ids.insert(try await harness.ingest(order: "m\(index)").id) }
        #expect(await old.wait { $0.count >= 3 })
        var moved = harness.endpoint
        moved.url = new.url
        await harness.dispatcher?.replace(endpoints: [moved])
        #expect(try await harness.waitUntilDrained(timeout: .seconds(60)))
        try await harness.stop()
        await old.stop()
        await new.stop()
        // Every queued delivery reached the new address, with its original webhook-id; the old
        // worker sent nothing new after it finished what it had in flight.
        #expect(Set(new.received.map(\.webhookID)) == ids)
        #expect(harness.observer.snapshot.delivered == 10)
    }

    @Test func aDownConsumerIsPausedAndProbedThenResumes() async throws {
        let up = Atomic<Bool>(false)
        let consumer = try await ScriptedConsumer.start { _ in
            up.load(ordering: .relaxed) ? .status(200) : .status(503)
        }
        let harness = try DispatchHarness(
            retry: RetryPolicy(maxAttempts: 1_000, initialDelay: .milliseconds(20), maxDelay: .milliseconds(50)),
            concurrency: 4,
            pauseAfterFailures: 3,
            consumer: consumer
        )
        for index in 0..<20 { try await harness.ingest(order: "o\(index)") }
        harness.start()
        // Paused after the first failures; then only probes go out, one at a time. (Each probe
        // is a new connection and a stored outcome: on a loaded machine they can be slow, hence
        // the long limit; it is waited on by condition, not slept.)
        #expect(await consumer.wait(timeout: .seconds(90)) { $0.count >= 15 })
        #expect(harness.dispatcher?.isPaused(consumer: "orders") == true)
        let duringPause = consumer.received
        // Before the pause: the first 4 (the concurrency) and one refill after each of the first 2
        // failures. After it, only probes, one at a time, each taking the delivery whose next
        // attempt is earliest: they go round the queue instead of retrying one delivery.
        #expect(duringPause.count >= 15)
        let probes = duringPause.dropFirst(6)
        #expect(Set(probes.map(\.webhookID)).count >= 2, "probes all went to one delivery")
        for (earlier, later) in zip(probes, probes.dropFirst()) {
            #expect(later.at >= earlier.at, "probes overlapped")
        }

        up.store(true, ordering: .relaxed)
        #expect(try await harness.waitUntilDrained())
        #expect(harness.dispatcher?.isPaused(consumer: "orders") == false)
        try await harness.stop()
        await consumer.stop()
        #expect(Set(consumer.received.filter { $0.index >= duringPause.count }.map(\.webhookID)).count >= 16)
        #expect(harness.observer.snapshot.pauses == [true, false])
        #expect(harness.observer.snapshot.delivered == 20)
    }

    @Test func aConsumerThatRefusedConnectionsIsResumedSoonAfterItIsBack() async throws {
        // Take a free port, then stop listening on it: connections are refused.
        let first = try await ScriptedConsumer.start()
        let port = first.port
        await first.stop()
        let placeholder = try await ScriptedConsumer.start()
        let harness = try DispatchHarness(
            retry: RetryPolicy(maxAttempts: 1_000, initialDelay: .milliseconds(50), maxDelay: .milliseconds(200)),
            concurrency: 4,
            pauseAfterFailures: 8,
            url: "http://127.0.0.1:\(port)/hook",
            consumer: placeholder
        )
        for index in 0..<10 { try await harness.ingest(order: "r\(index)") }
        harness.start()
        // Down long enough for the connection pool to back off reconnecting for seconds.
        let deadline = ContinuousClock.now + .seconds(30)
        while harness.observer.snapshot.retried < 16 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(harness.dispatcher?.isPaused(consumer: "orders") == true)
        let back = try await ScriptedConsumer.start(port: port)
        let cameBack = ContinuousClock.now
        // The probe connects afresh (not through the pool that is backing off), so the queue
        // resumes within a probe interval or two.
        #expect(try await harness.waitUntilDrained(timeout: .seconds(20)))
        let resumedAfter = ContinuousClock.now - cameBack
        #expect(resumedAfter < .seconds(2), "resumed \(resumedAfter) after the consumer came back")
        #expect(Set(back.received.map(\.webhookID)).count == 10)
        try await harness.stop()
        await back.stop()
        await placeholder.stop()
    }

    @Test func deliveriesThatCompletedAreNotSentAgainAfterAGracefulRestart() async throws {
        let consumer = try await ScriptedConsumer.start()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wg-restart-\(UUID().uuidString)")
        var ids: [String] = []
        do {
            let harness = try DispatchHarness(directory: directory, concurrency: 8, consumer: consumer)
            harness.start()
            for index in 0..<50 { ids.append(try await harness.ingest(order: "g\(index)").id) }
            #expect(try await harness.waitUntilDrained())
            try await harness.stop()
        }
        #expect(Set(consumer.received.map(\.webhookID)) == Set(ids))
        #expect(consumer.received.count == 50)
        // Restart on the same store: only the new event goes out.
        let restarted = try DispatchHarness(directory: directory, concurrency: 8, consumer: consumer)
        restarted.start()
        let fresh = try await restarted.ingest(order: "new")
        #expect(await consumer.wait { $0.contains { $0.webhookID == fresh.id } })
        #expect(try await restarted.waitUntilDrained())
        try await restarted.stop()
        await consumer.stop()
        #expect(consumer.received.count == 51)
    }

    @Test func leasesLeftByACrashAreSentAgainAtStart() async throws {
        let consumer = try await ScriptedConsumer.start()
        let harness = try DispatchHarness(consumer: consumer)
        let event = try await harness.ingest(order: "c")
        // A process leased it and died before recording the outcome.
        let leased = try await harness.store.claim(
            consumer: "orders", limit: 1, now: Date(), leaseUntil: Date().addingTimeInterval(3_600), asProbe: false)
        #expect(leased.count == 1)
        harness.start()
        #expect(await consumer.wait { $0.contains { $0.webhookID == event.id } })
        #expect(try await harness.waitUntilDrained())
        try await harness.stop()
        await consumer.stop()
    }

    @Test func deadLetterFilesHoldExactBodiesAndNoSecrets() async throws {
        let consumer = try await ScriptedConsumer.start { _ in .status(422) }
        let harness = try DispatchHarness(consumer: consumer)
        harness.start()
        var events: [IncomingEvent] = []
        for index in 0..<5 { events.append(try await harness.ingest(order: "f\(index)")) }
        #expect(try await harness.waitUntilDrained())
        try await harness.stop()
        await consumer.stop()

        let text = try String(contentsOfFile: harness.writer.path(consumer: "orders"), encoding: .utf8)
        #expect(!text.contains(DispatchHarness.signingSecret))
        #expect(!text.contains(String(DispatchHarness.signingSecret.dropFirst("whsec_".count))))
        #expect(!text.contains(DispatchHarness.tiktokSecret))
        #expect(!text.contains("webhook-signature"))
        let lines = try harness.deadLetterLines()
        #expect(lines.count == 5)
        let expectedKeys: Set = [
            "id", "eventId", "consumer", "source", "eventType", "dedupKey", "receivedAt", "deadLetteredAt", "reason",
            "attempts", "headers", "body",
        ]
        // Deliveries run concurrently, so lines come in any order.
        #expect(Set(lines.compactMap { $0["eventId"] as? String }) == Set(events.map(\.id)))
        for line in lines {
            let event = try #require(events.first { $0.id == line["eventId"] as? String })
            #expect(Set(line.keys) == expectedKeys)
            #expect(line["eventId"] as? String == event.id)
            #expect((line["body"] as? String).map { Data($0.utf8) } == event.body)
            #expect(line["consumer"] as? String == "orders")
            #expect(line["source"] as? String == "tiktok")
            #expect(line["dedupKey"] as? String == event.dedupKey.rawValue)
            #expect((line["headers"] as? [String: String])?["content-type"] == "application/json")
            for key in ["receivedAt", "deadLetteredAt"] {
                let value = try #require(line[key] as? String)
                #expect(value.hasSuffix("Z"))
                #expect(DeadLetter.parseRFC3339(value) != nil)
            }
            let attempts = try #require(line["attempts"] as? [[String: Any]])
            #expect(attempts.count == 1)
            #expect(attempts.first?["status"] as? Int == 422)
            #expect(attempts.first?["error"] is NSNull)
            #expect(DeadLetter.parseRFC3339(attempts.first?["at"] as? String ?? "") != nil)
        }
    }
}
