import Foundation
import GRDB
import Logging
import Synchronization
import Verification

/// Group commit.
///
/// `accept` appends its event to `pending` and waits. One commit loop at a time runs on
/// `commitQueue`: it takes everything pending (up to `maxBatchSize`), writes it in one transaction,
/// waits for the commit (an fsync of the WAL), then answers every request of the batch and goes
/// again while more is pending. Requests that arrive during an fsync ride the next one together.
///
/// A failed transaction is rolled back whole and fails only its own batch, with `.unavailable`;
/// the next batch tries again (reopening the file if it was replaced).
extension SQLiteStore {
    enum Work: Sendable {
        case accept(IncomingEvent)
        /// A write that touches only the health row, to prove the store is writable.
        case probe
        case claim(ClaimRequest)
        case finish([DeliveryUpdate])
    }

    enum WorkResult: Sendable {
        case accepted(AcceptOutcome)
        case probed
        case claimed([ClaimedDelivery])
        case finished
    }

    struct PendingWork: Sendable {
        let work: Work
        let continuation: CheckedContinuation<Result<WorkResult, StoreError>, Never>
    }

    public func accept(_ event: IncomingEvent) async throws(StoreError) -> AcceptOutcome {
        guard case .accepted(let outcome) = try await submit(.accept(event)) else {
            throw .corrupt("group commit answered an accept with another result")
        }
        return outcome
    }

    public func checkWritable() async -> Bool {
        (try? await submit(.probe)) != nil
    }

    /// How many group-commit transactions have committed since the store was opened.
    public var commitCount: Int { state.withLock { $0.commitCount } }

    func submit(_ work: Work) async throws(StoreError) -> WorkResult {
        let result = await withCheckedContinuation { continuation in
            let startLoop = state.withLock { state in
                state.pending.append(PendingWork(work: work, continuation: continuation))
                defer { state.commitLoopScheduled = true }
                return !state.commitLoopScheduled
            }
            if startLoop {
                commitQueue.async { self.commitLoop() }
            }
        }
        return try result.get()
    }

    /// Runs on `commitQueue` until nothing is pending.
    private func commitLoop() {
        while true {
            let batch: [PendingWork] = state.withLock { state in
                guard !state.pending.isEmpty else {
                    state.commitLoopScheduled = false
                    return []
                }
                let count = min(state.pending.count, configuration.maxBatchSize)
                let batch = Array(state.pending.prefix(count))
                state.pending.removeFirst(count)
                return batch
            }
            if batch.isEmpty { return }
            let results = commit(batch.map(\.work))
            for (pending, result) in zip(batch, results) {
                pending.continuation.resume(returning: result)
            }
        }
    }

    private func commit(_ batch: [Work]) -> [Result<WorkResult, StoreError>] {
        let nowMilliseconds = now().milliseconds
        let retentionMilliseconds = configuration.dedupRetention.milliseconds
        do {
            let database = try currentDatabase()
            let results: [WorkResult]
            do {
                results = try database.pool.write { db in
                    try batch.map { work in
                        switch work {
                        case .probe:
                            try db.cachedStatement(sql: "UPDATE health SET checked_at = ? WHERE id = 1")
                                .execute(arguments: [nowMilliseconds])
                            return .probed
                        case .accept(let event):
                            return .accepted(
                                try Self.insert(event, db: db, now: nowMilliseconds, retention: retentionMilliseconds)
                            )
                        case .claim(let request):
                            return .claimed(try Self.claim(request, db: db))
                        case .finish(let updates):
                            try Self.finish(updates, db: db)
                            return .finished
                        }
                    }
                }
            } catch {
                throw StoreError.unavailable("write transaction failed", underlying: SendableError(error))
            }
            state.withLock {
                $0.lastWriteSucceeded = true
                $0.commitCount += 1
            }
            return results.map { .success($0) }
        } catch {
            let wasSucceeding = state.withLock { state in
                defer { state.lastWriteSucceeded = false }
                return state.lastWriteSucceeded
            }
            if wasSucceeding {
                logger.error("store write failed; answering 503 until it recovers", metadata: ["error": "\(error)"])
            }
            return batch.map { _ in .failure(error as? StoreError ?? .unavailable) }
        }
    }

    /// Claims the dedup key and writes the event and its deliveries, inside the batch transaction.
    private static func insert(_ event: IncomingEvent, db: Database, now: Int64, retention: Int64) throws -> AcceptOutcome {
        let key = event.dedupKey.rawValue
        let receivedAt = event.receivedAt.milliseconds
        // One statement claims the key: a new key is inserted, an expired claim that was not pruned
        // yet is taken over, a live claim is left alone (no row changes: a duplicate).
        var claim = BoundStatement(
            try db.cachedStatement(
                sql: """
                    INSERT INTO dedup_keys (key, event_id, expires_at) VALUES (?, ?, ?)
                    ON CONFLICT (key) DO UPDATE SET event_id = excluded.event_id, expires_at = excluded.expires_at
                    WHERE dedup_keys.expires_at <= ?
                    """
            ),
            in: db
        )
        claim.bind(key)
        claim.bind(event.id)
        claim.bind(receivedAt + retention)
        claim.bind(now)
        guard try claim.run() > 0 else {
            let firstID = try String.fetchOne(
                db.cachedStatement(sql: "SELECT event_id FROM dedup_keys WHERE key = ?"),
                arguments: [key]
            )
            guard let firstID else { throw StoreError.corrupt("dedup claim vanished inside its transaction") }
            return .duplicate(firstEventID: firstID)
        }
        var insertEvent = BoundStatement(
            try db.cachedStatement(
                sql: """
                    INSERT INTO events (id, source, event_type, dedup_key, order_id, received_at, headers, body)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """
            ),
            in: db
        )
        insertEvent.bind(event.id)
        insertEvent.bind(event.source)
        insertEvent.bind(event.eventType)
        insertEvent.bind(key)
        insertEvent.bind(event.orderID)
        insertEvent.bind(receivedAt)
        insertEvent.bind(headersJSON(event.headers))
        insertEvent.bind(event.body)
        _ = try insertEvent.run()
        if let reason = event.deadLetterReason {
            let deadLetterStatement = try db.cachedStatement(
                sql: """
                    INSERT INTO deliveries
                      (event_id, consumer, order_id, state, attempts, next_attempt_at, created_at, dead_letter_id, reason, finished_at)
                    VALUES (?, ?, ?, 'dying', 0, ?, ?, ?, ?, ?)
                    """
            )
            for consumer in event.consumers {
                let deadLetterID = EventID.make(milliseconds: receivedAt, prefix: "dl_")
                try deadLetterStatement.execute(arguments: [
                    event.id, consumer, event.orderID, receivedAt, receivedAt, deadLetterID, reason, receivedAt,
                ])
            }
            return .accepted(eventID: event.id)
        }
        let deliveryStatement = try db.cachedStatement(
            sql: """
                INSERT INTO deliveries (event_id, consumer, order_id, state, attempts, next_attempt_at, created_at)
                VALUES (?, ?, ?, 'pending', 0, ?, ?)
                """
        )
        for consumer in event.consumers {
            var delivery = BoundStatement(deliveryStatement, in: db)
            delivery.bind(event.id)
            delivery.bind(consumer)
            delivery.bind(event.orderID)
            delivery.bind(receivedAt)
            delivery.bind(receivedAt)
            _ = try delivery.run()
        }
        return .accepted(eventID: event.id)
    }

    /// The headers as a JSON object in arrival order; a repeated header's values are joined with ", ".
    static func headersJSON(_ headers: [(String, String)]) -> String {
        var names: [String] = []
        var merged: [String: String] = [:]
        names.reserveCapacity(headers.count)
        for (name, value) in headers {
            if let existing = merged[name] {
                merged[name] = existing + ", " + value
            } else {
                names.append(name)
                merged[name] = value
            }
        }
        return JSONText.object(names.map { ($0, merged[$0] ?? "") })
    }
}
