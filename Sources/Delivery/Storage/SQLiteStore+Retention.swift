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
                         AND NOT EXISTS (SELECT 1 FROM deliveries d
                           WHERE d.event_id = events.id AND d.state IN ('pending', 'dying')) LIMIT ?)
                    """,
                arguments: [nowMilliseconds, limit]
            )
            let marked = db.changesCount
            // The event goes with its deliveries' history (finished rows only: an event that was
            // redelivered after it was marked is unmarked, and kept).
            let old = try String.fetchAll(
                db,
                sql: """
                    SELECT id FROM events WHERE finished_at IS NOT NULL AND finished_at <= ?
                      AND NOT EXISTS (SELECT 1 FROM deliveries d
                        WHERE d.event_id = events.id AND d.state IN ('pending', 'dying')) LIMIT ?
                    """,
                arguments: [cutoff, limit]
            )
            let dropHistory = try db.cachedStatement(sql: "DELETE FROM deliveries WHERE event_id = ?")
            let dropEvent = try db.cachedStatement(sql: "DELETE FROM events WHERE id = ?")
            for id in old {
                try dropHistory.execute(arguments: [id])
                try dropEvent.execute(arguments: [id])
            }
            return EventPruneResult(marked: marked, pruned: old.count)
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

    /// The first column of each index on `table`, for tests that check a lookup is indexed.
    package func indexedLeadingColumns(table: String) async throws(StoreError) -> Set<String> {
        try await read { db in
            var columns = Set<String>()
            for index in try db.indexes(on: table) {
                if let first = index.columns.first { columns.insert(first) }
            }
            return columns
        }
    }
}
