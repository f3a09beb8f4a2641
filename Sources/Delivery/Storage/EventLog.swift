public import Foundation

/// Where a delivery stands, as the event log shows it.
public enum DeliveryStatus: String, Sendable, Hashable, CaseIterable {
    /// In its queue, waiting for its first or next attempt.
    case pending
    /// Leased: an attempt is under way.
    case delivering
    case delivered
    /// Failed for good (its dead letter is written, or about to be).
    case deadLettered = "dead_lettered"
}

/// The filter of `GET /admin/events`: every field that is set must match. `since` is included,
/// `until` excluded (both on `receivedAt`).
public struct EventQuery: Sendable, Hashable {
    public var source: String?
    public var eventType: String?
    public var orderID: String?
    public var dedupKey: String?
    /// Events with at least one delivery in this state (`delivering` counts as `pending`).
    public var status: DeliveryStatus?
    public var since: Date?
    public var until: Date?
    public var limit: Int
    /// Where the previous page ended.
    public var cursor: EventCursor?

    public init(
        source: String? = nil,
        eventType: String? = nil,
        orderID: String? = nil,
        dedupKey: String? = nil,
        status: DeliveryStatus? = nil,
        since: Date? = nil,
        until: Date? = nil,
        limit: Int = 100,
        cursor: EventCursor? = nil
    ) {
        self.source = source
        self.eventType = eventType
        self.orderID = orderID
        self.dedupKey = dedupKey
        self.status = status
        self.since = since
        self.until = until
        self.limit = limit
        self.cursor = cursor
    }

    /// The states of the stored rows that `status` selects.
    var storedStates: [String]? {
        switch status {
        case nil: nil
        case .pending, .delivering: ["pending"]
        case .delivered: ["delivered"]
        case .deadLettered: ["dying", "dead_lettered"]
        }
    }
}

/// A position in the event log (newest first): the last event of a page. Events received later
/// than the first page was read do not shift the pages after it.
public struct EventCursor: Sendable, Hashable {
    public var receivedAt: Int64
    public var id: String

    public init(receivedAt: Int64, id: String) {
        self.receivedAt = receivedAt
        self.id = id
    }

    /// `<milliseconds>.<event id>`: URL-safe as it is.
    public var text: String { "\(receivedAt).\(id)" }

    public init?(text: String) {
        guard let dot = text.firstIndex(of: "."), let milliseconds = Int64(text[..<dot]), milliseconds >= 0 else {
            return nil
        }
        let id = String(text[text.index(after: dot)...])
        guard !id.isEmpty, id.utf8.count <= 64,
            id.utf8.allSatisfy({
                $0 == UInt8(ascii: "_") || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0)
            })
        else { return nil }
        self.init(receivedAt: milliseconds, id: id)
    }
}

/// One delivery of an event, with its history.
public struct DeliveryRecord: Sendable, Hashable {
    public var id: Int64
    public var consumer: String
    public var status: DeliveryStatus
    /// Every attempt, oldest first.
    public var attempts: [DeadLetter.Attempt]
    /// When the next attempt is due (pending deliveries only).
    public var nextAttemptAt: Date?
    /// When it was queued (at receipt, or by a replay or redelivery).
    public var queuedAt: Date
    public var finishedAt: Date?
    public var deadLetterID: String?
    public var reason: String?
    /// Set for a delivery queued by a dead-letter replay (that dead letter's id) or by an
    /// operator's redelivery (`redeliver`).
    public var replayOf: String?

    public init(
        id: Int64, consumer: String, status: DeliveryStatus, attempts: [DeadLetter.Attempt], nextAttemptAt: Date?,
        queuedAt: Date, finishedAt: Date?, deadLetterID: String?, reason: String?, replayOf: String?
    ) {
        self.id = id
        self.consumer = consumer
        self.status = status
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.queuedAt = queuedAt
        self.finishedAt = finishedAt
        self.deadLetterID = deadLetterID
        self.reason = reason
        self.replayOf = replayOf
    }

    /// The status of a stored row: a pending row under a lease that has not run out is being
    /// attempted.
    static func status(state: String, leaseUntil: Int64?, now: Int64) -> DeliveryStatus {
        switch state {
        case "pending": (leaseUntil ?? 0) > now ? .delivering : .pending
        case "delivered": .delivered
        default: .deadLettered
        }
    }
}

/// An event as the event log shows it; `headers` and `body` only when one event is asked for.
public struct EventRecord: Sendable, Hashable {
    public var id: String
    public var source: String
    public var eventType: String?
    public var orderID: String?
    public var dedupKey: String
    public var receivedAt: Date
    public var sandbox: Bool
    public var deliveries: [DeliveryRecord]
    public var headers: [String: String]?
    public var body: Data?

    public init(
        id: String, source: String, eventType: String?, orderID: String?, dedupKey: String, receivedAt: Date, sandbox: Bool,
        deliveries: [DeliveryRecord], headers: [String: String]? = nil, body: Data? = nil
    ) {
        self.id = id
        self.source = source
        self.eventType = eventType
        self.orderID = orderID
        self.dedupKey = dedupKey
        self.receivedAt = receivedAt
        self.sandbox = sandbox
        self.deliveries = deliveries
        self.headers = headers
        self.body = body
    }

    var cursor: EventCursor { EventCursor(receivedAt: receivedAt.milliseconds, id: id) }
}

/// A page of the event log.
public struct EventPage: Sendable, Hashable {
    public var events: [EventRecord]
    /// The cursor of the next page; `nil` on the last.
    public var nextCursor: EventCursor?
}

/// What a redelivery did.
public struct RedeliveryResult: Sendable, Hashable {
    /// Consumers that got a new pending delivery.
    public var queued: [String] = []
    /// Consumers left out, with why.
    public var skipped: [(consumer: String, reason: String)] = []

    public init(queued: [String] = [], skipped: [(consumer: String, reason: String)] = []) {
        self.queued = queued
        self.skipped = skipped
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.queued == rhs.queued && lhs.skipped.map(\.consumer) == rhs.skipped.map(\.consumer)
            && lhs.skipped.map(\.reason) == rhs.skipped.map(\.reason)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(queued)
        for entry in skipped {
            hasher.combine(entry.consumer)
            hasher.combine(entry.reason)
        }
    }
}

/// The event log: every stored event (within `events.retention`) with its deliveries and their
/// attempts, for the operator.
public protocol EventLogStore: Sendable {
    /// The events matching `query`, newest first, with their deliveries (attempt lists included).
    func events(matching query: EventQuery, now: Date) async throws(StoreError) -> EventPage

    /// One event with its headers, body and deliveries; `nil` if unknown or pruned.
    func eventRecord(id: String, now: Date) async throws(StoreError) -> EventRecord?

    /// Queues a new delivery of a stored event to each of `consumers` (its original id, at the end
    /// of its order lane), in one durable transaction. A consumer with a delivery of this event
    /// still unfinished is skipped. `nil` if the event is unknown or pruned.
    func redeliver(eventID: String, consumers: [String], now: Date) async throws(StoreError) -> RedeliveryResult?
}

/// The marker of a redelivered delivery in `replay_of`.
let redeliveryMarker = "redeliver"

extension EventRecord {
    /// Groups delivery rows under their events, keeping the events' order.
    static func attach(_ deliveries: [(eventID: String, record: DeliveryRecord)], to events: inout [EventRecord]) {
        var byEvent: [String: [DeliveryRecord]] = [:]
        for (eventID, record) in deliveries { byEvent[eventID, default: []].append(record) }
        for index in events.indices {
            events[index].deliveries = (byEvent[events[index].id] ?? []).sorted { $0.id < $1.id }
        }
    }
}
