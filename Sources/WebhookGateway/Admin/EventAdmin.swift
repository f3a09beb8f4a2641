import Delivery
import Foundation
import GatewayConfiguration
import Hummingbird
import Logging
import NIOCore

/// `GET /admin/events`, `GET /admin/events/{id}` and `POST /admin/events/{id}/redeliver`: the
/// event log, one event's whole story, and a new delivery of a stored event.
struct EventAdmin: Sendable {
    static let defaultLimit = 100
    static let maximumLimit = 1_000

    let store: any EventLogStore
    /// The configured consumers (as reloaded): who a redelivery may go to, and who an event
    /// matches now.
    let consumers: Reloadable<[GatewayConfiguration.Consumer]>
    let now: @Sendable () -> Date
    /// Called after a redelivery was queued, with the consumers that got one.
    let onQueued: @Sendable ([String]) -> Void
    let logger: Logger

    /// One delivery in the list (`attempts` a count) or in one event's answer (`attempts` the list).
    struct DeliveryItem: Encodable, Sendable {
        var record: DeliveryRecord
        var detailed: Bool

        enum CodingKeys: String, CodingKey {
            case consumer, status, attempts, lastAttemptAt, lastStatus, lastError, nextAttemptAt
            case queuedAt, finishedAt, deadLetterId, reason, replayOf
        }

        struct Attempt: Encodable {
            var attempt: DeadLetter.Attempt
            enum CodingKeys: String, CodingKey { case at, status, error, durationMs }
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(DeadLetter.rfc3339(attempt.at), forKey: .at)
                try container.encode(attempt.status, forKey: .status)
                try container.encode(attempt.error, forKey: .error)
                try container.encode(attempt.durationMs, forKey: .durationMs)
            }
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            let last = record.attempts.last
            try container.encode(record.consumer, forKey: .consumer)
            try container.encode(record.status.rawValue, forKey: .status)
            if detailed {
                try container.encode(record.attempts.map { Attempt(attempt: $0) }, forKey: .attempts)
                try container.encode(DeadLetter.rfc3339(record.queuedAt), forKey: .queuedAt)
                try container.encode(record.finishedAt.map(DeadLetter.rfc3339), forKey: .finishedAt)
                try container.encode(record.deadLetterID, forKey: .deadLetterId)
                try container.encode(record.reason, forKey: .reason)
                try container.encode(record.replayOf, forKey: .replayOf)
            } else {
                try container.encode(record.attempts.count, forKey: .attempts)
            }
            try container.encode(last.map { DeadLetter.rfc3339($0.at) }, forKey: .lastAttemptAt)
            try container.encode(last?.status, forKey: .lastStatus)
            try container.encode(last?.error, forKey: .lastError)
            try container.encode(record.nextAttemptAt.map(DeadLetter.rfc3339), forKey: .nextAttemptAt)
        }
    }

    /// One event as the API shows it.
    struct EventItem: Encodable, Sendable {
        var event: EventRecord
        var detailed: Bool

        enum CodingKeys: String, CodingKey {
            case id, source, eventType, orderId, dedupKey, receivedAt, sandbox, deliveries, headers, body, bodyBase64
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(event.id, forKey: .id)
            try container.encode(event.source, forKey: .source)
            try container.encode(event.eventType, forKey: .eventType)
            try container.encode(event.orderID, forKey: .orderId)
            try container.encode(event.dedupKey, forKey: .dedupKey)
            try container.encode(DeadLetter.rfc3339(event.receivedAt), forKey: .receivedAt)
            try container.encode(event.sandbox, forKey: .sandbox)
            try container.encode(event.deliveries.map { DeliveryItem(record: $0, detailed: detailed) }, forKey: .deliveries)
            guard detailed else { return }
            try container.encode(event.headers ?? [:], forKey: .headers)
            if let body = event.body {
                if let text = String(validating: body, as: UTF8.self) {
                    try container.encode(text, forKey: .body)
                } else {
                    try container.encode(body.base64EncodedString(), forKey: .bodyBase64)
                }
            }
        }
    }

    struct Page: Encodable, Sendable {
        var events: [EventItem]
        var nextCursor: String?

        enum CodingKeys: String, CodingKey { case events, nextCursor }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(events, forKey: .events)
            try container.encode(nextCursor, forKey: .nextCursor)
        }
    }

    struct RedeliveryAnswer: Encodable, Sendable {
        struct Skipped: Encodable, Sendable {
            var consumer: String
            var reason: String
        }
        var queued: [String]
        var skipped: [Skipped]
    }

    /// The query of `GET /admin/events`, from the request's parameters.
    static func query(_ parameters: Hummingbird.Parameters) throws(AdminRequestError) -> EventQuery {
        let known: Set = ["source", "eventType", "orderId", "dedupKey", "status", "since", "until", "limit", "cursor"]
        for (key, _) in parameters where !known.contains(String(key)) {
            throw AdminRequestError("unknown parameter \"\(key)\"; the filters are \(known.sorted().joined(separator: ", "))")
        }
        func text(_ key: String) throws(AdminRequestError) -> String? {
            let values = parameters.getAll(key)
            guard values.count <= 1 else { throw AdminRequestError("\(key) is given more than once") }
            guard let value = values.first else { return nil }
            guard !value.isEmpty else { throw AdminRequestError("\(key) is empty") }
            // No stored text holds a NUL (PostgreSQL's text cannot), and PostgreSQL refuses it in
            // a parameter: a 400 here, not a 503 from the store.
            guard !value.unicodeScalars.contains("\u{0}") else { throw AdminRequestError("\(key) contains a NUL character") }
            return String(value)
        }
        func time(_ key: String) throws(AdminRequestError) -> Date? {
            guard let value = try text(key) else { return nil }
            guard let date = DeadLetter.parseRFC3339(value) else {
                throw AdminRequestError("\(key) must be an RFC 3339 time such as 2026-11-24T10:00:00Z")
            }
            return date
        }
        var query = EventQuery(
            source: try text("source"),
            eventType: try text("eventType"),
            orderID: try text("orderId"),
            dedupKey: try text("dedupKey"),
            since: try time("since"),
            until: try time("until")
        )
        if let status = try text("status") {
            guard let value = DeliveryStatus(rawValue: status), value != .delivering else {
                throw AdminRequestError("status must be pending, delivered or dead_lettered")
            }
            query.status = value
        }
        if let limit = try text("limit") {
            guard let value = Int(limit), (1...maximumLimit).contains(value) else {
                throw AdminRequestError("limit must be an integer from 1 to \(maximumLimit)")
            }
            query.limit = value
        }
        if let cursor = try text("cursor") {
            guard let value = EventCursor(text: cursor) else {
                throw AdminRequestError("cursor is not a nextCursor of this API")
            }
            query.cursor = value
        }
        return query
    }

    /// The consumers a redelivery goes to: those named (each must be configured), or by default
    /// every consumer the event matches now. A named consumer whose subscription (sources, events,
    /// sandbox) does not take the event is left out with the reason: the token redelivers, it does
    /// not route an event where the configuration would never send it (a sandbox payment to a
    /// production consumer, a `_gateway` report to a consumer that did not ask for them).
    func redeliveryTargets(
        named: [String]?, event: EventRecord
    ) throws(AdminRequestError) -> (targets: [String], unsubscribed: [(consumer: String, reason: String)]) {
        let configured = consumers.value
        let subscribed: (GatewayConfiguration.Consumer) -> Bool = { consumer in
            guard let eventType = event.eventType else { return false }
            return consumer.matches(source: event.source, eventType: eventType, sandbox: event.sandbox)
        }
        guard let named else { return (configured.filter(subscribed).map(\.name), []) }
        guard !named.isEmpty else { throw AdminRequestError("consumers is empty; leave it out for every matching consumer") }
        var targets: [String] = []
        var unsubscribed: [(consumer: String, reason: String)] = []
        for name in named {
            guard let consumer = configured.first(where: { $0.name == name }) else {
                throw AdminRequestError("no consumer named \(name)")
            }
            if subscribed(consumer) {
                targets.append(name)
            } else if !unsubscribed.contains(where: { $0.consumer == name }) {
                unsubscribed.append((name, "the consumer does not subscribe to this event (sources, events or sandbox)"))
            }
        }
        return (targets, unsubscribed)
    }

    /// The body of a redelivery: `{"consumers": [...]}`, or empty.
    static func redeliveryConsumers(_ body: ByteBuffer) throws(AdminRequestError) -> [String]? {
        guard body.readableBytes > 0 else { return nil }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] else {
            throw AdminRequestError("the body must be a JSON object")
        }
        if let unknown = object.keys.sorted().first(where: { $0 != "consumers" }) {
            throw AdminRequestError("unknown key \"\(unknown)\"")
        }
        guard let value = object["consumers"] else { return nil }
        guard let names = value as? [String] else { throw AdminRequestError("consumers must be a list of consumer names") }
        return names
    }
}

extension EventAdmin {
    /// Adds the routes to `router`.
    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/admin/events") { request, _ in
            let query: EventQuery
            do {
                query = try Self.query(request.uri.queryParameters)
            } catch let error as AdminRequestError {
                return Response.json(.badRequest, ["error": error.message])
            }
            do {
                let page = try await store.events(matching: query, now: now())
                return try ConsumerAdmin.json(
                    .ok,
                    Page(events: page.events.map { EventItem(event: $0, detailed: false) }, nextCursor: page.nextCursor?.text))
            } catch let error as StoreError {
                return Response.json(.serviceUnavailable, ["error": "the store is unavailable: \(error.detail)"])
            }
        }
        router.get("/admin/events/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            // An id with a NUL is no stored event's (and PostgreSQL refuses it as a parameter).
            guard !id.unicodeScalars.contains("\u{0}") else {
                return Response.json(.notFound, ["error": "no stored event with that id"])
            }
            do {
                guard let event = try await store.eventRecord(id: id, now: now()) else {
                    return Response.json(.notFound, ["error": "no stored event \(id) (unknown, or pruned after events.retention)"])
                }
                return try ConsumerAdmin.json(.ok, EventItem(event: event, detailed: true))
            } catch let error as StoreError {
                return Response.json(.serviceUnavailable, ["error": "the store is unavailable: \(error.detail)"])
            }
        }
        router.post("/admin/events/:id/redeliver") { request, context in
            let id = context.parameters.get("id") ?? ""
            // An id with a NUL is no stored event's (and PostgreSQL refuses it as a parameter).
            guard !id.unicodeScalars.contains("\u{0}") else {
                return Response.json(.notFound, ["error": "no stored event with that id"])
            }
            let body = try await request.body.collect(upTo: 1_048_576)
            do {
                let named = try Self.redeliveryConsumers(body)
                guard let event = try await store.eventRecord(id: id, now: now()) else {
                    return Response.json(.notFound, ["error": "no stored event \(id) (unknown, or pruned after events.retention)"])
                }
                let (targets, unsubscribed) = try redeliveryTargets(named: named, event: event)
                guard var result = try await store.redeliver(eventID: id, consumers: targets, now: now()) else {
                    return Response.json(.notFound, ["error": "no stored event \(id) (unknown, or pruned after events.retention)"])
                }
                result.skipped += unsubscribed
                if !result.queued.isEmpty {
                    onQueued(result.queued)
                    logger.notice(
                        "event redelivered by an operator",
                        metadata: ["event.id": "\(id)", "consumers": "\(result.queued.joined(separator: ","))"])
                }
                return try ConsumerAdmin.json(
                    .ok,
                    RedeliveryAnswer(
                        queued: result.queued,
                        skipped: result.skipped.map { RedeliveryAnswer.Skipped(consumer: $0.consumer, reason: $0.reason) }))
            } catch let error as AdminRequestError {
                return Response.json(.badRequest, ["error": error.message])
            } catch let error as StoreError {
                return Response.json(.serviceUnavailable, ["error": "the store is unavailable: \(error.detail)"])
            }
        }
    }
}
