public import Foundation
public import Verification

/// An event that verified and is about to be stored, with the consumers it goes to.
public struct IncomingEvent: Sendable {
    public var id: String
    public var source: String
    /// `nil` for a verified body that is not an envelope.
    public var eventType: String?
    public var dedupKey: DedupKey
    /// The business order, for per-order sequencing at each consumer.
    public var orderID: String?
    public var receivedAt: Date
    /// The inbound request's headers as received, names lowercased.
    public var headers: [(String, String)]
    public var body: Data
    /// One pending delivery is created per name.
    public var consumers: [String]
    /// Set for an event that goes straight to the dead letters of its consumers (a verified body
    /// that is not an envelope): the reason written in the dead-letter line.
    public var deadLetterReason: String?
    /// A TikTok sandbox event (`content.is_sandbox` true): its deliveries carry `webhook-sandbox: true`.
    public var sandbox: Bool

    public init(
        id: String,
        source: String,
        eventType: String?,
        dedupKey: DedupKey,
        orderID: String?,
        receivedAt: Date,
        headers: [(String, String)],
        body: Data,
        consumers: [String],
        deadLetterReason: String? = nil,
        sandbox: Bool = false
    ) {
        self.id = id
        self.source = source
        self.eventType = eventType
        self.dedupKey = dedupKey
        self.orderID = orderID
        self.receivedAt = receivedAt
        self.headers = headers
        self.body = body
        self.consumers = consumers
        self.deadLetterReason = deadLetterReason
        self.sandbox = sandbox
    }
}

/// What ``EventStore/accept(_:)`` did.
public enum AcceptOutcome: Sendable, Hashable {
    /// Stored, with its deliveries, on stable storage.
    case accepted(eventID: String)
    /// The key was already claimed (and not expired) by the event with this id; nothing was written.
    case duplicate(firstEventID: String)
}

/// A stored event, read back.
public struct StoredEvent: Sendable, Hashable {
    public var id: String
    public var source: String
    public var eventType: String?
    public var dedupKey: String
    public var orderID: String?
    public var receivedAt: Date
    public var headers: [String: String]
    public var body: Data
}

/// Durable storage of accepted events.
///
/// Implementations must make ``accept(_:)`` atomic and durable: when it returns `.accepted`, the
/// event, its dedup claim and its pending deliveries are on stable storage together; when it
/// throws, none of them is.
public protocol EventStore: Sendable {
    /// Claims the event's dedup key and stores the event and its pending deliveries, in one
    /// durable transaction. Concurrent calls with the same key store one event.
    func accept(_ event: IncomingEvent) async throws(StoreError) -> AcceptOutcome

    /// The event with this id, if stored.
    func event(id: String) async throws(StoreError) -> StoredEvent?

    /// Whether a durable write succeeds right now (for `/readyz`).
    func checkWritable() async -> Bool
}

/// A claimed de-duplication key.
public struct DedupEntry: Sendable, Hashable {
    public var key: String
    public var eventID: String
    public var expiresAt: Date
}

/// The de-duplication keys and their expiry.
public protocol DedupStore: Sendable {
    /// The entry for `key`, expired or not, if it is still stored.
    func dedupEntry(for key: DedupKey) async throws(StoreError) -> DedupEntry?

    /// Deletes up to `limit` keys that expired before `now`; returns how many.
    func pruneExpiredDedupKeys(now: Date, limit: Int) async throws(StoreError) -> Int
}

/// A delivery leased to this gateway for one attempt, with what the attempt needs.
public struct ClaimedDelivery: Sendable, Hashable {
    public var id: Int64
    public var eventID: String
    public var consumer: String
    public var source: String
    public var eventType: String?
    public var dedupKey: String
    public var receivedAt: Date
    /// The exact bytes that were received.
    public var body: Data
    /// The attempts made before this one, oldest first.
    public var attempts: [DeadLetter.Attempt]
    /// A TikTok sandbox event: the delivery carries `webhook-sandbox: true`.
    public var sandbox = false
}

/// How a claimed delivery ended; ``DeliveryQueue/finish(_:)`` records it and releases the lease.
public enum DeliveryUpdate: Sendable, Hashable {
    /// Delivered: the delivery leaves the queue; `attempts` (the last one the success) stay in
    /// its history.
    case delivered(id: Int64, attempts: [DeadLetter.Attempt] = [])
    /// Failed and will be tried again, not before `nextAttemptAt`.
    case retry(id: Int64, attempts: [DeadLetter.Attempt], nextAttemptAt: Date)
    /// Failed for good: the delivery becomes a dead letter. It stays in the queue, no longer
    /// deliverable and no longer holding back its order, until its line is in the dead-letter file
    /// (see ``DeliveryQueue/deadLettersToWrite(limit:)``).
    case deadLetter(id: Int64, attempts: [DeadLetter.Attempt], reason: String, at: Date)

    var id: Int64 {
        switch self {
        case .delivered(let id, _), .retry(let id, _, _), .deadLetter(let id, _, _, _): id
        }
    }
}

/// A delivery that was decided to be a dead letter, with its line, waiting to be written.
public struct DeadLetterToWrite: Sendable, Hashable {
    public var deliveryID: Int64
    public var deadLetter: DeadLetter

    /// For stand-in queues in tests.
    package init(deliveryID: Int64, deadLetter: DeadLetter) {
        self.deliveryID = deliveryID
        self.deadLetter = deadLetter
    }
}

/// What a replay did, by dead-letter id.
public struct ReplayResult: Sendable, Hashable {
    /// Re-queued (or, for a dry run, would be).
    public var replayed: [String] = []
    /// Replayed before and not forced.
    public var skipped: [String] = []

    public init(replayed: [String] = [], skipped: [String] = []) {
        self.replayed = replayed
        self.skipped = skipped
    }
}

/// The per-consumer queues of pending deliveries.
public protocol DeliveryQueue: Sendable {
    /// How many deliveries of `consumer` have not left the queue (pending, or dead letters whose
    /// line is not written yet).
    func depth(consumer: String) async throws(StoreError) -> Int

    /// Takes the deliveries out of their queues as dead letters. Call only after their lines are
    /// durably in the dead-letter file.
    func markDeadLettered(deliveryIDs: [Int64]) async throws(StoreError)

    /// Leases up to `limit` deliveries of `consumer` until `leaseUntil` among those that are
    /// pending, not leased, due at `now`, and not held back by an earlier pending delivery of the
    /// same order to the same consumer: oldest first, or, `asProbe` (a probe of a paused consumer),
    /// the one whose next attempt is earliest.
    func claim(
        consumer: String,
        limit: Int,
        now: Date,
        leaseUntil: Date,
        asProbe: Bool
    ) async throws(StoreError) -> [ClaimedDelivery]

    /// Records how claimed deliveries ended, durably, and releases their leases.
    func finish(_ updates: [DeliveryUpdate]) async throws(StoreError)

    /// Releases every lease (at startup: leases held by a process that died are void, and their
    /// deliveries are sent again).
    func releaseAllLeases() async throws(StoreError) -> Int

    /// Deliveries decided to be dead letters whose lines are not yet written, oldest first.
    func deadLettersToWrite(limit: Int) async throws(StoreError) -> [DeadLetterToWrite]

    /// Re-queues dead letters for `consumer` with their original event ids, in one durable
    /// transaction. A dead letter replayed before is skipped unless `force`; `dryRun` only reports.
    func replay(
        _ deadLetters: [DeadLetter],
        consumer: String,
        force: Bool,
        dryRun: Bool,
        now: Date
    ) async throws(StoreError) -> ReplayResult

    /// When each of the dead letters of `consumer` that were replayed was last replayed, by id.
    func replayTimes(consumer: String) async throws(StoreError) -> [String: Date]
}

/// An operator's pause of consumers ("hold"): nothing at all is sent to a held consumer, not even a
/// probe, until it is released. Kept in the store, so it survives restarts and, with PostgreSQL,
/// holds for every gateway; ``DeliveryQueue/claim(consumer:limit:now:leaseUntil:asProbe:)``
/// leases nothing for a held consumer, checked in its own transaction.
public protocol ConsumerControlStore: Sendable {
    /// The consumers an operator paused, with when each was paused.
    func consumerHolds() async throws(StoreError) -> [String: Date]

    /// Pauses (`held`) or resumes a consumer; durable when it returns. Pausing a paused consumer
    /// keeps its first time.
    func setConsumerHold(consumer: String, held: Bool, at: Date) async throws(StoreError)

    /// When the oldest delivery still queued for `consumer` was queued (`nil`: none).
    func oldestPending(consumer: String) async throws(StoreError) -> Date?
}

/// The pause of a consumer as several gateways share it (PostgreSQL). A store with one gateway
/// keeps none: every gateway's pause is its own, and these do nothing.
public protocol SharedPauseStore: Sendable {
    /// Whether the consumer is paused for every gateway.
    func sharedPause(consumer: String) async throws(StoreError) -> Bool

    /// Records that this gateway paused (or resumed) the consumer, for the others.
    func recordPause(consumer: String, paused: Bool, at: Date) async throws(StoreError)
}
