public import Foundation
import Logging
import PostgresNIO
import Synchronization
import Verification

/// The shared delivery queue: leases with claim tokens, outcomes, dead letters, replay.
///
/// The queue holds only unfinished work: a delivered row is deleted, and a dead letter leaves once
/// its row is in `dead_letters`. The claim takes the due heads of order lanes with
/// `FOR UPDATE SKIP LOCKED`, so gateways claiming at once take different deliveries without
/// waiting for each other, and sets a lease and a fresh claim token on them. An outcome is written
/// only where the token still matches: a gateway whose lease ran out (it stalled, and another
/// gateway took the delivery over) writes nothing.
extension PostgresStore {
    public func depth(consumer: String) async throws(StoreError) -> Int {
        let logger = self.logger
        return try await run("counting the queue") { connection in
            let rows = try await connection.query(
                "SELECT count(*) FROM deliveries WHERE consumer = \(consumer)", logger: logger)
            for try await count in rows.decode(Int64.self) { return Int(count) }
            return 0
        }
    }

    public func claim(
        consumer: String,
        limit: Int,
        now: Date,
        leaseUntil: Date,
        asProbe: Bool
    ) async throws(StoreError) -> [ClaimedDelivery] {
        guard limit > 0 else { return [] }
        let token = Int64.random(in: 1...Int64.max)
        let nowMilliseconds = now.milliseconds
        let leaseMilliseconds = leaseUntil.milliseconds
        let logger = self.logger
        // Eligible: pending, not leased (or the lease ran out), due, and the head of its lane: no
        // earlier delivery of the same lane to the same consumer is still in the queue. A lane's
        // head leaves the queue only by a committed delete or dead-letter decision, so no gateway
        // can see the second delivery of a lane as eligible while the first is being attempted.
        let order = asProbe ? "d.next_attempt_at, d.id" : "d.id"
        let claimed = try await transaction("claiming deliveries") { connection in
            let rows = try await connection.query(
                """
                WITH picked AS MATERIALIZED (
                  SELECT d.id FROM deliveries d
                  WHERE d.consumer = \(consumer) AND d.state = 'pending'
                    AND (d.lease_until IS NULL OR d.lease_until <= \(nowMilliseconds))
                    AND d.next_attempt_at <= \(nowMilliseconds)
                    AND (d.lane IS NULL OR NOT EXISTS (
                      SELECT 1 FROM deliveries p
                      WHERE p.consumer = d.consumer AND p.lane = d.lane AND p.state = 'pending' AND p.id < d.id))
                  ORDER BY \(unescaped: order) LIMIT \(limit)
                  FOR UPDATE OF d SKIP LOCKED
                )
                UPDATE deliveries d SET lease_until = \(leaseMilliseconds), claim_token = \(token)
                FROM picked, events e
                WHERE d.id = picked.id AND e.id = d.event_id
                RETURNING d.id, d.event_id, d.attempt_log, d.next_attempt_at, e.source, e.event_type, e.dedup_key,
                  e.received_at, e.body, e.sandbox
                """,
                logger: logger
            )
            var claimed: [(next: Int64, delivery: ClaimedDelivery)] = []
            for try await (id, eventID, attemptLog, next, source, eventType, dedupKey, receivedAt, body, sandbox) in rows.decode(
                (Int64, String, String, Int64, String, String?, String, Int64, Data, Bool).self)
            {
                claimed.append(
                    (
                        next,
                        ClaimedDelivery(
                            id: id, eventID: eventID, consumer: consumer, source: source, eventType: eventType,
                            dedupKey: dedupKey, receivedAt: Date(milliseconds: receivedAt), body: body,
                            attempts: try AttemptLog.decode(attemptLog), sandbox: sandbox)
                    ))
            }
            return claimed.sorted { asProbe ? ($0.next, $0.delivery.id) < ($1.next, $1.delivery.id) : $0.delivery.id < $1.delivery.id }
                .map(\.delivery)
        }
        state.withLock { state in
            for delivery in claimed { state.tokens[delivery.id] = token }
        }
        return claimed
    }

    public func finish(_ updates: [DeliveryUpdate]) async throws(StoreError) {
        guard !updates.isEmpty else { return }
        let tokens = state.withLock { state in updates.map { state.tokens[$0.id] } }
        let logger = self.logger
        let lost = try await transaction("recording outcomes") { connection in
            var lost = 0
            for (update, token) in zip(updates, tokens) {
                // Without a token (an update of a delivery this gateway never claimed) the row must
                // not be leased by anyone.
                let rows: PostgresRowSequence
                switch update {
                case .delivered(let id):
                    rows = try await connection.query(
                        "DELETE FROM deliveries WHERE id = \(id) AND claim_token IS NOT DISTINCT FROM \(token) RETURNING 1",
                        logger: logger)
                case .retry(let id, let attempts, let nextAttemptAt):
                    rows = try await connection.query(
                        """
                        UPDATE deliveries SET attempts = \(attempts.count), attempt_log = \(try AttemptLog.encode(attempts)),
                          next_attempt_at = \(nextAttemptAt.milliseconds), lease_until = NULL, claim_token = NULL
                        WHERE id = \(id) AND claim_token IS NOT DISTINCT FROM \(token) RETURNING 1
                        """,
                        logger: logger)
                case .deadLetter(let id, let attempts, let reason, let at):
                    let deadLetterID = EventID.make(milliseconds: at.milliseconds, prefix: "dl_")
                    rows = try await connection.query(
                        """
                        UPDATE deliveries SET state = 'dying', attempts = \(attempts.count),
                          attempt_log = \(try AttemptLog.encode(attempts)), reason = \(reason),
                          finished_at = \(at.milliseconds), dead_letter_id = \(deadLetterID), lease_until = NULL,
                          claim_token = NULL
                        WHERE id = \(id) AND claim_token IS NOT DISTINCT FROM \(token) RETURNING 1
                        """,
                        logger: logger)
                }
                var changed = false
                for try await _ in rows { changed = true }
                if !changed { lost += 1 }
            }
            return lost
        }
        state.withLock { state in
            for update in updates { state.tokens[update.id] = nil }
        }
        if lost > 0 {
            // Another gateway took these over after this one's lease ran out (or they are gone):
            // its outcome stands. At least once: the consumer may have had the event twice.
            logger.warning("outcomes not recorded: the lease was lost to another gateway", metadata: ["count": "\(lost)"])
        }
    }

    /// A gateway that starts holds no lease: leases of a gateway that died run out on their own,
    /// and the leases of the other running gateways must stand. Nothing to release.
    public func releaseAllLeases() async throws(StoreError) -> Int { 0 }

    public func markDeadLettered(deliveryIDs: [Int64]) async throws(StoreError) {
        guard !deliveryIDs.isEmpty else { return }
        let logger = self.logger
        try await run("marking dead letters") { connection in
            try await connection.query(
                "DELETE FROM deliveries WHERE id = ANY(\(deliveryIDs)) AND state = 'dying'", logger: logger)
            return ()
        }
    }

    public func deadLettersToWrite(limit: Int) async throws(StoreError) -> [DeadLetterToWrite] {
        let logger = self.logger
        return try await run("reading dead letters to write") { connection in
            let rows = try await connection.query(
                """
                SELECT d.id, d.consumer, d.dead_letter_id, d.reason, d.finished_at, d.attempt_log,
                  e.id, e.source, e.event_type, e.dedup_key, e.received_at, e.headers, e.body
                FROM deliveries d JOIN events e ON e.id = d.event_id
                WHERE d.state = 'dying' ORDER BY d.id LIMIT \(limit)
                """,
                logger: logger
            )
            var found: [DeadLetterToWrite] = []
            for try await (
                id, consumer, deadLetterID, reason, finishedAt, attemptLog, eventID, source, eventType, dedupKey,
                receivedAt, headers, body
            ) in rows.decode(
                (Int64, String, String?, String?, Int64?, String, String, String, String?, String, Int64, String, Data).self)
            {
                found.append(
                    DeadLetterToWrite(
                        deliveryID: id,
                        deadLetter: DeadLetter(
                            id: deadLetterID ?? "dl_missing_\(id)",
                            eventID: eventID,
                            consumer: consumer,
                            source: source,
                            eventType: eventType,
                            dedupKey: dedupKey,
                            receivedAt: Date(milliseconds: receivedAt),
                            deadLetteredAt: Date(milliseconds: finishedAt ?? receivedAt),
                            reason: reason ?? "unknown",
                            attempts: try AttemptLog.decode(attemptLog),
                            headers: SQLiteStore.decodeHeaders(headers),
                            body: body
                        )
                    ))
            }
            return found
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
        let logger = self.logger
        let work: @Sendable (PostgresConnection) async throws -> ReplayResult = { connection in
            var result = ReplayResult()
            var seen = Set<String>()
            let ids = deadLetters.map(\.id)
            var replayedBefore = Set<String>()
            if !force {
                let rows = try await connection.query(
                    "SELECT dead_letter_id FROM replays WHERE dead_letter_id = ANY(\(ids))", logger: logger)
                for try await id in rows.decode(String.self) { replayedBefore.insert(id) }
            }
            for deadLetter in deadLetters where seen.insert(deadLetter.id).inserted {
                if replayedBefore.contains(deadLetter.id) {
                    result.skipped.append(deadLetter.id)
                    continue
                }
                result.replayed.append(deadLetter.id)
                if dryRun { continue }
                guard let body = deadLetter.bodyBytes else {
                    throw StoreError.corrupt("dead letter \(deadLetter.id) has no body")
                }
                // The event is normally still stored; if it was pruned, the line has all it takes.
                let headers = SQLiteStore.headersJSON(deadLetter.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
                try await connection.query(
                    """
                    INSERT INTO events (id, source, event_type, dedup_key, order_id, received_at, headers, body, sandbox)
                    VALUES (\(deadLetter.eventID), \(deadLetter.source), \(deadLetter.eventType), \(deadLetter.dedupKey),
                      \(deadLetter.orderID), \(deadLetter.receivedAt.milliseconds), \(headers), \(body), \(deadLetter.sandbox))
                    ON CONFLICT (id) DO UPDATE SET finished_at = NULL
                    """,
                    logger: logger
                )
                try await connection.query(
                    """
                    INSERT INTO deliveries (event_id, consumer, lane, state, next_attempt_at, created_at, replay_of)
                    SELECT id, \(consumer), CASE WHEN order_id IS NULL THEN NULL ELSE source || chr(31) || order_id END,
                      'pending', \(nowMilliseconds), \(nowMilliseconds), \(deadLetter.id)
                    FROM events WHERE id = \(deadLetter.eventID)
                    """,
                    logger: logger
                )
                try await connection.query(
                    """
                    INSERT INTO replays (dead_letter_id, consumer, replayed_at) VALUES (\(deadLetter.id), \(consumer), \(nowMilliseconds))
                    ON CONFLICT (dead_letter_id) DO UPDATE SET replayed_at = EXCLUDED.replayed_at
                    """,
                    logger: logger
                )
            }
            return result
        }
        if dryRun { return try await run("planning a replay", work) }
        return try await transaction("replaying dead letters", timeout: .seconds(30), work)
    }

    public func replayTimes(consumer: String) async throws(StoreError) -> [String: Date] {
        let logger = self.logger
        return try await run("reading replay times") { connection in
            var times: [String: Date] = [:]
            let rows = try await connection.query(
                "SELECT dead_letter_id, replayed_at FROM replays WHERE consumer = \(consumer)", logger: logger)
            for try await (id, at) in rows.decode((String, Int64).self) { times[id] = Date(milliseconds: at) }
            return times
        }
    }
}
