import Delivery
import Foundation

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
    }

    struct ReplayOutcome: Sendable {
        var result: ReplayResult
        /// Ids asked for that are not in the file.
        var notFound: [String]
    }

    let index: DeadLetterIndex
    let store: any DeliveryQueue
    /// The configured consumers (replayable); `_unparsed` can be listed too.
    let consumers: [String]
    let now: @Sendable () -> Date
    /// Called after dead letters of this consumer were queued again.
    let onReplayed: @Sendable (String) -> Void

    var listable: [String] { consumers + [DeadLetterService.unparsedConsumer] }

    /// The consumer's dead letters that match, newest first; the same id appears once.
    func entries(consumer: String, filter: DeadLetterFilter) throws(Failure) -> [DeadLetterIndex.Entry] {
        guard listable.contains(consumer) else { throw .unknownConsumer(consumer) }
        return index.entries(consumer: consumer).entries.reversed().filter(filter.matches)
    }

    func list(consumer: String?, filter: DeadLetterFilter, limit: Int?) async throws -> [ListedDeadLetter] {
        var selected: [(consumer: String, entry: DeadLetterIndex.Entry)] = []
        for name in consumer.map({ [$0] }) ?? listable {
            selected += try entries(consumer: name, filter: filter).map { (name, $0) }
        }
        if consumer == nil {
            selected.sort { $0.entry.deadLetteredAt > $1.entry.deadLetteredAt }
        }
        if let limit { selected = Array(selected.prefix(limit)) }
        var listed: [ListedDeadLetter] = []
        for name in Set(selected.map(\.consumer)).sorted() {
            let replayTimes = try await store.replayTimes(consumer: name)
            listed += index.load(selected.filter { $0.consumer == name }.map(\.entry), consumer: name).map {
                ListedDeadLetter(deadLetter: $0, replayedAt: replayTimes[$0.id])
            }
        }
        if consumer == nil {
            listed.sort { $0.deadLetter.deadLetteredAt > $1.deadLetter.deadLetteredAt }
        }
        return listed
    }

    func replay(consumer: String, filter: DeadLetterFilter, force: Bool, dryRun: Bool) async throws -> ReplayOutcome {
        guard consumers.contains(consumer) else {
            if consumer == DeadLetterService.unparsedConsumer { throw Failure.notReplayable(consumer) }
            throw Failure.unknownConsumer(consumer)
        }
        // Oldest first, so that a replay keeps the order in which the events were received.
        let selectedEntries = Array(try entries(consumer: consumer, filter: filter).reversed())
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
            let selected = index.load(selectedEntries, consumer: consumer)
            result = try await store.replay(selected, consumer: consumer, force: force, dryRun: false, now: now())
        }
        if !dryRun && !result.replayed.isEmpty { onReplayed(consumer) }
        return ReplayOutcome(result: result, notFound: notFound)
    }
}
