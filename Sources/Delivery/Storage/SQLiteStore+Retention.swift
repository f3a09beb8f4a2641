public import Foundation
import GRDB

/// Event retention: an event whose deliveries have all finished is kept for `events.retention`,
/// then pruned.
///
/// Nothing on the ingest or delivery path writes for this. The pruning service marks, in small
/// chunks, the events that have no unfinished delivery left (`finished_at`, the time it noticed),
/// and deletes those marked longer than the retention ago. So an event is kept at least the
/// retention after its last delivery finished (and at most one pruning interval more). An event
/// with a delivery still pending, leased or waiting for its dead-letter line is never marked nor
/// deleted. SQLite reuses the pages of deleted rows, so under a steady load the file stops growing
/// once the retention window is full.
extension SQLiteStore {
    public func pruneFinishedEvents(now: Date, retention: Duration, limit: Int) async throws(StoreError) -> EventPruneResult {
        let nowMilliseconds = now.milliseconds
        let cutoff = nowMilliseconds - retention.milliseconds
        return try await write("pruning events") { db in
            try db.execute(
                sql: """
                    UPDATE events SET finished_at = ? WHERE rowid IN
                      (SELECT rowid FROM events WHERE finished_at IS NULL
                         AND id NOT IN (SELECT event_id FROM deliveries) LIMIT ?)
                    """,
                arguments: [nowMilliseconds, limit]
            )
            let marked = db.changesCount
            try db.execute(
                sql: """
                    DELETE FROM events WHERE rowid IN
                      (SELECT rowid FROM events WHERE finished_at IS NOT NULL AND finished_at <= ?
                         AND id NOT IN (SELECT event_id FROM deliveries) LIMIT ?)
                    """,
                arguments: [cutoff, limit]
            )
            return EventPruneResult(marked: marked, pruned: db.changesCount)
        }
    }

    /// The number of stored events, for tests and the soak test's figures.
    package func eventCount() async throws(StoreError) -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events") ?? 0 }
    }

    /// The pages the database file holds and how many of them are free, for tests.
    package func pageCounts() async throws(StoreError) -> (total: Int, free: Int) {
        try await read { db in
            (try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0, try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0)
        }
    }
}
