public import Foundation
public import Logging
import NIOCore
import PostgresNIO
import Synchronization
public import Verification

/// The shared store: one PostgreSQL database that any number of gateways use at once.
///
/// Every gateway reads and writes the same tables; what makes them behave as one gateway lives in
/// the database, not in any process:
///
/// - de-duplication is the primary key of `dedup_keys` (a second gateway's claim of the same key
///   waits for the first transaction and then finds the key taken);
/// - a delivery is attempted under a lease (`lease_until`) and a claim token: an outcome is written
///   only if the token is still the one this gateway set, so a gateway whose lease ran out cannot
///   overwrite the outcome of the gateway that took the delivery over;
/// - an order lane's next delivery is claimable only once every earlier delivery of the lane at
///   that consumer has left the queue (committed), whichever gateway held it;
/// - dead letters are rows of `dead_letters`, shared by every gateway.
///
/// Ingest uses group commit as the SQLite store does: the requests that arrive while a transaction
/// commits go together in the next one (see `PostgresStore+Ingest.swift`). The design and its
/// measurements are in docs/design.md, "Several gateways on PostgreSQL".
public final class PostgresStore: EventStore, DedupStore, DeliveryQueue, RetainingStore, Sendable {
    public struct Configuration: Sendable {
        public var connection: PostgresURL
        /// The most connections this gateway opens.
        public var maxConnections: Int
        /// How long a dedup key is kept after its event was received.
        public var dedupRetention: Duration
        /// The most requests committed in one transaction.
        public var maxBatchSize: Int
        /// The schema the tables live in (tests give each store its own).
        public var schema: String
        /// How long a request may wait for the database before it is answered 503.
        public var operationTimeout: Duration

        public init(
            connection: PostgresURL,
            maxConnections: Int = 16,
            dedupRetention: Duration = .seconds(7 * 86_400),
            maxBatchSize: Int = 512,
            schema: String = "public",
            operationTimeout: Duration = .seconds(5)
        ) {
            self.connection = connection
            self.maxConnections = maxConnections
            self.dedupRetention = dedupRetention
            self.maxBatchSize = maxBatchSize
            self.schema = schema
            self.operationTimeout = operationTimeout
        }
    }

    /// The schema version this build writes; a database with a newer one is refused.
    public static let schemaVersion = 1

    let configuration: Configuration
    let logger: Logger
    let now: @Sendable () -> Date
    let client: PostgresClient
    private let runner: Task<Void, Never>
    let state = Mutex(State())

    struct State {
        var pending: [PendingAccept] = []
        var committing = false
        var lastWriteSucceeded = true
        /// The claim token of each delivery this gateway holds a lease on.
        var tokens: [Int64: Int64] = [:]
        var commitCount = 0
    }

    struct PendingAccept: Sendable {
        let event: IncomingEvent
        let continuation: CheckedContinuation<Result<AcceptOutcome, StoreError>, Never>
    }

    /// Connects, and creates or migrates the schema (waiting for another gateway that is migrating).
    ///
    /// - Throws: ``StoreError`` when the database cannot be reached within the operation timeout
    ///   (twice that for the migration), or its schema is newer than this build knows.
    public init(
        configuration: Configuration,
        logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) async throws(StoreError) {
        self.configuration = configuration
        self.logger = logger
        self.now = now
        var options = PostgresClient.Configuration.Options()
        options.maximumConnections = max(2, configuration.maxConnections)
        options.connectTimeout = configuration.operationTimeout
        // Bounds on what one session may hold: a statement that runs away, or a transaction left
        // open by a stalled gateway, must not hold locks (and vacuum) for long.
        options.additionalStartupParameters = [
            ("application_name", "webhook-gateway"),
            ("search_path", configuration.schema),
            ("synchronous_commit", "on"),
            ("statement_timeout", "30s"),
            ("idle_in_transaction_session_timeout", "60s"),
            ("lock_timeout", "30s"),
        ]
        var clientConfiguration = configuration.connection.clientConfiguration
        clientConfiguration.options = options
        let client = PostgresClient(configuration: clientConfiguration, backgroundLogger: logger)
        self.client = client
        self.runner = Task { await client.run() }
        do {
            try await PostgresMigration.run(
                client: client, schema: configuration.schema, logger: logger,
                timeout: configuration.operationTimeout * 2)
        } catch {
            runner.cancel()
            throw error
        }
    }

    deinit {
        runner.cancel()
    }

    /// Closes the connections. The store is unusable afterwards.
    public func close() async {
        runner.cancel()
        await runner.value
    }

    /// Runs `body` on a pooled connection, answering `.unavailable` after the operation timeout
    /// (the database down or unreachable) or on any database error.
    func run<T: Sendable>(
        _ what: String,
        timeout: Duration? = nil,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws(StoreError) -> T {
        let client = self.client
        return try await Deadline.run(what, timeout: timeout ?? configuration.operationTimeout) {
            try await client.withConnection { connection in try await body(connection) }
        }
    }

    /// Runs `body` in one transaction (committed when it returns, rolled back when it throws).
    func transaction<T: Sendable>(
        _ what: String,
        timeout: Duration? = nil,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws(StoreError) -> T {
        let logger = self.logger
        return try await run(what, timeout: timeout) { connection in
            try await connection.withTransaction(logger: logger) { connection in try await body(connection) }
        }
    }

    // MARK: EventStore

    public func event(id: String) async throws(StoreError) -> StoredEvent? {
        let logger = self.logger
        return try await run("reading an event") { connection in
            let rows = try await connection.query(
                """
                SELECT id, source, event_type, dedup_key, order_id, received_at, headers, body
                FROM events WHERE id = \(id)
                """,
                logger: logger
            )
            for try await (id, source, eventType, dedupKey, orderID, receivedAt, headers, body) in rows.decode(
                (String, String, String?, String, String?, Int64, String, Data).self)
            {
                return StoredEvent(
                    id: id, source: source, eventType: eventType, dedupKey: dedupKey, orderID: orderID,
                    receivedAt: Date(milliseconds: receivedAt), headers: SQLiteStore.decodeHeaders(headers), body: body)
            }
            return nil
        }
    }

    public func checkWritable() async -> Bool {
        let logger = self.logger
        let now = self.now().milliseconds
        do {
            try await run("checking the store", timeout: .seconds(2)) { connection in
                try await connection.query("UPDATE health SET checked_at = \(now) WHERE id = 1", logger: logger)
                return ()
            }
            return true
        } catch {
            return false
        }
    }

    // MARK: DedupStore

    public func dedupEntry(for key: DedupKey) async throws(StoreError) -> DedupEntry? {
        let logger = self.logger
        let key = key.rawValue
        return try await run("reading a dedup key") { connection in
            let rows = try await connection.query(
                "SELECT key, event_id, expires_at FROM dedup_keys WHERE key = \(key)", logger: logger)
            for try await (key, eventID, expiresAt) in rows.decode((String, String, Int64).self) {
                return DedupEntry(key: key, eventID: eventID, expiresAt: Date(milliseconds: expiresAt))
            }
            return nil
        }
    }

    public func pruneExpiredDedupKeys(now: Date, limit: Int) async throws(StoreError) -> Int {
        let logger = self.logger
        let now = now.milliseconds
        return try await run("pruning dedup keys", timeout: .seconds(30)) { connection in
            // SKIP LOCKED: two gateways pruning at once take different keys instead of waiting.
            let rows = try await connection.query(
                """
                WITH expired AS (
                  SELECT key FROM dedup_keys WHERE expires_at <= \(now) LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                DELETE FROM dedup_keys d USING expired WHERE d.key = expired.key RETURNING 1
                """,
                logger: logger
            )
            var count = 0
            for try await _ in rows { count += 1 }
            return count
        }
    }

    // MARK: RetainingStore

    public func pruneFinishedEvents(now: Date, retention: Duration, limit: Int) async throws(StoreError) -> EventPruneResult {
        let logger = self.logger
        let nowMilliseconds = now.milliseconds
        let cutoff = nowMilliseconds - retention.milliseconds
        return try await transaction("pruning events", timeout: .seconds(30)) { connection in
            let marked = try await connection.query(
                """
                WITH done AS (
                  SELECT e.id FROM events e WHERE e.finished_at IS NULL
                    AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
                  LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                UPDATE events SET finished_at = \(nowMilliseconds) FROM done WHERE events.id = done.id RETURNING 1
                """,
                logger: logger
            )
            var markedCount = 0
            for try await _ in marked { markedCount += 1 }
            let pruned = try await connection.query(
                """
                WITH old AS (
                  SELECT e.id FROM events e WHERE e.finished_at IS NOT NULL AND e.finished_at <= \(cutoff)
                    AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
                  LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                DELETE FROM events USING old WHERE events.id = old.id RETURNING 1
                """,
                logger: logger
            )
            var prunedCount = 0
            for try await _ in pruned { prunedCount += 1 }
            return EventPruneResult(marked: markedCount, pruned: prunedCount)
        }
    }

    /// The number of stored events, for tests.
    package func eventCount() async throws(StoreError) -> Int {
        let logger = self.logger
        return try await run("counting events") { connection in
            let rows = try await connection.query("SELECT count(*) FROM events", logger: logger)
            for try await count in rows.decode(Int64.self) { return Int(count) }
            return 0
        }
    }

    /// How many group-commit transactions have committed since the store was opened.
    public var commitCount: Int { state.withLock { $0.commitCount } }
}

/// A PostgreSQL connection URL: `postgres://user:password@host:port/database?sslmode=…`.
///
/// Its description never shows the password.
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    public enum TLSMode: String, Sendable, CaseIterable {
        case disable, prefer, require
        /// Encrypted, with the server's certificate checked against the system's roots and its name.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var username: String
    var password: String?
    public var database: String
    public var tls: TLSMode

    /// Why a URL was refused; never quotes the password.
    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    public init(host: String, port: Int = 5432, username: String, password: String?, database: String, tls: TLSMode = .disable) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
    }

    public init(parsing text: String) throws(Invalid) {
        guard let components = URLComponents(string: text) else {
            throw Invalid(description: "not a URL (expected postgres://user:password@host:port/database)")
        }
        guard components.scheme == "postgres" || components.scheme == "postgresql" else {
            throw Invalid(description: "the scheme must be postgres:// or postgresql://")
        }
        guard let host = components.host, !host.isEmpty else { throw Invalid(description: "the URL names no host") }
        guard let user = components.user, !user.isEmpty else { throw Invalid(description: "the URL names no user") }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else { throw Invalid(description: "the URL names no database") }
        var tls = TLSMode.prefer
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                switch item.value ?? "" {
                case "disable": tls = .disable
                case "allow", "prefer": tls = .prefer
                case "require", "verify-ca": tls = .require
                case "verify-full": tls = .verifyFull
                default:
                    throw Invalid(
                        description: "sslmode \"\(item.value ?? "")\" is not one of disable, allow, prefer, require, verify-ca, verify-full"
                    )
                }
            default:
                throw Invalid(description: "unknown URL parameter \"\(item.name)\" (supported: sslmode)")
            }
        }
        self.init(
            host: host, port: components.port ?? 5432,
            username: user.removingPercentEncoding ?? user,
            password: components.password.map { $0.removingPercentEncoding ?? $0 },
            database: database.removingPercentEncoding ?? database,
            tls: tls)
    }

    public var description: String {
        "postgres://\(username)\(password == nil ? "" : ":<redacted>")@\(host):\(port)/\(database)?sslmode=\(tls.rawValue)"
    }

    var clientConfiguration: PostgresClient.Configuration {
        let tlsSetting: PostgresClient.Configuration.TLS
        switch tls {
        case .disable:
            tlsSetting = .disable
        case .prefer, .require:
            // As libpq: encrypted, but the certificate is not checked (use verify-full for that).
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            tlsSetting = tls == .prefer ? .prefer(configuration) : .require(configuration)
        case .verifyFull:
            tlsSetting = .require(.makeClientConfiguration())
        }
        return PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tlsSetting)
    }
}

/// Runs an operation with a deadline. The caller is answered `.unavailable` when the deadline
/// passes; the operation itself is cancelled and finishes in the background (a query already sent
/// runs to its end or to the server's `statement_timeout`), so a database that stopped answering
/// never holds a request longer than the deadline.
enum Deadline {
    static func run<T: Sendable>(
        _ what: String,
        timeout: Duration,
        _ operation: @escaping @Sendable () async throws -> T
    ) async throws(StoreError) -> T {
        let box = OnceContinuation<T>()
        let result: Result<T, StoreError> = await withCheckedContinuation { continuation in
            box.set(continuation)
            let work = Task {
                let result: Result<T, StoreError>
                do {
                    result = .success(try await operation())
                } catch let error as StoreError {
                    result = .failure(error)
                } catch let error as PostgresTransactionError where error.closureError is StoreError {
                    result = .failure(error.closureError as! StoreError)
                } catch {
                    result = .failure(.unavailable("\(what) failed", underlying: PostgresFailure(error)))
                }
                box.take()?.resume(returning: result)
            }
            Task {
                try? await Task.sleep(for: timeout)
                guard let continuation = box.take() else { return }
                work.cancel()
                continuation.resume(returning: .failure(.unavailable("\(what): no answer from the database within \(timeout)")))
            }
        }
        return try result.get()
    }
}

/// A continuation resumed by whichever comes first, the operation or its deadline.
private final class OnceContinuation<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<Result<T, StoreError>, Never>?>(nil)

    func set(_ value: CheckedContinuation<Result<T, StoreError>, Never>) {
        continuation.withLock { $0 = value }
    }

    func take() -> CheckedContinuation<Result<T, StoreError>, Never>? {
        continuation.withLock { $0.take() }
    }
}

/// A database error as text for logs: PostgreSQL's SQLSTATE and message, never the query's values
/// (postgres-nio's own description hides everything; its full reflection may show bound values).
struct PostgresFailure: Error, Sendable, CustomStringConvertible {
    let description: String
    /// The SQLSTATE, when the server answered with an error.
    let sqlState: String?

    init(_ error: any Error) {
        if let error = error as? PSQLError {
            let state = error.serverInfo?[.sqlState]
            sqlState = state
            if let message = error.serverInfo?[.message] {
                description = "PostgreSQL \(state ?? "error"): \(message)"
            } else {
                description = "PostgreSQL client: \(error.code)"
            }
        } else if let error = error as? PostgresTransactionError {
            let inner = error.closureError ?? error.commitError ?? error.beginError ?? error.rollbackError
            let failure = inner.map(PostgresFailure.init)
            sqlState = failure?.sqlState
            description = failure?.description ?? "PostgreSQL transaction failed"
        } else {
            sqlState = nil
            description = String(describing: error)
        }
    }
}
