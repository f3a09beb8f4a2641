public import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// Writes dead letters to their files: `<directory>/<consumer>.jsonl`.
///
/// A delivery becomes a dead letter in two steps. First the decision is stored with the delivery
/// (the dispatcher, after its last attempt; ingest, for a verified body that is not an envelope,
/// under the pseudo-consumer `_unparsed`), including the dead-letter id and the attempts. Then this
/// service appends the line, fsyncs it, and only then takes the delivery out of the queue. A crash
/// between the two steps writes the same line (same `id`) again on restart; readers of the files
/// keep the first line of each id. Nothing is lost either way.
///
/// When the lines are written but taking the deliveries out of the queue fails (the store is
/// down), the service remembers those deliveries and its retries only take them out: the file does
/// not fill with repeats of the same lines while the store is down. (The memory is lost on a
/// restart, so a restart then writes each line once more.)
public struct DeadLetterService: Service {
    /// The pseudo-consumer of verified bodies that are not an envelope.
    public static let unparsedConsumer = "_unparsed"

    let store: any DeliveryQueue
    let archive: any DeadLetterArchive
    let logger: Logger
    let retryInterval: Duration
    let onWritten: @Sendable (_ consumer: String, _ written: [DeadLetter]) -> Void
    private let unmarked = UnmarkedDeliveries()
    private let signal: AsyncStream<Void>
    private let signalContinuation: AsyncStream<Void>.Continuation

    /// Writes to the files of `writer`.
    public init(
        store: any DeliveryQueue,
        writer: DeadLetterWriter,
        logger: Logger,
        retryInterval: Duration = .seconds(5),
        onWritten: @escaping @Sendable (_ consumer: String, _ written: [DeadLetter]) -> Void = { _, _ in }
    ) {
        self.init(
            store: store, archive: FileDeadLetterArchive(writer: writer), logger: logger, retryInterval: retryInterval,
            onWritten: onWritten)
    }

    public init(
        store: any DeliveryQueue,
        archive: any DeadLetterArchive,
        logger: Logger,
        retryInterval: Duration = .seconds(5),
        onWritten: @escaping @Sendable (_ consumer: String, _ written: [DeadLetter]) -> Void = { _, _ in }
    ) {
        self.store = store
        self.archive = archive
        self.logger = logger
        self.retryInterval = retryInterval
        self.onWritten = onWritten
        (signal, signalContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks the service to write what is waiting; cheap, callable from any thread.
    public func wake() {
        signalContinuation.yield()
    }

    public func run() async throws {
        // A retry timer runs only while a write is failing (disk full, directory unwritable).
        let retryInterval = self.retryInterval
        let continuation = signalContinuation
        try await withGracefulShutdownHandler {
            var failing = await drain() == false
            var iterator = signal.makeAsyncIterator()
            while true {
                let retry: Task<Void, Never>? =
                    failing
                    ? Task {
                        try? await Task.sleep(for: retryInterval)
                        continuation.yield()
                    } : nil
                guard await iterator.next() != nil else { return }
                retry?.cancel()
                failing = await drain() == false
            }
        } onGracefulShutdown: {
            continuation.finish()
        }
        // Whatever was decided before the shutdown is written before the service stops.
        _ = await drain()
    }

    /// Writes every waiting dead letter to its file, then takes it out of the queue. Returns
    /// whether everything was written.
    @discardableResult
    public func drain() async -> Bool {
        do {
            while true {
                let waiting = try await store.deadLettersToWrite(limit: 200)
                if waiting.isEmpty { return true }
                let byConsumer = Dictionary(grouping: waiting, by: \.deadLetter.consumer)
                for (consumer, items) in byConsumer.sorted(by: { $0.key < $1.key }) {
                    let unwritten = unmarked.withoutWrittenLines(items)
                    try await archive.append(unwritten.map(\.deadLetter), consumer: consumer)
                    unmarked.insert(unwritten.map(\.deadLetter.id))
                    try await store.markDeadLettered(deliveryIDs: items.map(\.deliveryID))
                    unmarked.remove(items.map(\.deadLetter.id))
                    onWritten(consumer, items.map(\.deadLetter))
                    for item in items {
                        logger.warning(
                            "dead letter written",
                            metadata: [
                                "consumer": "\(consumer)", "event.id": "\(item.deadLetter.eventID)",
                                "deadLetter.id": "\(item.deadLetter.id)", "reason": "\(item.deadLetter.reason)",
                            ]
                        )
                    }
                }
            }
        } catch {
            logger.error(
                "cannot write dead letters; they stay queued and are retried",
                metadata: ["error": "\(error)"]
            )
            return false
        }
    }
}

/// The dead letters whose lines are durably written but whose deliveries are still in the queue,
/// because taking them out failed. At most one batch of ``DeadLetterService/drain()``: a failure
/// ends the drain, and the next one reads the same deliveries first. Kept by dead-letter id (unique
/// for good), not by delivery row id, which a database opened anew would hand out again.
private final class UnmarkedDeliveries: Sendable {
    private let ids = Mutex<Set<String>>([])

    func withoutWrittenLines(_ items: [DeadLetterToWrite]) -> [DeadLetterToWrite] {
        ids.withLock { ids in items.filter { !ids.contains($0.deadLetter.id) } }
    }

    func insert(_ deadLetterIDs: [String]) {
        ids.withLock { $0.formUnion(deadLetterIDs) }
    }

    func remove(_ deadLetterIDs: [String]) {
        ids.withLock { $0.subtract(deadLetterIDs) }
    }
}
