public import Foundation
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The event log on PostgreSQL: the same searches as on SQLite, over every gateway's events.
///
/// The filters have indexes (schema v4), ordered newest first, so that a page reads about `limit`
/// rows. A redelivery locks its event's row, so two redeliveries of one event (from one gateway or
/// two) queue one delivery per consumer, not two.
extension PostgresStore: EventLogStore {
    public func events(matching query: EventQuery, now: Date) async throws(StoreError) -> EventPage {
        let logger = self.logger
        let nowMilliseconds = now.milliseconds
        var conditions: [String] = []
        var bindings = PostgresBindings(capacity: 10)
        func bind(_ condition: (String) -> String, _ value: some PostgresNonThrowingEncodable & Sendable) {
            bindings.append(value)
            conditions.append(condition("$\(bindings.count)"))
        }
        if let source = query.source { bind({ "e.source = \($0)" }, source) }
        if let eventType = query.eventType { bind({ "e.event_type = \($0)" }, eventType) }
        if let orderID = query.orderID { bind({ "e.order_id = \($0)" }, orderID) }
        if let dedupKey = query.dedupKey { bind({ "e.dedup_key = \($0)" }, dedupKey) }
        if let since = query.since { bind({ "e.received_at >= \($0)" }, since.milliseconds) }
        if let until = query.until { bind({ "e.received_at < \($0)" }, until.milliseconds) }
        if let cursor = query.cursor {
            bindings.append(cursor.receivedAt)
            bindings.append(cursor.id)
            conditions.append("(e.received_at, e.id) < ($\(bindings.count - 1), $\(bindings.count))")
        }
        if let states = query.storedStates {
            bind({ "EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.state = ANY(\($0)))" }, states)
        }
        bindings.append(Int64(query.limit + 1))
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql = """
            SELECT e.id, e.source, e.event_type, e.order_id, e.dedup_key, e.received_at, e.sandbox
            FROM events e \(filter)
            ORDER BY e.received_at DESC, e.id DESC LIMIT $\(bindings.count)
            """
        let statement = PostgresQuery(unsafeSQL: sql, binds: bindings)
        let limit = query.limit
        return try await run("searching the event log", timeout: .seconds(10)) { connection in
            let rows = try await connection.query(statement, logger: logger)
            var events: [EventRecord] = []
            var more = false
            for try await (id, source, eventType, orderID, dedupKey, receivedAt, sandbox) in rows.decode(
                (String, String, String?, String?, String, Int64, Bool).self)
            {
                if events.count == limit {
                    more = true
                    continue
                }
                events.append(
                    EventRecord(
                        id: id, source: source, eventType: eventType, orderID: orderID, dedupKey: dedupKey,
                        receivedAt: Date(milliseconds: receivedAt), sandbox: sandbox, deliveries: []))
            }
            try await Self.attachDeliveries(to: &events, connection: connection, now: nowMilliseconds, logger: logger)
            return EventPage(events: events, nextCursor: more ? events.last?.cursor : nil)
        }
    }

    public func eventRecord(id: String, now: Date) async throws(StoreError) -> EventRecord? {
        let logger = self.logger
        let nowMilliseconds = now.milliseconds
        return try await run("reading an event", timeout: .seconds(10)) { connection in
            let rows = try await connection.query(
                """
                SELECT id, source, event_type, order_id, dedup_key, received_at, sandbox, headers, body
                FROM events WHERE id = \(id)
                """,
                logger: logger)
            var found: EventRecord?
            for try await (id, source, eventType, orderID, dedupKey, receivedAt, sandbox, headers, body) in rows.decode(
                (String, String, String?, String?, String, Int64, Bool, String, Data).self)
            {
                found = EventRecord(
                    id: id, source: source, eventType: eventType, orderID: orderID, dedupKey: dedupKey,
                    receivedAt: Date(milliseconds: receivedAt), sandbox: sandbox, deliveries: [],
                    headers: SQLiteStore.decodeHeaders(headers), body: body)
            }
            guard let found else { return nil }
            var events = [found]
            try await Self.attachDeliveries(to: &events, connection: connection, now: nowMilliseconds, logger: logger)
            return events[0]
        }
    }

    public func redeliver(eventID: String, consumers: [String], now: Date) async throws(StoreError) -> RedeliveryResult? {
        let logger = self.logger
        let nowMilliseconds = now.milliseconds
        let marker = redeliveryMarker
        let result: RedeliveryResult? = try await transaction("redelivering an event") { connection in
            let event = try await connection.query(
                "SELECT source, order_id FROM events WHERE id = \(eventID) FOR UPDATE", logger: logger)
            var lane: String??
            for try await (source, orderID) in event.decode((String, String?).self) {
                lane = .some(orderID.map { OrderLane.key(source: source, orderID: $0) })
            }
            guard let lane else { return nil }
            var result = RedeliveryResult()
            var seen = Set<String>()
            for consumer in consumers where seen.insert(consumer).inserted {
                let inserted = try await connection.query(
                    """
                    INSERT INTO deliveries (event_id, consumer, lane, state, next_attempt_at, created_at, replay_of)
                    SELECT \(eventID), \(consumer), \(lane), 'pending', \(nowMilliseconds), \(nowMilliseconds), \(marker)
                    WHERE NOT EXISTS (SELECT 1 FROM deliveries WHERE event_id = \(eventID) AND consumer = \(consumer)
                      AND state IN ('pending', 'dying'))
                    RETURNING 1
                    """,
                    logger: logger)
                var queued = false
                for try await _ in inserted { queued = true }
                if queued {
                    result.queued.append(consumer)
                } else {
                    result.skipped.append((consumer, "a delivery of this event is still pending"))
                }
            }
            if !result.queued.isEmpty {
                try await connection.query("UPDATE events SET finished_at = NULL WHERE id = \(eventID)", logger: logger)
            }
            return result
        }
        if result?.queued.isEmpty == false { state.withLock { $0.depths = nil } }
        return result
    }

    private static func attachDeliveries(
        to events: inout [EventRecord], connection: PostgresConnection, now: Int64, logger: Logger
    ) async throws {
        guard !events.isEmpty else { return }
        let rows = try await connection.query(
            """
            SELECT id, event_id, consumer, state, attempt_log, next_attempt_at, created_at, finished_at, lease_until,
              dead_letter_id, reason, replay_of
            FROM deliveries WHERE event_id = ANY(\(events.map(\.id))) ORDER BY id
            """,
            logger: logger)
        var deliveries: [(eventID: String, record: DeliveryRecord)] = []
        for try await (
            id, eventID, consumer, state, attemptLog, nextAttemptAt, createdAt, finishedAt, leaseUntil, deadLetterID, reason,
            replayOf
        ) in rows.decode(
            (Int64, String, String, String, String, Int64, Int64, Int64?, Int64?, String?, String?, String?).self)
        {
            deliveries.append(
                (
                    eventID,
                    DeliveryRecord(
                        id: id,
                        consumer: consumer,
                        status: DeliveryRecord.status(state: state, leaseUntil: leaseUntil, now: now),
                        attempts: try AttemptLog.decode(attemptLog),
                        nextAttemptAt: state == "pending" ? Date(milliseconds: nextAttemptAt) : nil,
                        queuedAt: Date(milliseconds: createdAt),
                        finishedAt: finishedAt.map(Date.init(milliseconds:)),
                        deadLetterID: deadLetterID,
                        reason: reason,
                        replayOf: replayOf
                    )
                ))
        }
        EventRecord.attach(deliveries, to: &events)
    }
}
