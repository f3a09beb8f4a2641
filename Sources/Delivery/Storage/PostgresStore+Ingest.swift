import Foundation
import Logging
import PostgresNIO
import Synchronization
import Verification

/// Group commit on PostgreSQL.
///
/// `accept` queues its event; one commit loop per gateway takes everything queued (up to
/// `maxBatchSize`) and stores it with one statement in one transaction: the dedup claims
/// (`INSERT … ON CONFLICT DO UPDATE … WHERE expired`, so a live key is left alone and a key whose
/// claim expired is taken over), the events whose claim succeeded, and their deliveries. Each
/// request is answered once COMMIT returns (`synchronous_commit` is on for the gateway's sessions).
/// A batch is one round trip for the statement and one for the commit, whatever its size.
///
/// The claims of a batch are made in key order, so two gateways whose batches share keys lock them
/// in the same order and never deadlock. Two requests of one batch with the same key: the first is
/// stored, the second is its duplicate. A batch that fails on something in one request (a value
/// the server refuses) is stored again one request per transaction, so the bad one fails alone.
extension PostgresStore {
    public func accept(_ event: IncomingEvent) async throws(StoreError) -> AcceptOutcome {
        let result = await withCheckedContinuation { continuation in
            let start = state.withLock { state in
                state.pending.append(PendingAccept(event: event, continuation: continuation, enqueuedAt: .now))
                defer { state.committing = true }
                return !state.committing
            }
            if start { Task { await self.commitLoop() } }
        }
        return try result.get()
    }

    /// The seed of the lane locks' hash: the schema's, so that stores in different schemas of one
    /// database never wait for each other's lanes (advisory locks are per database).
    package static func laneLockSeed(schema: String) -> Int64 {
        Int64(truncatingIfNeeded: PostgresMigration.stableHash(schema) >> 1)
    }

    private func commitLoop() async {
        while true {
            let limit = ContinuousClock.now - configuration.operationTimeout
            let (batch, expired): ([PendingAccept], [PendingAccept]) = state.withLock { state in
                // Requests that waited a whole deadline for their turn (the database is slow or
                // gone and the batches before them timed out) are answered 503 now rather than
                // after yet another batch: the queue cannot grow a wait of minutes.
                let expired = state.pending.filter { $0.enqueuedAt < limit }
                if !expired.isEmpty { state.pending.removeAll { $0.enqueuedAt < limit } }
                guard !state.pending.isEmpty else {
                    state.committing = false
                    return ([], expired)
                }
                let count = min(state.pending.count, configuration.maxBatchSize)
                defer { state.pending.removeFirst(count) }
                return (Array(state.pending.prefix(count)), expired)
            }
            for pending in expired {
                pending.continuation.resume(returning: .failure(.unavailable("waited too long for the database")))
            }
            if batch.isEmpty { return }
            let results = await commit(batch.map(\.event))
            for (pending, result) in zip(batch, results) { pending.continuation.resume(returning: result) }
        }
    }

    private func commit(_ events: [IncomingEvent]) async -> [Result<AcceptOutcome, StoreError>] {
        var results: [Result<AcceptOutcome, StoreError>]
        do {
            results = try await store(events).map { .success($0) }
        } catch {
            if events.count > 1, let failure = error.underlying as? PostgresFailure, failure.isAboutTheRequest {
                results = []
                for event in events {
                    do {
                        results.append(.success(try await store([event])[0]))
                    } catch {
                        results.append(.failure(error))
                    }
                }
            } else {
                results = events.map { _ in .failure(error) }
            }
        }
        var queuedFor: Set<String> = []
        for (event, result) in zip(events, results) where event.deadLetterReason == nil {
            if case .success(.accepted) = result { queuedFor.formUnion(event.consumers) }
        }
        announce(consumers: queuedFor)
        let failed = results.contains { if case .failure = $0 { true } else { false } }
        let wasSucceeding = state.withLock { state in
            state.depths = nil
            defer {
                state.lastWriteSucceeded = !failed
                if !failed { state.commitCount += 1 }
            }
            return state.lastWriteSucceeded
        }
        if failed, wasSucceeding, case .failure(let error) = results.first(where: { if case .failure = $0 { true } else { false } }) {
            logger.error("store write failed; answering 503 until it recovers", metadata: ["error": "\(error)"])
        } else if !failed, !wasSucceeding {
            logger.notice("store writes succeed again")
        }
        return results
    }

    /// Stores a batch in one transaction; the outcomes are in the order of `events`.
    private func store(_ events: [IncomingEvent]) async throws(StoreError) -> [AcceptOutcome] {
        // The first request of each key in the batch is stored; a later one is its duplicate.
        var firstIndexByKey: [String: Int] = [:]
        var unique: [Int] = []
        for (index, event) in events.enumerated() where firstIndexByKey[BatchInput.storable(event.dedupKey.rawValue)] == nil {
            firstIndexByKey[BatchInput.storable(event.dedupKey.rawValue)] = index
            unique.append(index)
        }
        let input = BatchInput(
            events: unique.map { events[$0] }, retention: configuration.dedupRetention.milliseconds, now: now().milliseconds,
            laneLockSeed: Self.laneLockSeed(schema: configuration.schema))
        let logger = self.logger
        let claimed: [String: String] = try await transaction("storing events") { connection in
            var claimed: [String: String] = [:]
            let rows = try await connection.query(input.query, logger: logger)
            for try await (key, eventID) in rows.decode((String, String).self) { claimed[key] = eventID }
            // Keys another request holds: read their first event's id (committed by now: the claim
            // above waited for the transaction that held the key).
            let taken = input.keys.filter { claimed[$0] == nil }
            var owners: [String: String] = [:]
            if !taken.isEmpty {
                let rows = try await connection.query(
                    "SELECT key, event_id FROM dedup_keys WHERE key = ANY(\(taken))", logger: logger)
                for try await (key, eventID) in rows.decode((String, String).self) { owners[key] = eventID }
            }
            // Verified bodies that are not an envelope go straight to the dead letters (rare).
            for event in input.events where event.deadLetterReason != nil && claimed[event.dedupKey.rawValue] == event.id {
                // (input.events carry the stored form of their keys)
                let receivedAt = event.receivedAt.milliseconds
                let lane = event.orderID.map { OrderLane.key(source: event.source, orderID: $0) }
                for consumer in event.consumers {
                    let deadLetterID = EventID.make(milliseconds: receivedAt, prefix: "dl_")
                    try await connection.query(
                        """
                        INSERT INTO deliveries (event_id, consumer, lane, state, next_attempt_at, created_at, dead_letter_id,
                          reason, finished_at)
                        VALUES (\(event.id), \(consumer), \(lane), 'dying', \(receivedAt), \(receivedAt), \(deadLetterID),
                          \(event.deadLetterReason), \(receivedAt))
                        """,
                        logger: logger
                    )
                }
            }
            for (key, owner) in owners { claimed[key] = "\u{0}" + owner }
            return claimed
        }
        return try events.map { event throws(StoreError) -> AcceptOutcome in
            let key = BatchInput.storable(event.dedupKey.rawValue)
            guard let value = claimed[key] else { throw .corrupt("dedup claim of a batch vanished") }
            if value.hasPrefix("\u{0}") { return .duplicate(firstEventID: String(value.dropFirst())) }
            return value == event.id ? .accepted(eventID: event.id) : .duplicate(firstEventID: value)
        }
    }
}

/// The columns of a batch as arrays, for one statement that stores the whole batch.
///
/// An unnamed statement, parsed with each batch, not a named prepared one: postgres-nio remembers
/// a failed PREPARE on its connection (a `lock_timeout` while a migration or a `VACUUM FULL`
/// holds a table) and fails every later use of the name there without asking the server, which
/// would leave that pooled connection answering 503 until a restart; a pooler in transaction mode
/// loses named statements too. The statement first takes the advisory locks of the batch's order lanes
/// (in lane order, no deadlock), held until COMMIT: another gateway's batch with an event of the
/// same order waits, so its delivery gets a later id than this one's, and a lane's ids follow the
/// order of commits (without the lock, a later id could commit first and be delivered before an
/// earlier event of its order). The dedup claims read the lock count, so every lock is taken
/// before the first claim, and in the same round trip.
private struct BatchInput: Sendable {
    static func storable(_ text: String) -> String {
        text.contains("\u{0}") ? text.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") : text
    }

    // Claims are made in key order (no deadlock between gateways); deliveries are inserted in
    // arrival order (`ord`), so that an order lane's ids follow the order of receipt.
    static let sql = """
        WITH input AS (
          SELECT * FROM unnest($1::integer[], $2::text[], $3::text[], $4::text[], $5::boolean[], $6::text[], $7::boolean[],
            $8::text[], $9::bigint[], $10::text[], $11::bytea[], $12::boolean[], $13::text[], $14::boolean[])
            AS t(ord, key, id, source, has_type, event_type, has_order, order_id, received_at, headers, body, sandbox,
              consumers, dead)
        ),
        locked AS MATERIALIZED (
          SELECT count(pg_advisory_xact_lock(hashtextextended(lane, $17))) AS lanes
          FROM (SELECT DISTINCT source || chr(31) || order_id AS lane FROM input WHERE has_order ORDER BY lane) AS l
        ),
        claimed AS (
          INSERT INTO dedup_keys (key, event_id, expires_at)
          SELECT key, id, received_at + $15 FROM input CROSS JOIN locked ORDER BY key
          ON CONFLICT (key) DO UPDATE SET event_id = EXCLUDED.event_id, expires_at = EXCLUDED.expires_at
            WHERE dedup_keys.expires_at <= $16
          RETURNING key, event_id
        ),
        stored AS (
          INSERT INTO events (id, source, event_type, dedup_key, order_id, received_at, headers, body, sandbox)
          SELECT i.id, i.source, CASE WHEN i.has_type THEN i.event_type END, i.key,
            CASE WHEN i.has_order THEN i.order_id END, i.received_at, i.headers, i.body, i.sandbox
          FROM input i JOIN claimed c ON c.event_id = i.id
          RETURNING 1
        ),
        queued AS (
          INSERT INTO deliveries (event_id, consumer, lane, state, next_attempt_at, created_at)
          SELECT i.id, c.consumer, CASE WHEN i.has_order THEN i.source || chr(31) || i.order_id END, 'pending',
            i.received_at, i.received_at
          FROM input i JOIN claimed k ON k.event_id = i.id
            CROSS JOIN LATERAL unnest(string_to_array(i.consumers, chr(31))) WITH ORDINALITY AS c(consumer, n)
          WHERE NOT i.dead AND i.consumers <> ''
          ORDER BY i.ord, c.n
          RETURNING 1
        )
        SELECT key, event_id FROM claimed
        """

    let events: [IncomingEvent]
    let keys: [String]
    let retention: Int64
    let now: Int64
    let laneLockSeed: Int64

    init(events: [IncomingEvent], retention: Int64, now: Int64, laneLockSeed: Int64) {
        // PostgreSQL's text cannot hold U+0000, which a JSON string can (`\u0000`): an event with
        // one in its order id, type or key would be refused for good (and TikTok's retries with
        // it). It is stored with U+FFFD in its place, the same way every time, so dedup and order
        // lanes still hold; the body (bytea) keeps the exact bytes.
        self.events = events.map { event in
            var event = event
            event.eventType = event.eventType.map(Self.storable)
            event.orderID = event.orderID.map(Self.storable)
            event.dedupKey = DedupKey(rawValue: Self.storable(event.dedupKey.rawValue))
            return event
        }
        keys = self.events.map(\.dedupKey.rawValue)
        self.retention = retention
        self.now = now
        self.laneLockSeed = laneLockSeed
    }

    var query: PostgresQuery {
        PostgresQuery(unsafeSQL: Self.sql, binds: bindings)
    }

    private var bindings: PostgresBindings {
        var bindings = PostgresBindings(capacity: 17)
        bindings.append(events.indices.map { Int32($0) })
        bindings.append(keys)
        bindings.append(events.map(\.id))
        bindings.append(events.map(\.source))
        bindings.append(events.map { $0.eventType != nil })
        bindings.append(events.map { $0.eventType ?? "" })
        bindings.append(events.map { $0.orderID != nil })
        bindings.append(events.map { $0.orderID ?? "" })
        bindings.append(events.map(\.receivedAt.milliseconds))
        bindings.append(events.map { SQLiteStore.headersJSON($0.headers) })
        bindings.append(events.map { ByteBuffer(bytes: $0.body) })
        bindings.append(events.map(\.sandbox))
        bindings.append(events.map { $0.consumers.joined(separator: OrderLane.separator) })
        bindings.append(events.map { $0.deadLetterReason != nil })
        bindings.append(retention)
        bindings.append(now)
        bindings.append(laneLockSeed)
        return bindings
    }
}

extension PostgresFailure {
    /// The server refused something in the statement itself (a value, a constraint), as opposed to
    /// the connection or the server being unavailable, or the transaction losing a conflict.
    var isAboutTheRequest: Bool {
        guard let sqlState else { return false }
        // 08: connection exception; 25: invalid transaction state (a read-only standby after a
        // failover); 40: transaction rollback (deadlock, serialization); 53: insufficient
        // resources; 55: lock not available (lock_timeout); 57: operator intervention (shutdown,
        // cancel, statement_timeout); 58: system error. None of these is one request's fault.
        return !["08", "25", "40", "53", "55", "57", "58"].contains(where: sqlState.hasPrefix)
    }
}
