public import Foundation
import GRDB
import GRDBSQLite
public import Logging
import Synchronization
public import Verification

/// The embedded store: one SQLite database in WAL mode with `synchronous=FULL`.
///
/// Writes of accepted events go through group commit (see `SQLiteStore+GroupCommit.swift`): the
/// requests that arrive while a transaction is committing are committed together in the next one,
/// so throughput is not bound by one fsync per request.
///
/// The store watches its own file: if the database file is deleted or replaced under it, the batch
/// fails (503) and the next one opens the file at the configured path anew, creating an empty
/// database if there is none (the dedup history that was in the lost file is gone with it; the
/// gateway logs this as critical).
public final class SQLiteStore: EventStore, DedupStore, DeliveryQueue, RetainingStore, Sendable {
    public struct Configuration: Sendable {
        /// The database file. Its folder is created if missing.
        public var path: String
        /// How long a dedup key is kept after its event was received.
        public var dedupRetention: Duration
        /// The most requests committed in one transaction.
        public var maxBatchSize: Int

        public init(path: String, dedupRetention: Duration = .seconds(7 * 86_400), maxBatchSize: Int = 512) {
            self.path = path
            self.dedupRetention = dedupRetention
            self.maxBatchSize = maxBatchSize
        }
    }

    let configuration: Configuration
    let logger: Logger
    let now: @Sendable () -> Date
    let state: Mutex<State>
    /// Every write transaction of group commit runs here, off the concurrency pool, because SQLite
    /// blocks its thread for the fsync.
    let commitQueue = DispatchQueue(label: "webhook-gateway.store.commit")
    /// Reads of the database, for tests (an atomic: no lock on the read path).
    let readCounter = Atomic<Int>(0)

    struct State {
        var database: OpenDatabase?
        var pending: [PendingWork] = []
        var commitLoopScheduled = false
        var lastWriteSucceeded = true
        /// Write transactions committed by group commit, for tests and metrics.
        var commitCount = 0
        /// Unfinished deliveries per consumer: counted when the database is opened, then kept.
        var depths = QueueDepths()
    }

    struct OpenDatabase: @unchecked Sendable {
        // DatabasePool is thread-safe; it is shared between the commit queue and readers.
        let pool: DatabasePool
        let identity: FileIdentity
        /// The queue depths found when the database was opened.
        let depths: QueueDepths
    }

    /// Opens (creating if needed) the database at `configuration.path` and migrates it.
    ///
    /// - Parameter now: the clock, injected so that dedup expiry is tested without waiting.
    public init(
        configuration: Configuration,
        logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) throws(StoreError) {
        self.configuration = configuration
        self.logger = logger
        self.now = now
        self.state = Mutex(State())
        let database = try Self.open(path: configuration.path)
        state.withLock {
            $0.database = database
            $0.depths = database.depths
        }
    }

    static func open(path: String) throws(StoreError) -> OpenDatabase {
        do {
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            var configuration = GRDB.Configuration()
            configuration.busyMode = .timeout(5)
            let pool = try DatabasePool(path: path, configuration: configuration)
            // DatabasePool turns WAL on and sets synchronous=NORMAL on its writer connection, which
            // can lose the last commits on power loss. FULL makes every commit fsync the log
            // before it returns: the durability rule depends on it. All writes use this connection.
            try pool.barrierWriteWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = FULL")
            }
            try Self.migrator.migrate(pool)
            guard let identity = FileIdentity(path: path) else {
                throw StoreError.unavailable("database file vanished while opening")
            }
            let depths = try pool.read { db in
                var depths = QueueDepths()
                let rows = try Row.fetchCursor(
                    db,
                    sql: """
                        SELECT consumer, COUNT(*) FROM deliveries WHERE state = 'pending' GROUP BY consumer
                        UNION ALL
                        SELECT consumer, COUNT(*) FROM deliveries WHERE state = 'dying' GROUP BY consumer
                        """
                )
                while let row = try rows.next() { depths.add(row[1], consumer: row[0]) }
                return depths
            }
            return OpenDatabase(pool: pool, identity: identity, depths: depths)
        } catch let error as StoreError {
            throw error
        } catch {
            throw .unavailable("cannot open the database at \(path)", underlying: SendableError(error))
        }
    }

    /// The open database, after checking that its file is still the one that was opened.
    func currentDatabase() throws(StoreError) -> OpenDatabase {
        let database = state.withLock { $0.database }
        if let database {
            guard FileIdentity(path: configuration.path) == database.identity else {
                state.withLock { $0.database = nil }
                logger.critical(
                    "database file deleted or replaced; reopening at its path",
                    metadata: ["path": "\(configuration.path)"]
                )
                throw .unavailable("the database file was deleted or replaced")
            }
            return database
        }
        let reopened = try Self.open(path: configuration.path)
        state.withLock {
            $0.database = reopened
            $0.depths = reopened.depths
        }
        logger.warning("database reopened", metadata: ["path": "\(configuration.path)"])
        return reopened
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(StoreError) -> T {
        let database = try currentDatabase()
        readCounter.add(1, ordering: .relaxed)
        do {
            return try await database.pool.read(body)
        } catch {
            throw .unavailable("read failed", underlying: SendableError(error))
        }
    }

    // MARK: EventStore

    public func event(id: String) async throws(StoreError) -> StoredEvent? {
        try await read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM events WHERE id = ?", arguments: [id]) else {
                return nil
            }
            let headersJSON: String = row["headers"]
            let headers = (try? JSONDecoder().decode([String: String].self, from: Data(headersJSON.utf8))) ?? [:]
            return StoredEvent(
                id: row["id"],
                source: row["source"],
                eventType: row["event_type"],
                dedupKey: row["dedup_key"],
                orderID: row["order_id"],
                receivedAt: Date(milliseconds: row["received_at"]),
                headers: headers,
                body: row["body"]
            )
        }
    }

    // MARK: DedupStore

    public func dedupEntry(for key: DedupKey) async throws(StoreError) -> DedupEntry? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM dedup_keys WHERE key = ?", arguments: [key.rawValue]).map {
                DedupEntry(key: $0["key"], eventID: $0["event_id"], expiresAt: Date(milliseconds: $0["expires_at"]))
            }
        }
    }

    public func pruneExpiredDedupKeys(now: Date, limit: Int) async throws(StoreError) -> Int {
        let database = try currentDatabase()
        do {
            return try await database.pool.write { db in
                try db.execute(
                    sql: """
                        DELETE FROM dedup_keys WHERE rowid IN
                          (SELECT rowid FROM dedup_keys WHERE expires_at <= ? LIMIT ?)
                        """,
                    arguments: [now.milliseconds, limit]
                )
                return db.changesCount
            }
        } catch {
            throw .unavailable("pruning dedup keys failed", underlying: SendableError(error))
        }
    }

    // MARK: DeliveryQueue

    /// The unfinished deliveries of `consumer`, from the counts the store keeps (no query).
    public func depth(consumer: String) async throws(StoreError) -> Int {
        state.withLock { $0.depths[consumer] }
    }

    /// How many reads the store made of its database, for tests.
    package var readCount: Int { readCounter.load(ordering: .relaxed) }

    public func markDeadLettered(deliveryIDs: [Int64]) async throws(StoreError) {
        guard !deliveryIDs.isEmpty else { return }
        let database = try currentDatabase()
        do {
            let changes = try await database.pool.write { db in
                var changes = QueueDepths()
                // The row stays as the delivery's history; it has left the queue.
                let statement = try db.cachedStatement(
                    sql: "UPDATE deliveries SET state = 'dead_lettered' WHERE id = ? AND state = 'dying' RETURNING consumer")
                for id in deliveryIDs {
                    if let consumer = try String.fetchOne(statement, arguments: [id]) { changes.add(-1, consumer: consumer) }
                }
                return changes
            }
            state.withLock { $0.depths.apply(changes) }
        } catch {
            throw .unavailable("marking dead letters failed", underlying: SendableError(error))
        }
    }

    /// Lowers SQLite's limit on the length of one value, on the connection that writes, so that a
    /// test can make binding an argument fail.
    package func limitValueLength(to bytes: Int32) async throws(StoreError) {
        let database = try currentDatabase()
        do {
            try await database.pool.write { db in _ = sqlite3_limit(db.sqliteConnection, SQLITE_LIMIT_LENGTH, bytes) }
        } catch {
            throw .unavailable("setting a limit failed", underlying: SendableError(error))
        }
    }

    /// The connection's journal mode and `synchronous` level (2 is FULL), as SQLite reports them.
    package func durabilitySettings() async throws(StoreError) -> (journalMode: String, synchronous: Int) {
        let database = try currentDatabase()
        do {
            return try await database.pool.write { db in
                (
                    try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "",
                    try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1
                )
            }
        } catch {
            throw .unavailable("reading settings failed", underlying: SendableError(error))
        }
    }

    // MARK: Schema

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE events (
                      id TEXT PRIMARY KEY NOT NULL,
                      source TEXT NOT NULL,
                      event_type TEXT,
                      dedup_key TEXT NOT NULL,
                      order_id TEXT,
                      received_at INTEGER NOT NULL,
                      headers TEXT NOT NULL,
                      body BLOB NOT NULL
                    );
                    CREATE TABLE dedup_keys (
                      key TEXT PRIMARY KEY NOT NULL,
                      event_id TEXT NOT NULL,
                      expires_at INTEGER NOT NULL
                    );
                    CREATE INDEX dedup_keys_expiry ON dedup_keys(expires_at);
                    CREATE TABLE deliveries (
                      id INTEGER PRIMARY KEY AUTOINCREMENT,
                      event_id TEXT NOT NULL REFERENCES events(id),
                      consumer TEXT NOT NULL,
                      order_id TEXT,
                      state TEXT NOT NULL,
                      attempts INTEGER NOT NULL DEFAULT 0,
                      next_attempt_at INTEGER NOT NULL,
                      created_at INTEGER NOT NULL
                    );
                    CREATE INDEX deliveries_queue ON deliveries(consumer, state, id);
                    CREATE TABLE health (id INTEGER PRIMARY KEY CHECK (id = 1), checked_at INTEGER NOT NULL);
                    INSERT INTO health VALUES (1, 0);
                    """
            )
        }
        // Delivery: leases, the attempt history, dead letters waiting for their line, replays.
        // A delivery row is 'pending' (in its queue), 'dying' (a dead letter whose line is not yet
        // written) or gone (delivered, or its dead-letter line is durable).
        migrator.registerMigration("v2") { db in
            try db.execute(
                sql: """
                    ALTER TABLE deliveries ADD COLUMN lease_until INTEGER;
                    ALTER TABLE deliveries ADD COLUMN attempt_log TEXT NOT NULL DEFAULT '[]';
                    ALTER TABLE deliveries ADD COLUMN dead_letter_id TEXT;
                    ALTER TABLE deliveries ADD COLUMN reason TEXT;
                    ALTER TABLE deliveries ADD COLUMN finished_at INTEGER;
                    ALTER TABLE deliveries ADD COLUMN replay_of TEXT;
                    DELETE FROM deliveries WHERE state = 'dead';
                    UPDATE deliveries SET state = 'dying', dead_letter_id = 'dl_' || lower(hex(randomblob(13))),
                      reason = 'not an envelope', finished_at = created_at
                      WHERE state = 'pending' AND consumer = '_unparsed';
                    CREATE INDEX deliveries_order ON deliveries(consumer, order_id, id) WHERE state = 'pending';
                    CREATE INDEX deliveries_dying ON deliveries(id) WHERE state = 'dying';
                    CREATE TABLE replays (
                      dead_letter_id TEXT PRIMARY KEY NOT NULL,
                      consumer TEXT NOT NULL,
                      replayed_at INTEGER NOT NULL
                    );
                    """
            )
        }
        // Retention and order lanes: an event gets `finished_at` once none of its deliveries is
        // unfinished (set by the pruning service, not on the delivery path), and is pruned
        // `events.retention` later. Deleting an event checks the foreign key of `deliveries`, and
        // the pruning asks whether an event has deliveries left: both need `deliveries(event_id)`,
        // or each would scan the whole queue (5 s a chunk with a backlog of 100,000). A delivery's `order_id` column holds its order lane
        // (`OrderLane.key`: source and order id), so that two sources' orders never wait for
        // each other.
        migrator.registerMigration("v3") { db in
            try db.execute(
                sql: """
                    ALTER TABLE events ADD COLUMN finished_at INTEGER;
                    ALTER TABLE events ADD COLUMN sandbox INTEGER NOT NULL DEFAULT 0;
                    CREATE INDEX events_unfinished ON events(received_at) WHERE finished_at IS NULL;
                    CREATE INDEX events_finished ON events(finished_at) WHERE finished_at IS NOT NULL;
                    CREATE INDEX deliveries_event ON deliveries(event_id);
                    CREATE INDEX deliveries_retried ON deliveries(consumer, next_attempt_at, id)
                      WHERE state = 'pending' AND attempts > 0;
                    UPDATE deliveries SET order_id =
                      (SELECT e.source FROM events e WHERE e.id = deliveries.event_id) || char(31) || order_id
                      WHERE order_id IS NOT NULL;
                    """
            )
        }
        // An operator's pause of a consumer, kept across restarts.
        migrator.registerMigration("v4") { db in
            try db.execute(sql: "CREATE TABLE consumer_holds (consumer TEXT PRIMARY KEY, held_since INTEGER NOT NULL)")
        }
        // The event log: a finished delivery keeps its row ('delivered', or 'dead_lettered' once
        // its line is written) as the delivery's history, pruned with its event; the filters of
        // `GET /admin/events` have indexes (newest first, by order, dedup key and event type).
        // The queue's index keeps only pending rows, so the finished ones (most of the table now)
        // stay out of it, and a delivery's finish takes its entry out instead of moving it.
        migrator.registerMigration("v5") { db in
            try db.execute(
                sql: """
                    CREATE INDEX events_received ON events(received_at, id);
                    CREATE INDEX events_order ON events(order_id, received_at, id) WHERE order_id IS NOT NULL;
                    CREATE INDEX events_dedup ON events(dedup_key);
                    CREATE INDEX events_type ON events(event_type, received_at, id);
                    DROP INDEX deliveries_queue;
                    CREATE INDEX deliveries_queue ON deliveries(consumer, id) WHERE state = 'pending';
                    """
            )
        }
        return migrator
    }
}

extension SQLiteStore: ConsumerControlStore {
    public func consumerHolds() async throws(StoreError) -> [String: Date] {
        try await read { db in
            var holds: [String: Date] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT consumer, held_since FROM consumer_holds")
            while let row = try rows.next() { holds[row["consumer"]] = Date(milliseconds: row["held_since"]) }
            return holds
        }
    }

    public func setConsumerHold(consumer: String, held: Bool, at: Date) async throws(StoreError) {
        let at = at.milliseconds
        try await write("recording a consumer's pause") { db in
            if held {
                try db.execute(
                    sql: "INSERT INTO consumer_holds (consumer, held_since) VALUES (?, ?) ON CONFLICT (consumer) DO NOTHING",
                    arguments: [consumer, at])
            } else {
                try db.execute(sql: "DELETE FROM consumer_holds WHERE consumer = ?", arguments: [consumer])
            }
        }
    }

    public func oldestPending(consumer: String) async throws(StoreError) -> Date? {
        try await read { db in
            // The lowest id is the oldest (ids follow insertion), found on the queue's index.
            try Int64.fetchOne(
                db, sql: "SELECT created_at FROM deliveries WHERE consumer = ? AND state = 'pending' ORDER BY id LIMIT 1",
                arguments: [consumer]
            ).map { Date(milliseconds: $0) }
        }
    }
}

/// The device and inode of a file, to notice that it was deleted or replaced.
struct FileIdentity: Hashable, Sendable {
    let device: UInt64
    let inode: UInt64

    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }
}

/// Wraps a non-`Sendable` error as text, so it can travel inside ``StoreError``.
struct SendableError: Error, Sendable, CustomStringConvertible {
    let description: String
    init(_ error: any Error) { description = String(describing: error) }
}

extension Date {
    init(milliseconds: Int64) {
        self.init(timeIntervalSince1970: TimeInterval(milliseconds) / 1_000)
    }

    /// Unix time in whole milliseconds.
    public var milliseconds: Int64 { Int64((timeIntervalSince1970 * 1_000).rounded(.down)) }
}

extension Duration {
    /// The duration in whole milliseconds.
    package var milliseconds: Int64 {
        components.seconds * 1_000 + components.attoseconds / 1_000_000_000_000_000
    }
}
