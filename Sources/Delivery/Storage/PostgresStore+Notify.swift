import Foundation
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// Telling the other gateways that new deliveries are queued.
///
/// The gateway that stores an event wakes its own workers at once; the others learn of it by a
/// NOTIFY on the schema's channel, sent after the batch committed (never inside the ingest
/// transaction), at most once every 100 ms per gateway with the consumers of everything committed
/// since the last one. Each gateway listens on one connection of its own, opened beside the pool,
/// that reconnects after a failure and checks itself every 30 s with a query (a connection that a
/// NAT or a failover left half-open would otherwise wait for ever without an error). Nothing depends on a notification arriving: the workers poll
/// the queue every second anyway, so a lost one (a reconnect, a full notification queue on the
/// server) costs at most that second.
extension PostgresStore {
    /// The longest payload sent; PostgreSQL refuses more than 8,000 bytes. A longer list of
    /// consumers is sent as "every consumer".
    static let maxNotificationPayload = 7_000

    /// One channel per schema, so that gateways on other schemas of the database are not woken.
    var notificationChannel: String {
        "webhook_gateway_" + String(PostgresMigration.stableHash(configuration.schema), radix: 16)
    }

    /// Queues a notification that deliveries for `consumers` were committed.
    func announce(consumers: Set<String>) {
        guard !consumers.isEmpty else { return }
        let start = state.withLock { state in
            state.announcements.formUnion(consumers)
            defer { state.announcing = true }
            return !state.announcing
        }
        if start { Task { await self.announceLoop() } }
    }

    private func announceLoop() async {
        let channel = notificationChannel
        let logger = self.logger
        while true {
            let wait = state.withLock { state in
                state.lastAnnouncement.map { .milliseconds(100) - $0.duration(to: .now) } ?? .zero
            }
            if wait > .zero { try? await Task.sleep(for: wait) }
            let consumers: [String] = state.withLock { state in
                defer { state.announcements = [] }
                if state.announcements.isEmpty {
                    state.announcing = false
                } else {
                    state.lastAnnouncement = .now
                }
                return state.announcements.sorted()
            }
            if consumers.isEmpty { return }
            let named = instanceID + Self.payloadSeparator + consumers.joined(separator: Self.payloadSeparator)
            let payload = named.utf8.count > Self.maxNotificationPayload ? instanceID : named
            do {
                try await run("announcing new deliveries", timeout: .seconds(2)) { connection in
                    try await connection.query("SELECT pg_notify(\(channel), \(payload))", logger: logger)
                    return ()
                }
                if state.withLock({ $0.announcementsFailing }) {
                    state.withLock { $0.announcementsFailing = false }
                    logger.notice("notifying the other gateways of new deliveries again")
                }
            } catch {
                // The others find the deliveries by their poll meanwhile. Said once per outage
                // (the server's notification queue can be full while writes still work).
                let first = state.withLock { state in
                    defer { state.announcementsFailing = true }
                    return !state.announcementsFailing
                }
                if first {
                    logger.warning(
                        "cannot notify the other gateways of new deliveries; they find them by polling every second",
                        metadata: ["error": "\(error)"])
                }
            }
        }
    }

    static let payloadSeparator = "\u{1F}"

    /// What a notification says: `nil` when it came from this gateway (its workers were woken
    /// already), `.all` when it names no consumer, or the consumers.
    enum Notification: Equatable {
        case all
        case consumers([String])
    }

    func parse(notification payload: String) -> Notification? {
        let parts = payload.components(separatedBy: Self.payloadSeparator)
        guard parts[0] != instanceID else { return nil }
        return parts.count == 1 ? .all : .consumers(Array(parts.dropFirst()))
    }

    /// Listens for the other gateways' notifications until the task is cancelled, calling `wake`
    /// with the consumers they queued deliveries for (`nil`: every consumer). Reconnects after a
    /// failure, waiting 1 s, then up to 10 s between attempts; `onListening` is called each time
    /// the listening connection is ready. Returns promptly when cancelled, even while connecting.
    public func listenForDeliveries(
        onListening: @escaping @Sendable () -> Void = {},
        wake: @escaping @Sendable ([String]?) -> Void
    ) async {
        let channel = notificationChannel
        let logger = self.logger
        let timeout = configuration.operationTimeout
        var failures = 0
        // Apart from the pool's ids, which count up from 0, in the log's `psql_connection_id`.
        var connectionID = 1_000_000
        while !Task.isCancelled {
            connectionID += 1
            var connection: PostgresConnection?
            do {
                let configuration = try self.configuration.connection.connectionConfiguration(connectTimeout: timeout)
                let id = connectionID
                // A connect cannot be interrupted in postgres-nio; on cancellation (a shutdown)
                // it finishes in the background and is closed there.
                connection = try await Deadline.run("connecting to listen", timeout: timeout, cancellable: true) {
                    let connection = try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger)
                    if Task.isCancelled { try? await connection.close() }
                    return connection
                }
                guard let connection else { break }
                try await connection.listen(on: channel) { notifications in
                    if failures > 0 { logger.notice("listening for other gateways' deliveries again") }
                    failures = 0
                    onListening()
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for try await notification in notifications {
                                switch self.parse(notification: notification.payload) {
                                case nil: break
                                case .all: wake(nil)
                                case .consumers(let consumers): wake(consumers)
                                }
                            }
                        }
                        group.addTask {
                            // The connection is alive: a query answered within the deadline.
                            while true {
                                try await Task.sleep(for: .seconds(30))
                                try await Deadline.run("checking the listening connection", timeout: timeout) {
                                    try await connection.query("SELECT 1", logger: logger)
                                    return ()
                                }
                            }
                        }
                        // Whichever ends first (the connection failed, the check timed out, or
                        // cancellation) ends the other.
                        try await group.next()
                        group.cancelAll()
                    }
                }
            } catch {
                if !Task.isCancelled {
                    failures += 1
                    if failures == 1 {
                        logger.warning(
                            "not listening for other gateways' deliveries (polling every second meanwhile); reconnecting",
                            metadata: ["error": "\(PostgresFailure(error))"])
                    }
                }
            }
            try? await connection?.close()
            if Task.isCancelled { return }
            try? await Task.sleep(for: .seconds(min(10, max(1, failures))))
        }
    }
}
