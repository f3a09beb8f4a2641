public import Foundation
import Logging
import PostgresNIO

/// Dead letters as rows of `dead_letters`, shared by every gateway. Each row keeps the dead
/// letter's JSONL line as the file would hold it (so `dead-letters export` writes exactly SPEC's
/// format), with the fields that listings filter on beside it. The primary key is the dead-letter
/// id: a line written again (two gateways, or a crash between writing and leaving the queue) is
/// kept once.
extension PostgresStore: DeadLetterArchive {
    public func append(_ deadLetters: [DeadLetter], consumer: String) async throws {
        guard !deadLetters.isEmpty else { return }
        let encoder = DeadLetter.encoder
        var ids: [String] = []
        var eventIDs: [String] = []
        var hasType: [Bool] = []
        var types: [String] = []
        var keys: [String] = []
        var times: [Int64] = []
        var lines: [String] = []
        for deadLetter in deadLetters {
            ids.append(deadLetter.id)
            eventIDs.append(deadLetter.eventID)
            hasType.append(deadLetter.eventType != nil)
            types.append(deadLetter.eventType ?? "")
            keys.append(deadLetter.dedupKey)
            times.append(deadLetter.deadLetteredAt.milliseconds)
            lines.append(String(decoding: try encoder.encode(deadLetter), as: UTF8.self))
        }
        let logger = self.logger
        let columns = (ids, eventIDs, hasType, types, keys, times, lines)
        try await run("writing dead letters") { connection in
            let (ids, eventIDs, hasType, types, keys, times, lines) = columns
            try await connection.query(
                """
                INSERT INTO dead_letters (id, consumer, event_id, event_type, dedup_key, dead_lettered_at, line)
                SELECT t.id, \(consumer), t.event_id, CASE WHEN t.has_type THEN t.event_type END, t.dedup_key, t.at, t.line
                FROM unnest(\(ids)::text[], \(eventIDs)::text[], \(hasType)::boolean[], \(types)::text[], \(keys)::text[],
                  \(times)::bigint[], \(lines)::text[]) WITH ORDINALITY
                  AS t(id, event_id, has_type, event_type, dedup_key, at, line, n)
                ORDER BY t.n
                ON CONFLICT (id) DO NOTHING
                """,
                logger: logger
            )
            return ()
        }
    }

    public func snapshot(consumer: String) async throws -> DeadLetterIndex.Snapshot {
        let logger = self.logger
        return try await longTransaction("listing dead letters") { connection in
            let rows = try await connection.query(
                """
                SELECT id, event_type, dedup_key, dead_lettered_at, seq FROM dead_letters
                WHERE consumer = \(consumer) ORDER BY seq
                """,
                logger: logger
            )
            var entries: [DeadLetterIndex.Entry] = []
            for try await (id, eventType, dedupKey, at, seq) in rows.decode((String, String?, String, Int64, Int64).self) {
                entries.append(
                    DeadLetterIndex.Entry(
                        id: id, eventType: eventType, dedupKey: dedupKey, deadLetteredAt: Date(milliseconds: at),
                        offset: Int(seq), length: 0))
            }
            // One table for the life of the database: cursors stay valid across pages.
            return DeadLetterIndex.Snapshot(
                file: DeadLetterIndex.FileIdentity(device: 0, inode: 0), entries: entries, unreadableLines: 0)
        }
    }

    public func load(_ entries: [DeadLetterIndex.Entry], consumer: String) async throws -> [DeadLetter] {
        guard !entries.isEmpty else { return [] }
        let ids = entries.map(\.id)
        let logger = self.logger
        let byID: [String: DeadLetter] = try await longTransaction("reading dead letters") { connection in
            let rows = try await connection.query(
                "SELECT id, line FROM dead_letters WHERE consumer = \(consumer) AND id = ANY(\(ids))", logger: logger)
            var byID: [String: DeadLetter] = [:]
            for try await (id, line) in rows.decode((String, String).self) {
                guard let deadLetter = DeadLetter.read(line: Array(line.utf8)) else {
                    throw StoreError.corrupt("dead letter \(id) in the database does not parse")
                }
                byID[id] = deadLetter
            }
            return byID
        }
        return entries.compactMap { byID[$0.id] }
    }

    /// Every dead letter of `consumer` whose `deadLetteredAt` is in `[since, until)`, as lines,
    /// oldest first, a page at a time (for `dead-letters export`).
    package func exportLines(
        consumer: String, since: Date?, until: Date?, afterSequence: Int64, limit: Int
    ) async throws(StoreError) -> [(sequence: Int64, line: String)] {
        let logger = self.logger
        let since = since?.milliseconds ?? Int64.min
        let until = until?.milliseconds ?? Int64.max
        let found: [ExportedLine] = try await longTransaction("exporting dead letters") { connection in
            let rows = try await connection.query(
                """
                SELECT seq, line FROM dead_letters
                WHERE consumer = \(consumer) AND seq > \(afterSequence)
                  AND dead_lettered_at >= \(since) AND dead_lettered_at < \(until)
                ORDER BY seq LIMIT \(limit)
                """,
                logger: logger
            )
            var found: [ExportedLine] = []
            for try await (sequence, line) in rows.decode((Int64, String).self) {
                found.append(ExportedLine(sequence: sequence, line: line))
            }
            return found
        }
        return found.map { ($0.sequence, $0.line) }
    }
}

private struct ExportedLine: Sendable {
    var sequence: Int64
    var line: String
}
