import Delivery
import Foundation

/// Listing dead letters a page at a time, newest first (see ``DeadLetterCursor``).
extension DeadLetterAdmin {
    /// Items per page when the request names no `limit`.
    static let defaultLimit = 100
    /// The largest `limit` a request may name.
    static let maximumLimit = 1_000

    /// One page of a listing; `nextCursor` is `nil` on the last page.
    struct Page: Sendable {
        var deadLetters: [ListedDeadLetter]
        var nextCursor: DeadLetterCursor?
    }

    /// What one consumer's file adds to a listing: its entries not listed yet, taken newest first.
    private struct Source: Sendable {
        var consumer: String
        var file: DeadLetterIndex.FileIdentity?
        var entries: ArraySlice<DeadLetterIndex.Entry>
        /// Where the next page starts when this page takes nothing from this file.
        var before: Int
        /// The newest entry not taken yet that matches the filter.
        var head: Int?

        mutating func advance(_ filter: DeadLetterFilter) {
            var position = head ?? entries.endIndex
            head = nil
            while position > entries.startIndex {
                position -= 1
                if filter.matches(entries[position]) {
                    head = position
                    return
                }
            }
        }
    }

    /// Up to `limit` dead letters of `consumer` (of every listable consumer when `nil`, merged by
    /// `deadLetteredAt`) that match `filter`, newest first, starting after `cursor`.
    func list(consumer: String?, filter: DeadLetterFilter, limit: Int, cursor: DeadLetterCursor?) async throws -> Page {
        if let consumer, !listable.contains(consumer) { throw Failure.unknownConsumer(consumer) }
        let names = consumer.map { [$0] } ?? listable
        if let cursor, cursor.positions.keys.contains(where: { !names.contains($0) }) {
            throw Failure.badCursor("cursor belongs to another listing (another consumer)")
        }
        var snapshots: [DeadLetterIndex.Snapshot] = []
        for name in names { snapshots.append(try await archive.snapshot(consumer: name)) }
        let found = snapshots
        let selection = try await Self.offload {
            select(names: names, snapshots: found, filter: filter, limit: limit, cursor: cursor)
        }
        let sources = selection.sources
        let chosen = selection.taken

        var replayTimes: [String: Date] = [:]
        for index in Set(chosen.map(\.source)).sorted() {
            let name = sources[index].consumer
            for (id, time) in try await store.replayTimes(consumer: name) { replayTimes[name + "\n" + id] = time }
        }
        var loaded: [String: DeadLetter] = [:]
        for index in Set(chosen.map(\.source)).sorted() {
            let name = sources[index].consumer
            for deadLetter in try await archive.load(chosen.filter { $0.source == index }.map(\.entry), consumer: name) {
                loaded[name + "\n" + deadLetter.id] = deadLetter
            }
        }
        let listed = chosen.compactMap { item -> ListedDeadLetter? in
            let key = sources[item.source].consumer + "\n" + item.entry.id
            return loaded[key].map { ListedDeadLetter(deadLetter: $0, replayedAt: replayTimes[key]) }
        }

        guard selection.hasMore else { return Page(deadLetters: listed, nextCursor: nil) }
        var positions: [String: DeadLetterCursor.Position] = [:]
        for (index, source) in sources.enumerated() {
            let oldestTaken = chosen.last { $0.source == index }?.entry.offset
            positions[source.consumer] = .init(file: source.file, before: oldestTaken ?? source.before)
        }
        return Page(deadLetters: listed, nextCursor: DeadLetterCursor(positions: positions))
    }

    private struct Selection: Sendable {
        var sources: [Source]
        var taken: [Taken]
        var hasMore: Bool
    }

    private struct Taken: Sendable {
        var source: Int
        var entry: DeadLetterIndex.Entry
    }

    /// Up to `limit` entries that match, newest first, from the files of `names`, and whether more
    /// are left.
    private func select(
        names: [String], snapshots: [DeadLetterIndex.Snapshot], filter: DeadLetterFilter, limit: Int, cursor: DeadLetterCursor?
    ) -> Selection {
        var sources = zip(names, snapshots).map { name, snapshot in source(consumer: name, snapshot: snapshot, cursor: cursor) }
        for index in sources.indices { sources[index].advance(filter) }
        // Merge the files newest first; one more than the limit tells whether a next page exists.
        var taken: [Taken] = []
        while taken.count <= limit {
            var newest: Int?
            for index in sources.indices {
                guard let head = sources[index].head else { continue }
                if let best = newest, let bestHead = sources[best].head,
                    sources[best].entries[bestHead].deadLetteredAt >= sources[index].entries[head].deadLetteredAt
                {
                    continue
                }
                newest = index
            }
            guard let newest, let head = sources[newest].head else { break }
            taken.append(Taken(source: newest, entry: sources[newest].entries[head]))
            sources[newest].advance(filter)
        }
        return Selection(sources: sources, taken: Array(taken.prefix(limit)), hasMore: taken.count > limit)
    }

    /// The entries of `consumer`'s file that come before `cursor` (all of them without one).
    private func source(consumer: String, snapshot: DeadLetterIndex.Snapshot, cursor: DeadLetterCursor?) -> Source {
        var before = Int.max
        if let cursor {
            guard let position = cursor.positions[consumer], position.identity == snapshot.file else {
                // Rotated since the first page (or not in it): nothing more from this file.
                let position = cursor.positions[consumer]
                return Source(consumer: consumer, file: position?.identity, entries: [], before: position?.before ?? 0)
            }
            before = position.before
        }
        // Entries are in file order: a binary search finds the first at or after `before`.
        var low = 0
        var high = snapshot.entries.count
        while low < high {
            let middle = (low + high) / 2
            if snapshot.entries[middle].offset < before { low = middle + 1 } else { high = middle }
        }
        let entries = snapshot.entries[..<low]
        return Source(
            consumer: consumer, file: snapshot.file, entries: entries, before: entries.last.map { $0.offset + 1 } ?? 0)
    }
}
