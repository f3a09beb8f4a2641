import Foundation
import Logging
import PostgresNIO

/// The schema of the shared store, created and migrated at start.
///
/// Several gateways may start at once: each takes a transaction-scoped advisory lock before it
/// looks at the schema version, so one migrates and the others wait for it (and then find nothing
/// to do). A database whose schema is newer than this build knows is refused: an older gateway
/// must not write rows a newer one reads differently.
enum PostgresMigration {
    /// The advisory lock key of migrations ("wgmigr" in ASCII), with the schema name's hash so that
    /// stores in different schemas of one database do not wait for each other.
    static let lockKey: Int64 = 0x7767_6D69_6772

    /// The statements of each version, in order: `steps[0]` makes version 1.
    static let steps: [String] = [
        """
        CREATE TABLE events (
          id text PRIMARY KEY,
          source text NOT NULL,
          event_type text,
          dedup_key text NOT NULL,
          order_id text,
          received_at bigint NOT NULL,
          headers text NOT NULL,
          body bytea NOT NULL,
          sandbox boolean NOT NULL DEFAULT false,
          finished_at bigint
        );
        CREATE INDEX events_unfinished ON events (received_at) WHERE finished_at IS NULL;
        CREATE INDEX events_finished ON events (finished_at) WHERE finished_at IS NOT NULL;
        CREATE TABLE dedup_keys (
          key text PRIMARY KEY,
          event_id text NOT NULL,
          expires_at bigint NOT NULL
        );
        CREATE INDEX dedup_keys_expiry ON dedup_keys (expires_at);
        CREATE TABLE deliveries (
          id bigserial PRIMARY KEY,
          event_id text NOT NULL REFERENCES events (id),
          consumer text NOT NULL,
          lane text,
          state text NOT NULL CHECK (state IN ('pending', 'dying')),
          attempts integer NOT NULL DEFAULT 0,
          attempt_log text NOT NULL DEFAULT '[]',
          next_attempt_at bigint NOT NULL,
          created_at bigint NOT NULL,
          lease_until bigint,
          claim_token bigint,
          dead_letter_id text,
          reason text,
          finished_at bigint,
          replay_of text
        );
        CREATE INDEX deliveries_queue ON deliveries (consumer, id) WHERE state = 'pending';
        CREATE INDEX deliveries_lane ON deliveries (consumer, lane, id) WHERE state = 'pending' AND lane IS NOT NULL;
        CREATE INDEX deliveries_retried ON deliveries (consumer, next_attempt_at, id) WHERE state = 'pending' AND attempts > 0;
        CREATE INDEX deliveries_dying ON deliveries (id) WHERE state = 'dying';
        CREATE INDEX deliveries_event ON deliveries (event_id);
        CREATE TABLE dead_letters (
          id text PRIMARY KEY,
          seq bigserial NOT NULL,
          consumer text NOT NULL,
          event_id text NOT NULL,
          event_type text,
          dedup_key text NOT NULL,
          dead_lettered_at bigint NOT NULL,
          line text NOT NULL
        );
        CREATE INDEX dead_letters_consumer ON dead_letters (consumer, seq);
        CREATE TABLE replays (
          dead_letter_id text PRIMARY KEY,
          consumer text NOT NULL,
          replayed_at bigint NOT NULL
        );
        CREATE TABLE health (id integer PRIMARY KEY CHECK (id = 1), checked_at bigint NOT NULL);
        INSERT INTO health VALUES (1, 0);
        ALTER TABLE deliveries SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000,
          autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);
        ALTER TABLE dedup_keys SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05);
        ALTER TABLE events SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05);
        """,
        // Version 2: the pause of a consumer, shared by the gateways. A row while the consumer is
        // paused; `probe_until` and `probe_token` while one gateway's probe is out.
        """
        CREATE TABLE consumer_pauses (
          consumer text PRIMARY KEY,
          paused_since bigint NOT NULL,
          probe_until bigint,
          probe_token bigint
        );
        """,
        // v3: an operator's pause of a consumer (nothing is sent until resumed).
        """
        CREATE TABLE consumer_holds (
          consumer text PRIMARY KEY,
          held_since bigint NOT NULL
        );
        """,
        // v4: the event log. A finished delivery keeps its row ('delivered', or 'dead_lettered'
        // once its dead letter is stored) as its history, deleted with its event; the filters of
        // `GET /admin/events` have indexes.
        """
        ALTER TABLE deliveries DROP CONSTRAINT deliveries_state_check;
        ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_check
          CHECK (state IN ('pending', 'dying', 'delivered', 'dead_lettered'));
        CREATE INDEX events_received ON events (received_at DESC, id DESC);
        CREATE INDEX events_order ON events (order_id, received_at DESC, id DESC) WHERE order_id IS NOT NULL;
        CREATE INDEX events_dedup ON events (dedup_key);
        CREATE INDEX events_type ON events (event_type, received_at DESC, id DESC);
        """,
    ]

    /// Creates or migrates the schema; with `migrate` false (a command that only reads, such as
    /// `dead-letters export`) only checks that the schema is there and not newer than this build.
    static func run(
        client: PostgresClient, schema: String, logger: Logger, timeout: Duration, migrate: Bool = true
    ) async throws(StoreError) {
        let known = PostgresStore.schemaVersion
        let lockKey = Self.lockKey ^ Int64(truncatingIfNeeded: stableHash(schema))
        let quotedSchema = "\"" + schema.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        try await Deadline.run("migrating the schema", timeout: timeout) {
            try await client.withConnection { connection in
                try await connection.withTransaction(logger: logger) { connection in
                    // A gateway that starts while another migrates waits for it here, past the
                    // session's short lock and statement timeouts (the deadline still bounds it).
                    try await connection.query("SET LOCAL lock_timeout = 0", logger: logger)
                    try await connection.query("SET LOCAL statement_timeout = 0", logger: logger)
                    try await connection.query("SELECT pg_advisory_xact_lock(\(lockKey))", logger: logger)
                    // CREATE SCHEMA needs the CREATE privilege on the database even when the schema
                    // exists: only when it is missing, so that a gateway's role needs no more than
                    // its own schema.
                    var exists = false
                    for try await _ in try await connection.query(
                        "SELECT 1 FROM pg_namespace WHERE nspname = \(schema)", logger: logger)
                    {
                        exists = true
                    }
                    if !migrate {
                        var hasTable = false
                        for try await _ in try await connection.query(
                            "SELECT 1 FROM pg_tables WHERE schemaname = \(schema) AND tablename = 'webhook_gateway_schema'",
                            logger: logger)
                        {
                            hasTable = true
                        }
                        guard exists, hasTable else {
                            throw StoreError.unavailable("the database has no webhook-gateway schema (start a gateway on it first)")
                        }
                    } else if !exists {
                        try await connection.query("CREATE SCHEMA \(unescaped: quotedSchema)", logger: logger)
                    }
                    try await connection.query(
                        """
                        CREATE TABLE IF NOT EXISTS \(unescaped: quotedSchema).webhook_gateway_schema (
                          id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL)
                        """,
                        logger: logger
                    )
                    var version = 0
                    let rows = try await connection.query(
                        "SELECT version FROM \(unescaped: quotedSchema).webhook_gateway_schema WHERE id = 1", logger: logger)
                    for try await found in rows.decode(Int.self) { version = found }
                    guard version <= known else {
                        throw StoreError.unavailable(
                            "the database's schema is version \(version), newer than this gateway knows (\(known)); upgrade the gateway")
                    }
                    guard version < known else { return }
                    guard migrate else {
                        throw StoreError.unavailable(
                            "the database's schema is version \(version), older than this build's (\(known)); start a gateway to migrate it"
                        )
                    }
                    for step in steps[version..<known] {
                        // Statements run in the gateway's schema (its search_path); several per step.
                        for statement in step.split(separator: ";\n").map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) })
                        where !statement.isEmpty {
                            try await connection.query(
                                PostgresQuery(unsafeSQL: statement.hasSuffix(";") ? String(statement.dropLast()) : statement),
                                logger: logger)
                        }
                    }
                    try await connection.query(
                        """
                        INSERT INTO \(unescaped: quotedSchema).webhook_gateway_schema (id, version) VALUES (1, \(known))
                        ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version
                        """,
                        logger: logger
                    )
                    logger.notice("database schema migrated", metadata: ["from": "\(version)", "to": "\(known)"])
                }
            }
        }
    }

    /// FNV-1a of the schema name: the same in every process (Swift's `hashValue` is seeded).
    static func stableHash(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        return hash
    }
}
