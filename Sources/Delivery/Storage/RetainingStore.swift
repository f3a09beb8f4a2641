public import Foundation

/// What one chunk of event pruning did.
public struct EventPruneResult: Sendable, Hashable {
    /// Events newly found with every delivery finished.
    public var marked: Int
    /// Events deleted because they finished longer than the retention ago.
    public var pruned: Int

    public init(marked: Int, pruned: Int) {
        self.marked = marked
        self.pruned = pruned
    }
}

/// Storage whose finished events are pruned after a retention time.
public protocol RetainingStore: Sendable {
    /// Marks up to `limit` events whose deliveries have all finished, and deletes up to `limit`
    /// events marked at or before `now - retention`. Events with an unfinished delivery are kept.
    func pruneFinishedEvents(now: Date, retention: Duration, limit: Int) async throws(StoreError) -> EventPruneResult
}
