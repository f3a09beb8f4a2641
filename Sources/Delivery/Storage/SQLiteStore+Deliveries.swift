public import Foundation
import GRDB
import Synchronization
import Verification

/// The delivery queue: leasing, outcomes, dead letters waiting for their line, and replay.
///
/// Claims and outcomes go through group commit with ingest, so a busy dispatcher and a busy
/// ingress share transactions (and fsyncs) instead of queueing for the writer one by one.
extension SQLiteStore {
    struct ClaimRequest: Sendable {
        var consumer: String
        var limit: Int
        var now: Int64
        var leaseUntil: Int64
        var asProbe: Bool
    }

    public func claim(
        consumer: String,
        limit: Int,
        now: Date,
        leaseUntil: Date,
        asProbe: Bool
    ) async throws(StoreError) -> [ClaimedDelivery] {
        guard limit > 0 else { return [] }
        let request = ClaimRequest(
            consumer: consumer,
            limit: limit,
            now: now.milliseconds,
            leaseUntil: leaseUntil.milliseconds,
            asProbe: asProbe
        )
        guard case .claimed(let deliveries) = try await submit(.claim(request)) else {
            throw .corrupt("group commit answered a claim with another result")
        }
        return deliveries
    }

    public func finish(_ updates: [DeliveryUpdate]) async throws(StoreError) {
        guard !updates.isEmpty else { return }
        guard case .finished = try await submit(.finish(updates)) else {
            throw .corrupt("group commit answered a finish with another result")
        }
    }

    /// Selects and leases, inside the batch transaction.
    ///
    /// A delivery is held back while an earlier delivery of the same order to the same consumer is
    /// still pending (leased or waiting for a retry); a delivery that became a dead letter no longer
    /// holds anything back.
    static func claim(_ request: ClaimRequest, db: Database) throws -> [ClaimedDelivery] {
        // A consumer an operator paused gets nothing leased, checked in the transaction that
        // would lease (so a pause that committed is never raced by a claim after it).
        let held = try Bool.fetchOne(
            db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM consumer_holds WHERE consumer = ?)"),
            arguments: [request.consumer])
        if held == true { return [] }
        // A delivery is eligible when it is pending, not leased, due, and the head of its lane.
        let eligible = """
            d.consumer = :consumer AND d.state = 'pending'
              AND (d.lease_until IS NULL OR d.lease_until <= :now) AND d.next_attempt_at <= :now
              AND (d.order_id IS NULL OR NOT EXISTS (
                SELECT 1 FROM deliveries p
                WHERE p.consumer = d.consumer AND p.order_id = d.order_id AND p.state = 'pending' AND p.id < d.id))
            """
        // Normally the eligible deliveries go in queue order. A probe of a paused consumer takes the
        // one whose next attempt is earliest, so an event that the consumer keeps refusing moves
        // back with each failure and cannot hold the others up. Sorting the whole queue for that
        // would hold the writer for as long as the backlog is big, so it is found among two short
        // lists: deliveries never tried (their next attempt is their receipt, so the first in
        // queue order is the earliest of them) and deliveries tried before (few while paused; the
        // partial index `deliveries_retried` orders them by next attempt, and ingest never writes it).
        let selection =
            request.asProbe
            ? """
            d.id IN (
              SELECT id FROM (SELECT d.id FROM deliveries d WHERE \(eligible) AND d.attempts = 0 ORDER BY d.id LIMIT :limit)
              UNION ALL
              SELECT id FROM (SELECT d.id FROM deliveries d INDEXED BY deliveries_retried
                WHERE \(eligible) AND d.attempts > 0 ORDER BY d.next_attempt_at, d.id LIMIT :limit))
            ORDER BY d.next_attempt_at, d.id
            """
            : "\(eligible) ORDER BY d.id"
        let rows = try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT d.id, d.event_id, d.attempt_log, e.source, e.event_type, e.dedup_key, e.received_at, e.body,
                      e.sandbox
                    FROM deliveries d JOIN events e ON e.id = d.event_id
                    WHERE \(selection) LIMIT :limit
                    """
            ),
            arguments: ["consumer": request.consumer, "now": request.now, "limit": request.limit]
        )
        guard !rows.isEmpty else { return [] }
        let lease = try db.cachedStatement(sql: "UPDATE deliveries SET lease_until = ? WHERE id = ?")
        return try rows.map { row in
            let id: Int64 = row["id"]
            try lease.execute(arguments: [request.leaseUntil, id])
            return ClaimedDelivery(
                id: id,
                eventID: row["event_id"],
                consumer: request.consumer,
                source: row["source"],
                eventType: row["event_type"],
                dedupKey: row["dedup_key"],
                receivedAt: Date(milliseconds: row["received_at"]),
                body: row["body"],
                attempts: try AttemptLog.decode(row["attempt_log"]),
                sandbox: row["sandbox"] as Int64 != 0
            )
        }
    }

    static func finish(_ updates: [DeliveryUpdate], db: Database, depths: inout QueueDepths) throws {
        for update in updates {
            switch update {
            case .delivered(let id, let attempts):
                // The row stays, out of the queue, as the delivery's history until its event is
                // pruned.
                let consumer = try String.fetchOne(
                    db.cachedStatement(
                        sql: """
                            UPDATE deliveries SET state = 'delivered', attempts = ?, attempt_log = ?, finished_at = ?,
                              lease_until = NULL
                            WHERE id = ? AND state = 'pending' RETURNING consumer
                            """
                    ),
                    arguments: [attempts.count, AttemptLog.encode(attempts), AttemptLog.finishedAt(attempts), id])
                if let consumer { depths.add(-1, consumer: consumer) }
            case .retry(let id, let attempts, let nextAttemptAt):
                try db.cachedStatement(
                    sql: """
                        UPDATE deliveries SET attempts = ?, attempt_log = ?, next_attempt_at = ?, lease_until = NULL
                        WHERE id = ? AND state = 'pending'
                        """
                ).execute(arguments: [attempts.count, AttemptLog.encode(attempts), nextAttemptAt.milliseconds, id])
            case .deadLetter(let id, let attempts, let reason, let at):
                try db.cachedStatement(
                    sql: """
                        UPDATE deliveries SET state = 'dying', attempts = ?, attempt_log = ?, reason = ?, finished_at = ?,
                          dead_letter_id = ?, lease_until = NULL
                        WHERE id = ? AND state = 'pending'
                        """
                ).execute(arguments: [
                    attempts.count, AttemptLog.encode(attempts), reason, at.milliseconds,
                    EventID.make(milliseconds: at.milliseconds, prefix: "dl_"), id,
                ])
            }
        }
    }

    public func releaseAllLeases() async throws(StoreError) -> Int {
        try await write("releasing leases") { db in
            try db.execute(sql: "UPDATE deliveries SET lease_until = NULL WHERE lease_until IS NOT NULL")
            return db.changesCount
        }
    }

    public func deadLettersToWrite(limit: Int) async throws(StoreError) -> [DeadLetterToWrite] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT d.id, d.consumer, d.dead_letter_id, d.reason, d.finished_at, d.attempt_log,
                      e.id AS event_id, e.source, e.event_type, e.dedup_key, e.received_at, e.headers, e.body
                    FROM deliveries d JOIN events e ON e.id = d.event_id
                    WHERE d.state = 'dying' ORDER BY d.id LIMIT ?
                    """,
                arguments: [limit]
            ).map { row in
                DeadLetterToWrite(
                    deliveryID: row["id"],
                    deadLetter: DeadLetter(
                        id: row["dead_letter_id"],
                        eventID: row["event_id"],
                        consumer: row["consumer"],
                        source: row["source"],
                        eventType: row["event_type"],
                        dedupKey: row["dedup_key"],
                        receivedAt: Date(milliseconds: row["received_at"]),
                        deadLetteredAt: Date(milliseconds: row["finished_at"]),
                        reason: row["reason"],
                        attempts: try AttemptLog.decode(row["attempt_log"]),
                        headers: Self.decodeHeaders(row["headers"]),
                        body: row["body"]
                    )
                )
            }
        }
    }

    public func replay(
        _ deadLetters: [DeadLetter],
        consumer: String,
        force: Bool,
        dryRun: Bool,
        now: Date
    ) async throws(StoreError) -> ReplayResult {
        let nowMilliseconds = now.milliseconds
        let work: @Sendable (Database) throws -> ReplayResult = { db in
            var result = ReplayResult()
            let replayedBefore = try db.cachedStatement(sql: "SELECT 1 FROM replays WHERE dead_letter_id = ?")
            // The event is normally still stored; if it is not (a new database), the dead-letter
            // line has everything needed to store it again.
            let insertEvent = try db.cachedStatement(
                sql: """
                    INSERT OR IGNORE INTO events (id, source, event_type, dedup_key, order_id, received_at, headers, body, sandbox)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """
            )
            let insertDelivery = try db.cachedStatement(
                sql: """
                    INSERT INTO deliveries (event_id, consumer, order_id, state, attempts, next_attempt_at, created_at, replay_of)
                    SELECT id, ?, CASE WHEN order_id IS NULL THEN NULL ELSE source || char(31) || order_id END,
                      'pending', 0, ?, ?, ? FROM events WHERE id = ?
                    """
            )
            // A replayed event is unfinished again: retention counts from its new end.
            let unfinish = try db.cachedStatement(sql: "UPDATE events SET finished_at = NULL WHERE id = ?")
            let markReplayed = try db.cachedStatement(
                sql: """
                    INSERT INTO replays (dead_letter_id, consumer, replayed_at) VALUES (?, ?, ?)
                    ON CONFLICT (dead_letter_id) DO UPDATE SET replayed_at = excluded.replayed_at
                    """
            )
            var seen = Set<String>()
            for deadLetter in deadLetters where seen.insert(deadLetter.id).inserted {
                if !force, try Bool.fetchOne(replayedBefore, arguments: [deadLetter.id]) == true {
                    result.skipped.append(deadLetter.id)
                    continue
                }
                result.replayed.append(deadLetter.id)
                if dryRun { continue }
                guard let body = deadLetter.bodyBytes else {
                    throw StoreError.corrupt("dead letter \(deadLetter.id) has no body")
                }
                try insertEvent.execute(arguments: [
                    deadLetter.eventID, deadLetter.source, deadLetter.eventType, deadLetter.dedupKey, deadLetter.orderID,
                    deadLetter.receivedAt.milliseconds,
                    Self.headersJSON(deadLetter.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }), body,
                    deadLetter.sandbox,
                ])
                try insertDelivery.execute(arguments: [
                    consumer, nowMilliseconds, nowMilliseconds, deadLetter.id, deadLetter.eventID,
                ])
                try unfinish.execute(arguments: [deadLetter.eventID])
                try markReplayed.execute(arguments: [deadLetter.id, consumer, nowMilliseconds])
            }
            return result
        }
        if dryRun { return try await read(work) }
        let result = try await write("replaying dead letters", work)
        state.withLock { $0.depths.add(result.replayed.count, consumer: consumer) }
        return result
    }

    public func replayTimes(consumer: String) async throws(StoreError) -> [String: Date] {
        try await read { db in
            var times: [String: Date] = [:]
            let rows = try Row.fetchCursor(
                db,
                sql: "SELECT dead_letter_id, replayed_at FROM replays WHERE consumer = ?",
                arguments: [consumer]
            )
            while let row = try rows.next() {
                times[row["dead_letter_id"]] = Date(milliseconds: row["replayed_at"])
            }
            return times
        }
    }

    /// A write outside group commit, for rare, large operations.
    func write<T: Sendable>(
        _ what: String,
        _ body: @escaping @Sendable (Database) throws -> T
    ) async throws(StoreError) -> T {
        let database = try currentDatabase()
        do {
            return try await database.pool.write(body)
        } catch let error as StoreError {
            throw error
        } catch {
            throw .unavailable("\(what) failed", underlying: SendableError(error))
        }
    }

    static func decodeHeaders(_ json: String) -> [String: String] {
        (try? JSONDecoder().decode([String: String].self, from: Data(json.utf8))) ?? [:]
    }
}

/// The attempts of a delivery as stored: the JSON of the dead-letter line's `attempts`, with each
/// attempt's `durationMs`.
package enum AttemptLog {
    /// Written by hand: every finished delivery writes its log (it is the event log's history),
    /// and `JSONEncoder` with its date strategy cost more than the rest of recording the outcome.
    /// The same JSON as `DeadLetter.encoder` with `includeDuration` (keys sorted, nulls written);
    /// a test holds the two together.
    package static func encode(_ attempts: [DeadLetter.Attempt]) -> String {
        if attempts.isEmpty { return "[]" }
        var out = "["
        out.reserveCapacity(attempts.count * 80)
        for (index, attempt) in attempts.enumerated() {
            if index > 0 { out.append(",") }
            out.append(#"{"at":""#)
            out.append(DeadLetter.rfc3339(attempt.at))
            out.append(#"","durationMs":"#)
            out.append(attempt.durationMs.map { String($0) } ?? "null")
            out.append(#","error":"#)
            out.append(attempt.error.map(JSONText.string) ?? "null")
            out.append(#","status":"#)
            out.append(attempt.status.map { String($0) } ?? "null")
            out.append("}")
        }
        out.append("]")
        return out
    }

    /// When the last attempt ended (milliseconds), if there was one.
    static func finishedAt(_ attempts: [DeadLetter.Attempt]) -> Int64? {
        attempts.last.map { $0.at.milliseconds + Int64($0.durationMs ?? 0) }
    }

    package static func decode(_ json: String) throws -> [DeadLetter.Attempt] {
        if json == "[]" { return [] }
        return try DeadLetter.decoder.decode([DeadLetter.Attempt].self, from: Data(json.utf8))
    }
}
