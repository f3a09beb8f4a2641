public import Foundation
import GRDB
import Synchronization

/// The event log on SQLite: searches of the events with their delivery history, and redelivery.
///
/// Reads run on the pool's readers (WAL), beside group commit. Every filter but `source` and
/// `status` has an index (migration v5); newest-first order follows `events_received` (or the
/// filter's index, which ends in `received_at, id`), so a page reads about `limit` rows.
extension SQLiteStore: EventLogStore {
    public func events(matching query: EventQuery, now: Date) async throws(StoreError) -> EventPage {
        let nowMilliseconds = now.milliseconds
        return try await read { db in
            var conditions: [String] = []
            var arguments: [String: (any DatabaseValueConvertible)?] = [:]
            if let source = query.source {
                conditions.append("e.source = :source")
                arguments["source"] = source
            }
            if let eventType = query.eventType {
                conditions.append("e.event_type = :eventType")
                arguments["eventType"] = eventType
            }
            if let orderID = query.orderID {
                conditions.append("e.order_id = :orderID")
                arguments["orderID"] = orderID
            }
            if let dedupKey = query.dedupKey {
                conditions.append("e.dedup_key = :dedupKey")
                arguments["dedupKey"] = dedupKey
            }
            if let since = query.since {
                conditions.append("e.received_at >= :since")
                arguments["since"] = since.milliseconds
            }
            if let until = query.until {
                conditions.append("e.received_at < :until")
                arguments["until"] = until.milliseconds
            }
            if let cursor = query.cursor {
                conditions.append("(e.received_at < :cursorAt OR (e.received_at = :cursorAt AND e.id < :cursorID))")
                arguments["cursorAt"] = cursor.receivedAt
                arguments["cursorID"] = cursor.id
            }
            if let states = query.storedStates {
                let list = states.map { "'\($0)'" }.joined(separator: ", ")
                conditions.append(
                    "EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.state IN (\(list)))")
            }
            arguments["limit"] = query.limit + 1
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT e.id, e.source, e.event_type, e.order_id, e.dedup_key, e.received_at, e.sandbox
                    FROM events e \(filter)
                    ORDER BY e.received_at DESC, e.id DESC LIMIT :limit
                    """,
                arguments: StatementArguments(arguments)
            )
            var events = rows.prefix(query.limit).map(Self.eventRecord)
            try Self.attachDeliveries(to: &events, db: db, now: nowMilliseconds)
            let next = rows.count > query.limit ? events.last?.cursor : nil
            return EventPage(events: events, nextCursor: next)
        }
    }

    public func eventRecord(id: String, now: Date) async throws(StoreError) -> EventRecord? {
        let nowMilliseconds = now.milliseconds
        return try await read { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT id, source, event_type, order_id, dedup_key, received_at, sandbox, headers, body
                        FROM events WHERE id = ?
                        """,
                    arguments: [id])
            else { return nil }
            var event = Self.eventRecord(row)
            event.headers = Self.decodeHeaders(row["headers"])
            event.body = row["body"]
            var events = [event]
            try Self.attachDeliveries(to: &events, db: db, now: nowMilliseconds)
            return events[0]
        }
    }

    public func redeliver(eventID: String, consumers: [String], now: Date) async throws(StoreError) -> RedeliveryResult? {
        let nowMilliseconds = now.milliseconds
        let result: RedeliveryResult? = try await write("redelivering an event") { db in
            guard
                let event = try Row.fetchOne(db, sql: "SELECT source, order_id FROM events WHERE id = ?", arguments: [eventID])
            else { return nil }
            let source: String = event["source"]
            let lane = (event["order_id"] as String?).map { OrderLane.key(source: source, orderID: $0) }
            let unfinished = try db.cachedStatement(
                sql: "SELECT 1 FROM deliveries WHERE event_id = ? AND consumer = ? AND state IN ('pending', 'dying') LIMIT 1")
            let insert = try db.cachedStatement(
                sql: """
                    INSERT INTO deliveries (event_id, consumer, order_id, state, attempts, next_attempt_at, created_at, replay_of)
                    VALUES (?, ?, ?, 'pending', 0, ?, ?, ?)
                    """)
            var result = RedeliveryResult()
            var seen = Set<String>()
            for consumer in consumers where seen.insert(consumer).inserted {
                if try Bool.fetchOne(unfinished, arguments: [eventID, consumer]) == true {
                    result.skipped.append((consumer, "a delivery of this event is still pending"))
                    continue
                }
                try insert.execute(arguments: [eventID, consumer, lane, nowMilliseconds, nowMilliseconds, redeliveryMarker])
                result.queued.append(consumer)
            }
            if !result.queued.isEmpty {
                // Unfinished again: retention counts from the new end.
                try db.execute(sql: "UPDATE events SET finished_at = NULL WHERE id = ?", arguments: [eventID])
            }
            return result
        }
        if let result {
            state.withLock { state in
                for consumer in result.queued { state.depths.add(1, consumer: consumer) }
            }
        }
        return result
    }

    private static func eventRecord(_ row: Row) -> EventRecord {
        EventRecord(
            id: row["id"],
            source: row["source"],
            eventType: row["event_type"],
            orderID: row["order_id"],
            dedupKey: row["dedup_key"],
            receivedAt: Date(milliseconds: row["received_at"]),
            sandbox: (row["sandbox"] as Int64?) ?? 0 != 0,
            deliveries: []
        )
    }

    private static func attachDeliveries(to events: inout [EventRecord], db: Database, now: Int64) throws {
        guard !events.isEmpty else { return }
        let placeholders = Array(repeating: "?", count: events.count).joined(separator: ", ")
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT id, event_id, consumer, state, attempt_log, next_attempt_at, created_at, finished_at, lease_until,
                  dead_letter_id, reason, replay_of
                FROM deliveries WHERE event_id IN (\(placeholders)) ORDER BY id
                """,
            arguments: StatementArguments(events.map(\.id))
        )
        let deliveries = try rows.map { row in
            let state: String = row["state"]
            let status = DeliveryRecord.status(state: state, leaseUntil: row["lease_until"], now: now)
            return (
                eventID: row["event_id"] as String,
                record: DeliveryRecord(
                    id: row["id"],
                    consumer: row["consumer"],
                    status: status,
                    attempts: try AttemptLog.decode(row["attempt_log"]),
                    nextAttemptAt: state == "pending" ? Date(milliseconds: row["next_attempt_at"]) : nil,
                    queuedAt: Date(milliseconds: row["created_at"]),
                    finishedAt: (row["finished_at"] as Int64?).map(Date.init(milliseconds:)),
                    deadLetterID: row["dead_letter_id"],
                    reason: row["reason"],
                    replayOf: row["replay_of"]
                )
            )
        }
        EventRecord.attach(deliveries, to: &events)
    }
}
