public import Foundation
import Logging
import PostgresNIO
import Synchronization
import Verification

/// The shared delivery queue: leases with claim tokens, outcomes, dead letters, replay.
///
/// The queue is the rows in state `pending` (and `dying`: a dead letter whose row is not yet in
/// `dead_letters`); a finished row stays, `delivered` or `dead_lettered`, as the delivery's history
/// for the event log, and goes with its event. The claim takes the due heads of order lanes with
/// `FOR UPDATE SKIP LOCKED`, so gateways claiming at once take different deliveries without
/// waiting for each other, and sets a lease and a fresh claim token on them. An outcome is written
/// only where the token still matches: a gateway whose lease ran out (it stalled, and another
/// gateway took the delivery over) writes nothing.
extension PostgresStore {
    /// The shared queue's depth (every gateway's deliveries), from one count of all consumers
    /// that is at most a second old: `/metrics` asks for each consumer in turn, and a scrape while
    /// the database is down must fail fast (2 s), not wait a deadline per consumer.
    public func depth(consumer: String) async throws(StoreError) -> Int {
        let now = ContinuousClock.now
        if let cached = state.withLock({ state in
            state.depths.flatMap { now - $0.at < .seconds(1) ? $0.counts : nil }
        }) {
            return cached[consumer, default: 0]
        }
        let logger = self.logger
        let counts: [String: Int] = try await run("counting the queue", timeout: .seconds(2)) { connection in
            // One count per state, so that each reads its partial index (deliveries_queue,
            // deliveries_dying) and not the finished rows kept as history.
            let rows = try await connection.query(
                """
                SELECT consumer, count(*) FROM deliveries WHERE state = 'pending' GROUP BY consumer
                UNION ALL
                SELECT consumer, count(*) FROM deliveries WHERE state = 'dying' GROUP BY consumer
                """, logger: logger)
            var counts: [String: Int] = [:]
            for try await (consumer, count) in rows.decode((String, Int64).self) { counts[consumer, default: 0] += Int(count) }
            return counts
        }
        state.withLock { $0.depths = (now, counts) }
        return counts[consumer, default: 0]
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
        let claimed = try await transaction("claiming deliveries") { connection -> [ClaimedDelivery] in
            if asProbe {
                // One probe at a time across gateways: the consumer's probe lease. Another
                // gateway's probe that is still out means no probe from here.
                let rows = try await connection.query(
                    "SELECT probe_until FROM consumer_pauses WHERE consumer = \(consumer) FOR UPDATE", logger: logger)
                for try await probeUntil in rows.decode(Int64?.self) {
                    if let probeUntil, probeUntil > nowMilliseconds { return [] }
                }
            }
            let rows = try await connection.query(
                """
                WITH picked AS MATERIALIZED (
                  SELECT d.id FROM deliveries d
                  WHERE d.consumer = \(consumer) AND d.state = 'pending'
                    AND NOT EXISTS (SELECT 1 FROM consumer_holds WHERE consumer = \(consumer))
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
            if asProbe && !claimed.isEmpty {
                try await connection.query(
                    """
                    UPDATE consumer_pauses SET probe_until = \(leaseMilliseconds), probe_token = \(token)
                    WHERE consumer = \(consumer)
                    """,
                    logger: logger)
            }
            return claimed.sorted { asProbe ? ($0.next, $0.delivery.id) < ($1.next, $1.delivery.id) : $0.delivery.id < $1.delivery.id }
                .map(\.delivery)
        }
        state.withLock { state in
            for delivery in claimed { state.tokens[delivery.id] = token }
            if asProbe && !claimed.isEmpty { state.probeTokens.insert(token) }
        }
        return claimed
    }

    /// Records outcomes with group commit, as ingest does: the outcomes that arrive while a
    /// transaction commits go together in the next one, and the deliveries of a batch are
    /// deleted with one statement. One commit (one WAL flush) serves many deliveries.
    public func finish(_ updates: [DeliveryUpdate]) async throws(StoreError) {
        guard !updates.isEmpty else { return }
        let result = await withCheckedContinuation { continuation in
            let start = state.withLock { state in
                state.pendingOutcomes.append(PendingOutcomes(updates: updates, continuation: continuation))
                defer { state.recordingOutcomes = true }
                return !state.recordingOutcomes
            }
            if start { Task { await self.outcomeLoop() } }
        }
        try result.get()
    }

    private func outcomeLoop() async {
        while true {
            let batch: [PendingOutcomes] = state.withLock { state in
                guard !state.pendingOutcomes.isEmpty else {
                    state.recordingOutcomes = false
                    return []
                }
                var count = 0
                var taken = 0
                while taken < state.pendingOutcomes.count && count < configuration.maxBatchSize {
                    count += state.pendingOutcomes[taken].updates.count
                    taken += 1
                }
                defer { state.pendingOutcomes.removeFirst(taken) }
                return Array(state.pendingOutcomes.prefix(taken))
            }
            if batch.isEmpty { return }
            let result: Result<Void, StoreError>
            do {
                try await record(batch.flatMap(\.updates))
                result = .success(())
            } catch {
                result = .failure(error)
            }
            for pending in batch { pending.continuation.resume(returning: result) }
        }
    }

    private func record(_ updates: [DeliveryUpdate]) async throws(StoreError) {
        let tokens = state.withLock { state in updates.map { state.tokens[$0.id] } }
        let probes = state.withLock { state in tokens.compactMap { $0 }.filter { state.probeTokens.contains($0) } }
        let logger = self.logger
        // Forgotten whatever happens: an outcome that could not be written is not written later
        // (the lease runs out and the delivery is claimed again, with a new token).
        defer {
            state.withLock { state in
                for update in updates { state.tokens[update.id] = nil }
                state.probeTokens.subtract(probes)
                state.depths = nil
            }
        }
        // Without a token (a delivery this gateway did not claim: the gateway itself never does
        // this; a tool or a test may) an outcome is written only where no gateway holds a lease:
        // token 0 stands for "none", which no claim hands out.
        var lost = 0
        var deliveredIDs: [Int64] = []
        var deliveredTokens: [Int64] = []
        var deliveredLogs: [String] = []
        var deliveredAttempts: [Int64] = []
        var deliveredAt: [Int64] = []
        var others: [(DeliveryUpdate, Int64)] = []
        for (update, token) in zip(updates, tokens) {
            let token = token ?? 0
            if case .delivered(let id, let attempts) = update {
                deliveredIDs.append(id)
                deliveredTokens.append(token)
                deliveredLogs.append(AttemptLog.encode(attempts))
                deliveredAttempts.append(Int64(attempts.count))
                deliveredAt.append(AttemptLog.finishedAt(attempts) ?? 0)
            } else {
                others.append((update, token))
            }
        }
        let changes = OutcomeChanges(
            deliveredIDs: deliveredIDs, deliveredTokens: deliveredTokens, deliveredLogs: deliveredLogs,
            deliveredAttempts: deliveredAttempts, deliveredAt: deliveredAt,
            others: others.map { OutcomeChange(update: $0.0, token: $0.1) })
        lost += try await transaction("recording outcomes") { connection in
            var lost = 0
            if !probes.isEmpty {
                // The probe is back: the consumer's probe lease is free for the next one.
                try await connection.query(
                    "UPDATE consumer_pauses SET probe_until = NULL, probe_token = NULL WHERE probe_token = ANY(\(probes))",
                    logger: logger)
            }
            if !changes.deliveredIDs.isEmpty {
                // The row stays, out of the queue, as the delivery's history until its event is pruned.
                let rows = try await connection.query(
                    """
                    UPDATE deliveries d SET state = 'delivered', attempts = t.attempts, attempt_log = t.log,
                      finished_at = nullif(t.at, 0), lease_until = NULL, claim_token = NULL
                    FROM unnest(\(changes.deliveredIDs)::bigint[], \(changes.deliveredTokens)::bigint[],
                      \(changes.deliveredAttempts)::bigint[], \(changes.deliveredLogs)::text[], \(changes.deliveredAt)::bigint[])
                      AS t(id, token, attempts, log, at)
                    WHERE d.id = t.id AND coalesce(d.claim_token, 0) = t.token AND d.state = 'pending' RETURNING d.id
                    """,
                    logger: logger)
                var deleted = 0
                for try await _ in rows { deleted += 1 }
                lost += changes.deliveredIDs.count - deleted
            }
            for change in changes.others {
                let token = change.token
                let rows: PostgresRowSequence
                switch change.update {
                case .delivered:
                    continue
                case .retry(let id, let attempts, let nextAttemptAt):
                    rows = try await connection.query(
                        """
                        UPDATE deliveries SET attempts = \(attempts.count), attempt_log = \(AttemptLog.encode(attempts)),
                          next_attempt_at = \(nextAttemptAt.milliseconds), lease_until = NULL, claim_token = NULL
                        WHERE id = \(id) AND state = 'pending' AND coalesce(claim_token, 0) = \(token) RETURNING 1
                        """,
                        logger: logger)
                case .deadLetter(let id, let attempts, let reason, let at):
                    let deadLetterID = EventID.make(milliseconds: at.milliseconds, prefix: "dl_")
                    rows = try await connection.query(
                        """
                        UPDATE deliveries SET state = 'dying', attempts = \(attempts.count),
                          attempt_log = \(AttemptLog.encode(attempts)), reason = \(reason),
                          finished_at = \(at.milliseconds), dead_letter_id = \(deadLetterID), lease_until = NULL,
                          claim_token = NULL
                        WHERE id = \(id) AND state = 'pending' AND coalesce(claim_token, 0) = \(token) RETURNING 1
                        """,
                        logger: logger)
                }
                var changed = false
                for try await _ in rows { changed = true }
                if !changed { lost += 1 }
            }
            return lost
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
                "UPDATE deliveries SET state = 'dead_lettered', lease_until = NULL WHERE id = ANY(\(deliveryIDs)) AND state = 'dying'",
                logger: logger)
            return ()
        }
        state.withLock { $0.depths = nil }
    }

    public func deadLettersToWrite(limit: Int) async throws(StoreError) -> [DeadLetterToWrite] {
        let logger = self.logger
        let now = self.now().milliseconds
        return try await transaction("reading dead letters to write") { connection in
            // Taken for 30 s (`lease_until` on a dying row), so that the dead-letter services of
            // several gateways do not each write, count and log the same dead letters. One whose
            // gateway died before taking it out of the queue is taken again after that.
            let rows = try await connection.query(
                """
                WITH taken AS MATERIALIZED (
                  SELECT id FROM deliveries
                  WHERE state = 'dying' AND (lease_until IS NULL OR lease_until <= \(now))
                  ORDER BY id LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                UPDATE deliveries d SET lease_until = \(now + 30_000)
                FROM taken, events e
                WHERE d.id = taken.id AND e.id = d.event_id
                RETURNING d.id, d.consumer, d.dead_letter_id, d.reason, d.finished_at, d.attempt_log,
                  e.id, e.source, e.event_type, e.dedup_key, e.received_at, e.headers, e.body
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
            return found.sorted { $0.deliveryID < $1.deliveryID }
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
            if dryRun && !force {
                let rows = try await connection.query(
                    "SELECT dead_letter_id FROM replays WHERE dead_letter_id = ANY(\(ids))", logger: logger)
                for try await id in rows.decode(String.self) { replayedBefore.insert(id) }
            }
            for deadLetter in deadLetters where seen.insert(deadLetter.id).inserted {
                if dryRun {
                    if replayedBefore.contains(deadLetter.id) {
                        result.skipped.append(deadLetter.id)
                    } else {
                        result.replayed.append(deadLetter.id)
                    }
                    continue
                }
                // The replay is claimed first: of two replays at once (one gateway or two), the
                // second finds the claim and skips, instead of both queueing the dead letter.
                let claim = try await connection.query(
                    force
                        ? """
                        INSERT INTO replays (dead_letter_id, consumer, replayed_at) VALUES (\(deadLetter.id), \(consumer), \(nowMilliseconds))
                        ON CONFLICT (dead_letter_id) DO UPDATE SET replayed_at = EXCLUDED.replayed_at RETURNING 1
                        """
                        : """
                        INSERT INTO replays (dead_letter_id, consumer, replayed_at) VALUES (\(deadLetter.id), \(consumer), \(nowMilliseconds))
                        ON CONFLICT (dead_letter_id) DO NOTHING RETURNING 1
                        """,
                    logger: logger
                )
                var claimed = false
                for try await _ in claim { claimed = true }
                guard claimed else {
                    result.skipped.append(deadLetter.id)
                    continue
                }
                result.replayed.append(deadLetter.id)
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
            }
            return result
        }
        if dryRun { return try await run("planning a replay", work) }
        defer { state.withLock { $0.depths = nil } }
        return try await longTransaction("replaying dead letters", work)
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

extension PostgresStore {
    public func sharedPause(consumer: String) async throws(StoreError) -> Bool {
        let logger = self.logger
        return try await run("reading a consumer's pause") { connection in
            let rows = try await connection.query("SELECT 1 FROM consumer_pauses WHERE consumer = \(consumer)", logger: logger)
            for try await _ in rows { return true }
            return false
        }
    }

    public func recordPause(consumer: String, paused: Bool, at: Date) async throws(StoreError) {
        let logger = self.logger
        let at = at.milliseconds
        try await run("recording a consumer's pause") { connection in
            if paused {
                try await connection.query(
                    "INSERT INTO consumer_pauses (consumer, paused_since) VALUES (\(consumer), \(at)) ON CONFLICT (consumer) DO NOTHING",
                    logger: logger)
            } else {
                try await connection.query("DELETE FROM consumer_pauses WHERE consumer = \(consumer)", logger: logger)
            }
            return ()
        }
    }
}

/// Outcomes waiting for the next transaction, with their caller.
struct PendingOutcomes: Sendable {
    let updates: [DeliveryUpdate]
    let continuation: CheckedContinuation<Result<Void, StoreError>, Never>
}

private struct OutcomeChange: Sendable {
    var update: DeliveryUpdate
    var token: Int64
}

private struct OutcomeChanges: Sendable {
    var deliveredIDs: [Int64]
    var deliveredTokens: [Int64]
    var deliveredLogs: [String]
    var deliveredAttempts: [Int64]
    var deliveredAt: [Int64]
    var others: [OutcomeChange]
}

extension PostgresStore: ConsumerControlStore {
    public func consumerHolds() async throws(StoreError) -> [String: Date] {
        let logger = self.logger
        return try await run("reading the consumers' pauses", timeout: .seconds(2)) { connection in
            let rows = try await connection.query("SELECT consumer, held_since FROM consumer_holds", logger: logger)
            var holds: [String: Date] = [:]
            for try await (consumer, since) in rows.decode((String, Int64).self) { holds[consumer] = Date(milliseconds: since) }
            return holds
        }
    }

    public func setConsumerHold(consumer: String, held: Bool, at: Date) async throws(StoreError) {
        let logger = self.logger
        let at = at.milliseconds
        try await transaction("recording a consumer's pause") { connection in
            if held {
                try await connection.query(
                    "INSERT INTO consumer_holds (consumer, held_since) VALUES (\(consumer), \(at)) ON CONFLICT (consumer) DO NOTHING",
                    logger: logger)
            } else {
                try await connection.query("DELETE FROM consumer_holds WHERE consumer = \(consumer)", logger: logger)
            }
            return ()
        }
    }

    public func oldestPending(consumer: String) async throws(StoreError) -> Date? {
        let logger = self.logger
        return try await run("reading the oldest queued delivery", timeout: .seconds(2)) { connection in
            let rows = try await connection.query(
                "SELECT created_at FROM deliveries WHERE consumer = \(consumer) AND state = 'pending' ORDER BY id LIMIT 1",
                logger: logger)
            for try await createdAt in rows.decode(Int64.self) { return Date(milliseconds: createdAt) }
            return nil
        }
    }
}
