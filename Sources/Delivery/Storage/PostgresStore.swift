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
public final class PostgresStore: EventStore, DedupStore, DeliveryQueue, RetainingStore, SharedPauseStore, Sendable {
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
        /// Create or migrate the schema at start (a gateway); `false` only checks it (a command).
        public var migrate = true

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
    public static let schemaVersion = 4

    let configuration: Configuration
    let logger: Logger
    let now: @Sendable () -> Date
    let client: PostgresClient
    /// Tells this gateway's notifications from the others'.
    let instanceID = String(UInt64.random(in: 1...UInt64.max), radix: 36)
    private let runner: Task<Void, Never>
    let state = Mutex(State())

    struct State {
        var pending: [PendingAccept] = []
        var committing = false
        var lastWriteSucceeded = true
        /// The claim token of each delivery this gateway holds a lease on.
        var tokens: [Int64: Int64] = [:]
        /// The claim tokens of this gateway's probes that hold a consumer's probe lease.
        var probeTokens: Set<Int64> = []
        /// Outcomes waiting for their transaction, and whether the loop that writes them runs.
        var pendingOutcomes: [PendingOutcomes] = []
        var recordingOutcomes = false
        /// The last answer of ``checkWritable()`` and when it was taken.
        var writable: (at: ContinuousClock.Instant, ok: Bool)?
        /// The last count of the shared queue, per consumer, and when it was taken.
        var depths: (at: ContinuousClock.Instant, counts: [String: Int])?
        var commitCount = 0
        /// Consumers with deliveries committed since the last notification to the other gateways,
        /// whether the loop that sends them runs, and when it last sent one.
        var announcements: Set<String> = []
        var announcing = false
        var lastAnnouncement: ContinuousClock.Instant?
        var announcementsFailing = false
    }

    struct PendingAccept: Sendable {
        let event: IncomingEvent
        let continuation: CheckedContinuation<Result<AcceptOutcome, StoreError>, Never>
        let enqueuedAt: ContinuousClock.Instant
    }

    /// Connects, and creates or migrates the schema (waiting for another gateway that is migrating).
    ///
    /// - Throws: ``StoreError`` when the database cannot be reached, or the schema not created or
    ///   checked, within 60 s, or its schema is newer than this build knows.
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
        // Bounds on what one session may hold, shorter than a request's deadline where they can
        // be: a statement or a lock wait that outlives the request would keep its connection (and
        // its locks, which other gateways' batches then wait for) after the caller got its 503.
        // Pruning, replay and listings raise `statement_timeout` for their own transaction.
        let seconds = max(1, Int(configuration.operationTimeout.components.seconds))
        options.additionalStartupParameters = [
            ("application_name", "webhook-gateway"),
            ("search_path", configuration.schema),
            ("synchronous_commit", "on"),
            ("statement_timeout", "\(seconds)s"),
            ("lock_timeout", "\(max(1, seconds / 2))s"),
            ("idle_in_transaction_session_timeout", "\(seconds * 2)s"),
        ]
        var clientConfiguration = configuration.connection.clientConfiguration
        clientConfiguration.options = options
        let client = PostgresClient(configuration: clientConfiguration, backgroundLogger: logger)
        self.client = client
        self.runner = Task { await client.run() }
        do {
            try await PostgresMigration.run(
                client: client, schema: configuration.schema, logger: logger,
                timeout: .seconds(60), migrate: configuration.migrate)
        } catch {
            runner.cancel()
            throw error
        }
        await warnAboutClockSkew()
    }

    /// Leases and retry times are compared with each gateway's own clock: gateways whose clocks
    /// disagree by seconds take over each other's deliveries early (sent twice). Say so at start
    /// when this machine's clock differs from the database server's by more than a second.
    private func warnAboutClockSkew() async {
        let logger = self.logger
        let before = now()
        guard
            let serverMilliseconds = try? await run(
                "reading the database's clock", timeout: .seconds(2),
                { connection in
                    let rows = try await connection.query(
                        "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint", logger: logger)
                    for try await value in rows.decode(Int64.self) { return value }
                    return Int64(0)
                })
        else { return }
        let after = now()
        let local = (before.milliseconds + after.milliseconds) / 2
        let skew = Double(serverMilliseconds - local) / 1_000
        if abs(skew) > 1 {
            logger.warning(
                "this machine's clock differs from the database server's; keep the gateways' clocks synchronized (NTP): leases assume it",
                metadata: ["skewSeconds": "\(skew)"])
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

    /// A transaction for rare, large work (pruning, replay, listings) that may take up to 30 s:
    /// the session's short `statement_timeout` is raised for it alone.
    func longTransaction<T: Sendable>(
        _ what: String,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws(StoreError) -> T {
        let logger = self.logger
        return try await transaction(what, timeout: .seconds(30)) { connection in
            try await connection.query("SET LOCAL statement_timeout = '30s'", logger: logger)
            return try await body(connection)
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

    /// Whether the database answers and takes writes (a primary, not a standby in recovery), at
    /// most once a second: `/readyz` is open to anyone who reaches the admin port, and every
    /// gateway's probe would otherwise be a query. Reads no shared row, so the gateways' checks
    /// never wait for each other.
    public func checkWritable() async -> Bool {
        let now = ContinuousClock.now
        if let cached = state.withLock({ state in state.writable.flatMap { now - $0.at < .seconds(1) ? $0.ok : nil } }) {
            return cached
        }
        let logger = self.logger
        let ok: Bool
        do {
            ok = try await run("checking the store", timeout: .seconds(2)) { connection in
                let rows = try await connection.query("SELECT NOT pg_is_in_recovery()", logger: logger)
                for try await writable in rows.decode(Bool.self) { return writable }
                return false
            }
        } catch {
            ok = false
        }
        state.withLock { $0.writable = (now, ok) }
        return ok
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
        return try await longTransaction("pruning dedup keys") { connection in
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
        return try await longTransaction("pruning events") { connection in
            let marked = try await connection.query(
                """
                WITH done AS (
                  SELECT e.id FROM events e WHERE e.finished_at IS NULL
                    AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.state IN ('pending', 'dying'))
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
                    AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.state IN ('pending', 'dying'))
                  LIMIT \(limit) FOR UPDATE SKIP LOCKED),
                history AS (DELETE FROM deliveries d USING old WHERE d.event_id = old.id)
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

    /// The settings a pooled session runs with, for tests: `synchronous_commit`,
    /// `statement_timeout`, `lock_timeout`, `idle_in_transaction_session_timeout`.
    package func sessionSettings() async throws(StoreError) -> [String: String] {
        let logger = self.logger
        return try await run("reading session settings") { connection in
            var settings: [String: String] = [:]
            for name in ["synchronous_commit", "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"] {
                let rows = try await connection.query("SELECT current_setting(\(name))", logger: logger)
                for try await value in rows.decode(String.self) { settings[name] = value }
            }
            return settings
        }
    }

    /// Runs SQL statements in one transaction on the store's connection, for tests; returns the
    /// first column of the last statement's rows (cast it to text).
    package func executeForTests(_ statements: [String], inTransaction: Bool = true) async throws(StoreError) -> [String] {
        let logger = self.logger
        let body: @Sendable (PostgresConnection) async throws -> [String] = { connection in
            var values: [String] = []
            for statement in statements {
                values = []
                let rows = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                for try await value in rows.decode(String?.self) { values.append(value ?? "") }
            }
            return values
        }
        // CREATE DATABASE, for one, cannot run inside a transaction.
        if !inTransaction { return try await run("a test's statements", timeout: .seconds(30), body) }
        return try await longTransaction("a test's statements") { connection in
            var values: [String] = []
            for statement in statements {
                values = []
                let rows = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                for try await value in rows.decode(String?.self) { values.append(value ?? "") }
            }
            return values
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
        /// Encrypted, with the server's certificate checked against the trusted roots.
        case verifyCA = "verify-ca"
        /// As `verify-ca`, and the certificate must name the host.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var username: String
    package var password: String?
    public var database: String
    public var tls: TLSMode
    /// `sslrootcert`: a PEM file of the roots to trust (a private CA) instead of the system's.
    public var rootCertificate: String?

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
        var rootCertificate: String?
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                switch item.value ?? "" {
                case "disable": tls = .disable
                case "allow", "prefer": tls = .prefer
                case "require": tls = .require
                case "verify-ca": tls = .verifyCA
                case "verify-full": tls = .verifyFull
                default:
                    throw Invalid(
                        description: "sslmode \"\(item.value ?? "")\" is not one of disable, allow, prefer, require, verify-ca, verify-full"
                    )
                }
            case "sslrootcert":
                guard let path = item.value, !path.isEmpty else { throw Invalid(description: "sslrootcert names no file") }
                rootCertificate = path
            default:
                throw Invalid(description: "unknown URL parameter \"\(item.name)\" (supported: sslmode, sslrootcert)")
            }
        }
        self.init(
            host: host, port: components.port ?? 5432,
            username: user.removingPercentEncoding ?? user,
            password: components.password.map { $0.removingPercentEncoding ?? $0 },
            database: database.removingPercentEncoding ?? database,
            tls: tls)
        self.rootCertificate = rootCertificate
        if rootCertificate != nil && (tls == .disable || tls == .prefer || tls == .require) {
            throw Invalid(description: "sslrootcert needs sslmode=verify-ca or verify-full (the others do not check the certificate)")
        }
    }

    public var description: String {
        "postgres://\(username)\(password == nil ? "" : ":<redacted>")@\(host):\(port)/\(database)?sslmode=\(tls.rawValue)"
    }

    /// The TLS settings this URL asks for: `nil` for `disable`; `required` is false only for
    /// `prefer` (encrypted when the server offers it).
    var tlsSettings: (configuration: TLSConfiguration, required: Bool)? {
        switch tls {
        case .disable:
            return nil
        case .prefer, .require:
            // As libpq: encrypted, but the certificate is not checked (use verify-full for that).
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            return (configuration, tls == .require)
        case .verifyCA, .verifyFull:
            var configuration = TLSConfiguration.makeClientConfiguration()
            if tls == .verifyCA { configuration.certificateVerification = .noHostnameVerification }
            if let rootCertificate { configuration.trustRoots = .file(rootCertificate) }
            return (configuration, true)
        }
    }

    /// For the pool.
    var clientConfiguration: PostgresClient.Configuration {
        let tlsSetting: PostgresClient.Configuration.TLS =
            switch tlsSettings {
            case nil: .disable
            case (let configuration, true)?: .require(configuration)
            case (let configuration, false)?: .prefer(configuration)
            }
        return PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tlsSetting)
    }

    /// For a connection of its own (the one that listens for notifications).
    func connectionConfiguration(connectTimeout: Duration) throws -> PostgresConnection.Configuration {
        let tlsSetting: PostgresConnection.Configuration.TLS =
            switch tlsSettings {
            case nil: .disable
            case (let configuration, true)?: .require(try NIOSSLContext(configuration: configuration))
            case (let configuration, false)?: .prefer(try NIOSSLContext(configuration: configuration))
            }
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tlsSetting)
        configuration.options.connectTimeout = .milliseconds(connectTimeout.milliseconds)
        configuration.options.additionalStartupParameters = [("application_name", "webhook-gateway listener")]
        return configuration
    }
}

/// Runs an operation with a deadline. The caller is answered `.unavailable` when the deadline
/// passes; the operation itself is cancelled and finishes in the background (a query already sent
/// runs to its end or to the server's `statement_timeout`), so a database that stopped answering
/// never holds a request longer than the deadline.
enum Deadline {
    ///
    /// - Parameter cancellable: whether the caller's cancellation ends the wait at once, as the
    ///   deadline would (for work that only a shutdown cancels, such as the listening connection).
    static func run<T: Sendable>(
        _ what: String,
        timeout: Duration,
        cancellable: Bool = false,
        _ operation: @escaping @Sendable () async throws -> T
    ) async throws(StoreError) -> T {
        let box = OnceContinuation<T>()
        let timerHolder = Mutex<Task<Void, Never>?>(nil)
        let result: Result<T, StoreError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                box.set(continuation)
                let timer = Task<Void, Never> {
                    try? await Task.sleep(for: timeout)
                }
                timerHolder.withLock { $0 = timer }
                if cancellable && Task.isCancelled { timer.cancel() }
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
                    // Taken before the timer is cancelled: the timer's watcher then finds nothing to
                    // answer (the other way round, it could answer "no answer" to a finished work).
                    let continuation = box.take()
                    timer.cancel()
                    continuation?.resume(returning: result)
                }
                Task {
                    // Ends when the timer does: at the deadline, or at once when the work finished
                    // first (the timer is cancelled, so no sleeping task is left per operation).
                    await timer.value
                    guard let continuation = box.take() else { return }
                    work.cancel()
                    continuation.resume(returning: .failure(.unavailable("\(what): no answer from the database within \(timeout)")))
                }
            }
        } onCancel: {
            if cancellable { timerHolder.withLock { $0?.cancel() } }
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
            } else if error.code == .connectionError, let underlying = error.underlying {
                // A refused or lost connection, a TLS failure: NIO's and NIOSSL's errors name the
                // host and port, never the password.
                description = "PostgreSQL client: \(error.code): \(String(describing: underlying))"
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
