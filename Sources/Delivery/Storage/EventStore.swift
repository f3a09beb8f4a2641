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

    public init(
        id: String,
        source: String,
        eventType: String?,
        dedupKey: DedupKey,
        orderID: String?,
        receivedAt: Date,
        headers: [(String, String)],
        body: Data,
        consumers: [String]
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

/// A delivery waiting for its consumer.
public struct PendingDelivery: Sendable, Hashable {
    public var id: Int64
    public var eventID: String
    public var consumer: String
    public var attempts: Int
}

/// The per-consumer queues of pending deliveries.
public protocol DeliveryQueue: Sendable {
    /// Pending deliveries of `consumer`, oldest first.
    func pendingDeliveries(consumer: String, limit: Int) async throws(StoreError) -> [PendingDelivery]

    /// How many deliveries of `consumer` are pending.
    func depth(consumer: String) async throws(StoreError) -> Int

    /// Takes the deliveries out of their queues as dead letters. Call only after their lines are
    /// durably in the dead-letter file.
    func markDeadLettered(deliveryIDs: [Int64]) async throws(StoreError)
}
