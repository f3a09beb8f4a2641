public import Foundation
public import Logging
public import ServiceLifecycle

/// Moves stored events that are not envelopes into the `_unparsed` dead-letter file.
///
/// The ingest path stores such an event with one delivery to the pseudo-consumer `_unparsed` and
/// calls ``wake()``; this service writes the dead-letter line (fsync'd) and only then takes the
/// delivery out of the queue. It also drains whatever a crash left behind when it starts. A crash
/// between the two steps writes the line again on restart (same `eventId`), never loses it.
public struct UnparsedDeadLetterService: Service {
    public static let consumer = "_unparsed"

    let store: any EventStore & DeliveryQueue
    let writer: DeadLetterWriter
    let logger: Logger
    let now: @Sendable () -> Date
    let onDeadLettered: @Sendable (Int) -> Void
    private let signal: AsyncStream<Void>
    private let signalContinuation: AsyncStream<Void>.Continuation

    public init(
        store: any EventStore & DeliveryQueue,
        writer: DeadLetterWriter,
        logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() },
        onDeadLettered: @escaping @Sendable (_ count: Int) -> Void = { _ in }
    ) {
        self.onDeadLettered = onDeadLettered
        self.store = store
        self.writer = writer
        self.logger = logger
        self.now = now
        (signal, signalContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks the service to drain; cheap, callable from any thread.
    public func wake() {
        signalContinuation.yield()
    }

    public func run() async throws {
        await drain()
        for await _ in signal.cancelOnGracefulShutdown() {
            await drain()
        }
    }

    /// Writes every pending `_unparsed` delivery to the file, then marks it dead-lettered.
    public func drain() async {
        do {
            while true {
                let pending = try await store.pendingDeliveries(consumer: Self.consumer, limit: 100)
                if pending.isEmpty { return }
                var deadLetters: [DeadLetter] = []
                for delivery in pending {
                    guard let event = try await store.event(id: delivery.eventID) else { continue }
                    let at = now()
                    deadLetters.append(
                        DeadLetter(
                            id: EventID.make(milliseconds: at.milliseconds, prefix: "dl_"),
                            eventID: event.id,
                            consumer: Self.consumer,
                            source: event.source,
                            eventType: event.eventType,
                            dedupKey: event.dedupKey,
                            receivedAt: event.receivedAt,
                            deadLetteredAt: at,
                            reason: "not an envelope",
                            attempts: [],
                            headers: event.headers,
                            body: event.body
                        )
                    )
                }
                try writer.append(deadLetters, consumer: Self.consumer)
                try await store.markDeadLettered(deliveryIDs: pending.map(\.id))
                onDeadLettered(deadLetters.count)
                logger.warning("unparsed events dead-lettered", metadata: ["count": "\(deadLetters.count)"])
            }
        } catch {
            logger.error("cannot write unparsed dead letters; will retry on the next event", metadata: ["error": "\(error)"])
        }
    }
}
