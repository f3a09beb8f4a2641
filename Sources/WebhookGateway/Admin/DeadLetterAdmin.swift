import Delivery
import Foundation
import Verification

/// Which dead letters an operator means: by id, event type, dedup key and a time range on
/// `deadLetteredAt` (`since` included, `until` excluded). Empty means all.
struct DeadLetterFilter: Sendable, Equatable {
    var ids: Set<String>?
    var eventType: String?
    var dedupKey: String?
    var since: Date?
    var until: Date?

    func matches(_ deadLetter: DeadLetterIndex.Entry) -> Bool {
        if let ids, !ids.contains(deadLetter.id) { return false }
        if let eventType, deadLetter.eventType != eventType { return false }
        if let dedupKey, deadLetter.dedupKey != dedupKey { return false }
        if let since, deadLetter.deadLetteredAt < since { return false }
        if let until, deadLetter.deadLetteredAt >= until { return false }
        return true
    }
}

/// A dead letter as the admin API lists it: the line's fields, plus whether it was replayed.
struct ListedDeadLetter: Encodable, Sendable {
    var deadLetter: DeadLetter
    var replayedAt: Date?

    enum ExtraKeys: String, CodingKey {
        case replayed, replayedAt
    }

    func encode(to encoder: any Encoder) throws {
        try deadLetter.encode(to: encoder)
        var container = encoder.container(keyedBy: ExtraKeys.self)
        try container.encode(replayedAt != nil, forKey: .replayed)
        try container.encode(replayedAt, forKey: .replayedAt)
    }
}

/// Listing and replaying dead letters, for the admin API.
///
/// The files are the record: they are read on each request, so a line an operator can see with
/// `jq` is exactly what the API lists and replays. Lines of rotated files (`orders.jsonl.1`) are
/// not read; move a line back into the live file to replay it.
struct DeadLetterAdmin: Sendable {
    enum Failure: Error, Equatable {
        case unknownConsumer(String)
        case notReplayable(String)
        case badCursor(String)
    }

    /// Dead letters per write transaction of a replay: ingest shares the SQLite writer (group
    /// commit), so a replay of 100,000 dead letters must let it in between chunks.
    static let replayChunkSize = 500

    struct ReplayOutcome: Sendable {
        var result: ReplayResult
        /// Ids asked for that are not in the file.
        var notFound: [String]
    }

    /// The files, or the shared table with PostgreSQL.
    let archive: any DeadLetterArchive
    let store: any DeliveryQueue
    /// The configured consumers (replayable); `_unparsed` can be listed too.
    let consumers: [String]
    let now: @Sendable () -> Date
    /// Called after dead letters of this consumer were queued again.
    let onReplayed: @Sendable (String) -> Void
    /// Each source's signature scheme, by source name: a replayed line's body is read again as
    /// its scheme's envelope, so that an event stored again keeps its order and sandbox flag.
    var schemes: [String: SignatureScheme] = [:]

    var listable: [String] { consumers + [DeadLetterService.unparsedConsumer] }

    /// The consumer's dead letters that match, newest first; the same id appears once.
    func entries(consumer: String, filter: DeadLetterFilter) async throws -> [DeadLetterIndex.Entry] {
        guard listable.contains(consumer) else { throw Failure.unknownConsumer(consumer) }
        return try await archive.snapshot(consumer: consumer).entries.reversed().filter(filter.matches)
    }

    /// Runs file reading and parsing (indexing 100,000 lines takes seconds in a debug build) on a
    /// dispatch thread, not on one of the few cooperative threads that also serve ingest.
    static func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
        }
    }

    /// Queues the matching dead letters again, oldest first, ``replayChunkSize`` to a transaction.
    /// A replay that fails part-way (the store became unavailable) keeps the chunks committed
    /// before the failure; asking again without `force` queues the rest and skips those.
    func replay(consumer: String, filter: DeadLetterFilter, force: Bool, dryRun: Bool) async throws -> ReplayOutcome {
        guard consumers.contains(consumer) else {
            if consumer == DeadLetterService.unparsedConsumer { throw Failure.notReplayable(consumer) }
            throw Failure.unknownConsumer(consumer)
        }
        // Oldest first, so that a replay keeps the order in which the events were received.
        let selectedEntries = Array(try await entries(consumer: consumer, filter: filter).reversed())
        let found = Set(selectedEntries.map(\.id))
        let notFound = (filter.ids ?? []).filter { !found.contains($0) }.sorted()
        let result: ReplayResult
        if dryRun {
            // Only ids are needed: no line is read.
            let replayedBefore = try await store.replayTimes(consumer: consumer)
            var planned = ReplayResult()
            for entry in selectedEntries {
                if !force && replayedBefore[entry.id] != nil {
                    planned.skipped.append(entry.id)
                } else {
                    planned.replayed.append(entry.id)
                }
            }
            result = planned
        } else {
            // In chunks, each its own transaction, so that the writer is free between them; only
            // one chunk's lines (and bodies) are in memory at a time.
            var replayed = ReplayResult()
            for start in stride(from: 0, to: selectedEntries.count, by: Self.replayChunkSize) {
                let chunk = selectedEntries[start..<min(start + Self.replayChunkSize, selectedEntries.count)]
                let lines = try await archive.load(Array(chunk), consumer: consumer).map(withEnvelope)
                let part = try await store.replay(lines, consumer: consumer, force: force, dryRun: false, now: now())
                replayed.replayed += part.replayed
                replayed.skipped += part.skipped
                // The dispatcher can start on the first chunks while the rest are queued.
                if !part.replayed.isEmpty { onReplayed(consumer) }
            }
            result = replayed
        }
        return ReplayOutcome(result: result, notFound: notFound)
    }

    /// `deadLetter` with its envelope's order id and sandbox flag, read from its body.
    private func withEnvelope(_ deadLetter: DeadLetter) -> DeadLetter {
        guard let scheme = schemes[deadLetter.source], let body = deadLetter.bodyBytes,
            case .envelope(let envelope) = Envelope.parse(
                body: body, source: deadLetter.source, verified: .verifiedOnArrival(scheme: scheme))
        else { return deadLetter }
        var deadLetter = deadLetter
        deadLetter.orderID = envelope.orderID
        deadLetter.sandbox = envelope.isSandbox == true
        return deadLetter
    }
}
