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

    /// Holds group commit: requests queue up until ``releaseCommits()``, for tests that need
    /// several requests in one batch.
    package func holdCommits() { commitQueue.suspend() }

    package func releaseCommits() { commitQueue.resume() }

    /// Requests waiting for a transaction, for tests.
    package var pendingCount: Int { state.withLock { $0.pending.count } }

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
        let context = BatchContext(now: now().milliseconds, retention: configuration.dedupRetention.milliseconds)
        do {
            let database = try currentDatabase()
            let done: BatchResult
            do {
                done = try database.pool.write { db in try Self.run(batch, db: db, context: context, isolated: false) }
            } catch {
                // One bad request (a value SQLite refuses, say) fails the whole transaction. Run the
                // batch again with each item in its own savepoint, so that it fails only itself;
                // if the store itself is failing, this fails too and the batch gets 503.
                do {
                    done = try database.pool.write { db in try Self.run(batch, db: db, context: context, isolated: true) }
                } catch {
                    throw StoreError.unavailable("write transaction failed", underlying: SendableError(error))
                }
            }
            state.withLock {
                $0.lastWriteSucceeded = true
                $0.commitCount += 1
                $0.depths.apply(done.depthChanges)
            }
            return done.results
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

    struct BatchContext {
        var now: Int64
        var retention: Int64
    }

    /// The answers of one batch, and how its committed work changes the queue depths.
    struct BatchResult {
        var results: [Result<WorkResult, StoreError>] = []
        var depthChanges = QueueDepths()
    }

    /// Runs the batch inside the write transaction. With `isolated`, each item runs in its own
    /// savepoint and an item that throws is rolled back and answered with its error alone.
    private static func run(_ batch: [Work], db: Database, context: BatchContext, isolated: Bool) throws -> BatchResult {
        var done = BatchResult()
        done.results.reserveCapacity(batch.count)
        for work in batch {
            var changes = QueueDepths()
            if isolated {
                do {
                    var result: WorkResult?
                    try db.inSavepoint {
                        result = try perform(work, db: db, context: context, depths: &changes)
                        return .commit
                    }
                    done.results.append(.success(result!))
                    done.depthChanges.apply(changes)
                } catch {
                    done.results.append(
                        .failure(.unavailable("this request could not be stored", underlying: SendableError(error))))
                }
            } else {
                done.results.append(.success(try perform(work, db: db, context: context, depths: &changes)))
                done.depthChanges.apply(changes)
            }
        }
        return done
    }

    private static func perform(_ work: Work, db: Database, context: BatchContext, depths: inout QueueDepths) throws -> WorkResult {
        switch work {
        case .probe:
            try db.cachedStatement(sql: "UPDATE health SET checked_at = ? WHERE id = 1").execute(arguments: [context.now])
            return .probed
        case .accept(let event):
            let outcome = try insert(event, db: db, now: context.now, retention: context.retention)
            if case .accepted = outcome {
                for consumer in event.consumers { depths.add(1, consumer: consumer) }
            }
            return .accepted(outcome)
        case .claim(let request):
            return .claimed(try claim(request, db: db))
        case .finish(let updates):
            try finish(updates, db: db, depths: &depths)
            return .finished
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
                    INSERT INTO events (id, source, event_type, dedup_key, order_id, received_at, headers, body, sandbox)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
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
        insertEvent.bind(event.sandbox ? 1 : 0)
        _ = try insertEvent.run()
        let lane = event.orderID.map { OrderLane.key(source: event.source, orderID: $0) }
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
                    event.id, consumer, lane, receivedAt, receivedAt, deadLetterID, reason, receivedAt,
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
            delivery.bind(lane)
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
