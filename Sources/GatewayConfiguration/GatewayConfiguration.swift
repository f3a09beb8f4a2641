package import Delivery
package import Foundation
package import Verification

/// The gateway's configuration, as `../shared/SPEC.md` describes it, with every secret resolved.
///
/// Load it with ``load(path:environment:)``; every error names the bad field.
package struct GatewayConfiguration: Sendable {
    package struct Listener: Sendable {
        package var host: String = "0.0.0.0"
        package var port: Int = 8080
        package var tls: TLSFiles?
    }

    package struct TLSFiles: Sendable, Equatable {
        package var certificateChain: String
        package var privateKey: String
    }

    package struct Admin: Sendable {
        package var host: String = "127.0.0.1"
        package var port: Int = 9090
        package var token: Secret
        package var tls: TLSFiles?
    }

    package struct Storage: Sendable {
        /// The SQLite file (`kind` `sqlite`); empty with `postgres`.
        package var path: String
        /// The shared database (`kind` `postgres`).
        package var postgres: Postgres?

        package init(path: String, postgres: Postgres? = nil) {
            self.path = path
            self.postgres = postgres
        }

        package struct Postgres: Sendable, Equatable {
            package var url: PostgresURL
            package var maxConnections: Int = 16

            /// The same settings with the password left out: what a reload compares (a rotated
            /// password is read at the next start, not refused).
            package var withoutPassword: Postgres {
                var copy = self
                copy.url.password = nil
                return copy
            }
        }

        /// What a log line or `check-config` may show of the store (never the password).
        package var summary: String {
            if let postgres { "postgres \(postgres.url)" } else { path }
        }
    }

    package struct Source: Sendable {
        package var name: String
        package var path: String
        package var scheme: SignatureScheme
        package var secrets: [Secret]
        package var appKey: Secret?
        package var tolerance: Duration = TikTokVerifier.defaultTolerance

        package var verifier: WebhookVerifier {
            switch scheme {
            case .tiktokShop: .tiktokShop(appKey: appKey ?? Secret(""), secrets: secrets)
            default: .tiktok(secrets: secrets, tolerance: tolerance)
            }
        }
    }

    package struct Retry: Sendable, Equatable {
        package var maxAttempts: Int = 12
        package var initialDelay: Duration = .seconds(1)
        package var maxDelay: Duration = .seconds(3_600)
    }

    package struct Consumer: Sendable {
        package var name: String
        package var url: URL
        /// Source names; `nil` means all.
        package var sources: [String]?
        /// Event patterns; `nil` means all.
        package var events: [EventPattern]?
        package var signingSecret: Secret
        /// Signs deliveries with `signingSecret` (made when the configuration is read, which checks it).
        package var signer: StandardWebhooksSigner
        package var timeout: Duration = .seconds(10)
        package var concurrency: Int = 16
        package var retry = Retry()
        /// Whether TikTok sandbox events (`content.is_sandbox` true) reach this consumer.
        package var sandbox = SandboxPolicy.include

        /// `consumers[].sandbox`: `include` (sandbox and production events), `exclude` (production
        /// only) or `only` (sandbox only, for a team testing payments without unlocking anything).
        package enum SandboxPolicy: String, Sendable, Equatable, CaseIterable {
            case include, exclude, only

            package func admits(sandbox: Bool) -> Bool {
                switch self {
                case .include: true
                case .exclude: !sandbox
                case .only: sandbox
                }
            }
        }

        /// The consumer as the dispatcher sees it.
        package var endpoint: ConsumerEndpoint {
            ConsumerEndpoint(
                name: name,
                url: url.absoluteString,
                signer: signer,
                timeout: timeout,
                concurrency: concurrency,
                retry: RetryPolicy(maxAttempts: retry.maxAttempts, initialDelay: retry.initialDelay, maxDelay: retry.maxDelay)
            )
        }

        /// Whether this consumer subscribes to `eventType` from `source` (a sandbox event or not).
        /// The gateway's operational events go only to consumers whose `sources` name `_gateway`.
        package func matches(source: String, eventType: String, sandbox: Bool = false) -> Bool {
            let subscribed =
                source == GatewayConfiguration.operationalSource ? sources?.contains(source) == true : sources?.contains(source) ?? true
            return subscribed && (events?.contains { $0.matches(eventType) } ?? true) && self.sandbox.admits(sandbox: sandbox)
        }
    }

    /// Per-client-address request rate on the ingress port (a token bucket).
    package struct RateLimit: Sendable, Equatable {
        package var requestsPerSecond: Int
        package var burst: Int
    }

    /// Limits against abuse on the ingress port (the admin port uses the same connection limits,
    /// without the rate limit).
    package struct Limits: Sendable, Equatable {
        package var connections = ConnectionLimits()
        package var rateLimit: RateLimit?
        /// The bytes of request bodies held in memory at once, across all requests (`nil`: the
        /// default, ``GatewayConfiguration/bufferedBodyBytes``).
        package var maxBufferedBodyBytes: Int?
    }

    package var listen = Listener()
    package var maxBodyBytes = 1_048_576
    package var limits = Limits()
    package var admin: Admin
    package var storage: Storage
    package var deadLetterDirectory: String
    package var dedupRetention: Duration = .seconds(7 * 86_400)
    /// `dedup.keys`: the rules that override the scheme's dedup key for the events they match.
    package var dedupRules: [DedupRule] = []
    /// How long a stored event is kept after all of its deliveries have finished (`events.retention`).
    package var eventRetention: Duration = .seconds(7 * 86_400)
    package var sources: [Source]
    package var consumers: [Consumer]
    /// Every secret field that was read, with the form of its reference (never its value).
    package var secretFields: [SecretField] = []

    /// A secret field of the configuration and where its value comes from.
    package struct SecretField: Sendable, Hashable {
        package var path: String
        package var reference: SecretReference
    }

    /// The size of the body budget (``BodyBudget``): `limits.maxBufferedBodyBytes`, or by default
    /// 32 MiB, raised to twice `maxBodyBytes` when that is more.
    package var bufferedBodyBytes: Int {
        limits.maxBufferedBodyBytes ?? max(BodyBudget.defaultLimit, 2 * maxBodyBytes)
    }

    /// TikTok retries for 72 hours; a shorter retention would let a late retry through as new.
    package static let minimumDedupRetention: Duration = .seconds(72 * 3_600)
    /// Below an hour, an operator could not look at an event that just failed.
    package static let minimumEventRetention: Duration = .seconds(3_600)
    /// The pseudo-consumer under which verified bodies that are not envelopes are dead-lettered.
    package static let unparsedConsumer = DeadLetterService.unparsedConsumer
    /// The reserved source of the gateway's own operational events (SPEC: Operational events):
    /// only consumers whose `sources` name it get them.
    package static let operationalSource = "_gateway"
}

extension GatewayConfiguration {
    /// Reads and validates the configuration file at `path`, resolving secrets from `environment`
    /// and relative paths against the file's folder.
    package static func load(
        path: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigurationError) -> GatewayConfiguration {
        let url = URL(fileURLWithPath: path)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ConfigurationError(path: "", problem: "cannot read configuration file \(path)")
        }
        return try parse(data: data, baseDirectory: url.deletingLastPathComponent(), environment: environment)
    }

    package static func parse(
        data: Data,
        baseDirectory: URL,
        environment: [String: String]
    ) throws(ConfigurationError) -> GatewayConfiguration {
        let document: JSONValue
        do {
            document = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw ConfigurationError(path: "", problem: "the configuration is not valid JSON")
        }
        let root = ConfigurationReader(value: document, path: "", baseDirectory: baseDirectory, environment: environment)
        return try parse(root)
    }

    /// The `dedup` section as read (a struct, not a tuple: the compiler crashes on a tuple here).
    private struct Dedup {
        var retention: Duration?
        var keys: [DedupRule]?
    }

    private static func parse(_ root: ConfigurationReader) throws(ConfigurationError) -> GatewayConfiguration {
        var object = try root.object()
        let listen = try object.optional("listen", parseListener) ?? Listener()
        let maxBodyBytes = try object.optional("maxBodyBytes") { reader throws(ConfigurationError) in
            try reader.integer(in: 1...(256 * 1_048_576))
        }
        let limits = try object.optional("limits", parseLimits)
        let admin = try object.required("admin", parseAdmin)
        let storage =
            try object.optional("storage", parseStorage)
            ?? Storage(path: root.baseDirectory.appendingPathComponent("data/gateway.sqlite").standardizedFileURL.path)
        let deadLetters = try object.optional("deadLetters") { reader throws(ConfigurationError) in
            var fields = try reader.object()
            let directory = try fields.optional("directory") { try $0.filePath() }
            try fields.finish()
            return directory
        }
        let dedup = try object.optional("dedup") { reader throws(ConfigurationError) -> Dedup in
            var fields = try reader.object()
            let retention = try fields.optional("retention") { reader throws(ConfigurationError) in
                let retention = try reader.duration()
                guard retention >= minimumDedupRetention else {
                    throw reader.fail("must be at least 72h (TikTok retries for 72 hours)")
                }
                return retention
            }
            let keys = try fields.optional("keys") { reader throws(ConfigurationError) in
                try reader.list().map(parseDedupRule)
            }
            try fields.finish()
            return Dedup(retention: retention, keys: keys)
        }
        let eventRetention = try object.optional("events", parseEvents)
        let sources = try object.required("sources") { reader throws(ConfigurationError) in
            let items = try reader.list()
            guard !items.isEmpty else { throw reader.fail("at least one source is needed") }
            return try items.map(parseSource)
        }
        let consumers = try object.optional("consumers") { reader throws(ConfigurationError) in
            try reader.list().map(parseConsumer)
        }
        try object.finish()

        var configuration = GatewayConfiguration(
            listen: listen,
            admin: admin,
            storage: storage,
            deadLetterDirectory: (deadLetters ?? nil)
                ?? root.baseDirectory.appendingPathComponent("data/dead-letters").standardizedFileURL.path,
            sources: sources,
            consumers: consumers ?? []
        )
        if let maxBodyBytes { configuration.maxBodyBytes = maxBodyBytes }
        if let limits { configuration.limits = limits }
        if let retention = dedup?.retention { configuration.dedupRetention = retention }
        if let keys = dedup?.keys { configuration.dedupRules = keys }
        if let eventRetention = eventRetention ?? nil { configuration.eventRetention = eventRetention }
        configuration.secretFields = root.secretFields.fields
        try configuration.validateReferences()
        return configuration
    }

    private func validateReferences() throws(ConfigurationError) {
        var names = Set<String>()
        var paths = Set<String>()
        for (index, source) in sources.enumerated() {
            guard names.insert(source.name).inserted else {
                throw ConfigurationError(path: "sources[\(index)].name", problem: "duplicate source name \"\(source.name)\"")
            }
            guard paths.insert(source.path).inserted else {
                throw ConfigurationError(path: "sources[\(index)].path", problem: "duplicate path \"\(source.path)\"")
            }
            // A captured request must never verify after its dedup key has expired.
            guard source.tolerance <= dedupRetention else {
                throw ConfigurationError(path: "sources[\(index)].tolerance", problem: "must not be more than dedup.retention")
            }
        }
        var consumerNames = Set<String>()
        for (index, consumer) in consumers.enumerated() {
            guard consumerNames.insert(consumer.name).inserted else {
                throw ConfigurationError(path: "consumers[\(index)].name", problem: "duplicate consumer name \"\(consumer.name)\"")
            }
            for (sourceIndex, source) in (consumer.sources ?? []).enumerated()
            where !names.contains(source) && source != Self.operationalSource {
                throw ConfigurationError(path: "consumers[\(index)].sources[\(sourceIndex)]", problem: "no source is named \"\(source)\"")
            }
        }
        if let budget = limits.maxBufferedBodyBytes, budget < 2 * maxBodyBytes {
            // One body of the largest size must fit beside the share kept for small bodies.
            throw ConfigurationError(
                path: "limits.maxBufferedBodyBytes", problem: "must be at least twice maxBodyBytes (\(2 * maxBodyBytes))")
        }
        if listen.port != 0 && listen.port == admin.port && listen.host == admin.host {
            throw ConfigurationError(path: "admin.port", problem: "must differ from listen.port")
        }
    }

    private static func parseListener(_ reader: ConfigurationReader) throws(ConfigurationError) -> Listener {
        var object = try reader.object()
        var listener = Listener()
        if let host = try object.optional("host", { try $0.nonEmptyString() }) { listener.host = host }
        if let port = try object.optional("port", { try $0.integer(in: 0...65_535) }) { listener.port = port }
        listener.tls = try object.optional("tls", parseTLS)
        try object.finish()
        return listener
    }

    private static func parseLimits(_ reader: ConfigurationReader) throws(ConfigurationError) -> Limits {
        var object = try reader.object()
        var limits = Limits()
        let timeoutRange = Duration.milliseconds(100)...Duration.seconds(3_600)
        func timeout(_ reader: ConfigurationReader) throws(ConfigurationError) -> Duration {
            let duration = try reader.duration()
            guard timeoutRange.contains(duration) else { throw reader.fail("must be between 100ms and 1h") }
            return duration
        }
        if let read = try object.optional("readTimeout", timeout) { limits.connections.readTimeout = read }
        if let idle = try object.optional("idleTimeout", timeout) { limits.connections.idleTimeout = idle }
        if let bytes = try object.optional("maxHeaderBytes", { try $0.integer(in: 1_024...(80 * 1_024)) }) {
            limits.connections.maxHeaderBytes = bytes
        }
        if let count = try object.optional("maxConnections", { try $0.integer(in: 1...1_000_000) }) {
            limits.connections.maxConnections = count
        }
        limits.maxBufferedBodyBytes = try object.optional("maxBufferedBodyBytes") { try $0.integer(in: 2...(1 << 40)) }
        limits.rateLimit = try object.optional("rateLimit") { reader throws(ConfigurationError) in
            var fields = try reader.object()
            let rate = try fields.required("requestsPerSecond") { try $0.integer(in: 1...1_000_000) }
            let burst = try fields.optional("burst") { try $0.integer(in: 1...10_000_000) } ?? rate
            try fields.finish()
            return RateLimit(requestsPerSecond: rate, burst: burst)
        }
        try object.finish()
        return limits
    }

    private static func parseTLS(_ reader: ConfigurationReader) throws(ConfigurationError) -> TLSFiles {
        var object = try reader.object()
        let files = TLSFiles(
            certificateChain: try object.required("certificateChain") { try $0.filePath() },
            privateKey: try object.required("privateKey") { try $0.filePath() }
        )
        try object.finish()
        return files
    }

    private static func parseAdmin(_ reader: ConfigurationReader) throws(ConfigurationError) -> Admin {
        var object = try reader.object()
        let host = try object.optional("host") { try $0.nonEmptyString() }
        let port = try object.optional("port") { try $0.integer(in: 0...65_535) }
        let token = try object.required("token") { reader throws(ConfigurationError) in
            let token = try reader.secret()
            guard token.bytes.count >= 16 else { throw reader.fail("the admin token must be at least 16 characters") }
            return token
        }
        var admin = Admin(token: token)
        if let host { admin.host = host }
        if let port { admin.port = port }
        admin.tls = try object.optional("tls", parseTLS)
        try object.finish()
        return admin
    }

    private static func parseStorage(_ reader: ConfigurationReader) throws(ConfigurationError) -> Storage {
        var object = try reader.object()
        let kind = try object.optional("kind") { try $0.string() } ?? "sqlite"
        switch kind {
        case "sqlite":
            let path =
                try object.optional("path") { try $0.filePath() }
                ?? reader.baseDirectory.appendingPathComponent("data/gateway.sqlite").standardizedFileURL.path
            try object.finish()
            return Storage(path: path)
        case "postgres":
            let url = try object.required("url") { reader throws(ConfigurationError) in
                let secret = try reader.secret()
                do {
                    return try PostgresURL(parsing: secret.text)
                } catch {
                    // The message names what is wrong, never the URL itself (it holds the password).
                    throw reader.fail("\(error)")
                }
            }
            var postgres = Storage.Postgres(url: url)
            if let maxConnections = try object.optional("maxConnections", { try $0.integer(in: 2...1_000) }) {
                postgres.maxConnections = maxConnections
            }
            try object.finish()
            return Storage(path: "", postgres: postgres)
        default:
            throw reader.child(.string(kind), "kind").fail(
                "unknown storage kind \(ConfigurationReader.quoted(kind)) (supported: \"sqlite\", \"postgres\")")
        }
    }

    /// The `events` object: `retention` (at least 1h) for now.
    private static func parseEvents(_ reader: ConfigurationReader) throws(ConfigurationError) -> Duration? {
        var fields = try reader.object()
        let retention = try fields.optional("retention") { reader throws(ConfigurationError) in
            let retention = try reader.duration()
            guard retention >= minimumEventRetention else { throw reader.fail("must be at least 1h") }
            return retention
        }
        try fields.finish()
        return retention
    }

    private static func parseSource(_ reader: ConfigurationReader) throws(ConfigurationError) -> Source {
        var object = try reader.object()
        let name = try object.required("name", parseName)
        let path = try object.required("path") { reader throws(ConfigurationError) in
            let path = try reader.nonEmptyString()
            guard path.hasPrefix("/"), !path.contains("?"), !path.contains("#"), !path.contains(" ") else {
                throw reader.fail("\(ConfigurationReader.quoted(path)) is not an absolute URL path")
            }
            guard path != "/healthz" else { throw reader.fail("/healthz is reserved") }
            return path
        }
        let scheme = try object.required("scheme") { reader throws(ConfigurationError) in
            let text = try reader.string()
            guard let scheme = SignatureScheme(name: text) else {
                throw reader.fail("unknown scheme \(ConfigurationReader.quoted(text)) (supported: \"tiktok\", \"tiktok-shop\")")
            }
            return scheme
        }
        let secrets = try object.required("secrets") { reader throws(ConfigurationError) in
            let items = try reader.list()
            guard !items.isEmpty else { throw reader.fail("at least one secret is needed") }
            return try items.map { item throws(ConfigurationError) in try item.secret() }
        }
        var source = Source(name: name, path: path, scheme: scheme, secrets: secrets)
        if scheme == .tiktokShop {
            source.appKey = try object.required("appKey") { try $0.secret() }
            if object.has("tolerance") {
                throw reader.child(.null, "tolerance").fail("the tiktok-shop scheme has no timestamp, so no tolerance")
            }
        } else {
            if object.has("appKey") {
                throw reader.child(.null, "appKey").fail("only the tiktok-shop scheme has an app key")
            }
            if let tolerance = try object.optional("tolerance", { try $0.duration() }) {
                guard tolerance > .zero else { throw reader.child(.null, "tolerance").fail("must be more than 0") }
                source.tolerance = tolerance
            }
        }
        try object.finish()
        return source
    }

    /// A `dedup.keys` rule: `events` (patterns, as in `consumers[].events`) and `fields` (envelope
    /// fields, `content.X` or `data.X`), both non-empty; an unknown field name is an error naming
    /// the rule and the field.
    private static func parseDedupRule(_ reader: ConfigurationReader) throws(ConfigurationError) -> DedupRule {
        var object = try reader.object()
        let events = try object.required("events") { reader throws(ConfigurationError) in
            let items = try reader.list()
            guard !items.isEmpty else { throw reader.fail("at least one event pattern is needed") }
            return try items.map(parseEventPattern)
        }
        let fields = try object.required("fields") { reader throws(ConfigurationError) in
            let items = try reader.list()
            guard !items.isEmpty else { throw reader.fail("at least one field is needed") }
            return try items.map { item throws(ConfigurationError) in
                let name = try item.nonEmptyString()
                guard let field = DedupRule.Field(name) else {
                    throw item.fail(
                        "unknown field \(ConfigurationReader.quoted(name)); expected one of "
                            + DedupRule.Field.envelopeNames.joined(separator: ", ") + ", content.<name> or data.<name>")
                }
                return field
            }
        }
        try object.finish()
        return DedupRule(events: events, fields: fields)
    }

    /// An event pattern: an event name, or a prefix ending in `*`.
    private static func parseEventPattern(_ item: ConfigurationReader) throws(ConfigurationError) -> EventPattern {
        let text = try item.nonEmptyString()
        guard let pattern = EventPattern(text) else {
            throw item.fail("\(ConfigurationReader.quoted(text)) is not an event name or a prefix ending in *")
        }
        return pattern
    }

    private static func parseConsumer(_ reader: ConfigurationReader) throws(ConfigurationError) -> Consumer {
        var object = try reader.object()
        let name = try object.required("name", parseName)
        let url = try object.required("url") { reader throws(ConfigurationError) in
            let text = try reader.nonEmptyString()
            guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
                url.host?.isEmpty == false
            else {
                throw reader.fail("\(ConfigurationReader.quoted(text)) is not an http or https URL")
            }
            return url
        }
        var signer: StandardWebhooksSigner?
        let signingSecret = try object.required("signingSecret") { reader throws(ConfigurationError) in
            let secret = try reader.secret()
            do {
                signer = try StandardWebhooksSigner(secret: secret)
            } catch {
                throw reader.fail("\(error)")
            }
            return secret
        }
        guard let signer else { throw reader.child(.null, "signingSecret").fail("is required") }
        var consumer = Consumer(name: name, url: url, signingSecret: signingSecret, signer: signer)
        consumer.sources = try object.optional("sources") { reader throws(ConfigurationError) in
            try reader.list().map { item throws(ConfigurationError) in try item.nonEmptyString() }
        }
        consumer.events = try object.optional("events") { reader throws(ConfigurationError) in
            try reader.list().map(parseEventPattern)
        }
        if let timeout = try object.optional("timeout", { try $0.duration() }) {
            guard timeout > .zero else { throw reader.child(.null, "timeout").fail("must be more than 0") }
            consumer.timeout = timeout
        }
        if let concurrency = try object.optional("concurrency", { try $0.integer(in: 1...1_024) }) {
            consumer.concurrency = concurrency
        }
        if let retry = try object.optional("retry", parseRetry) { consumer.retry = retry }
        if let sandbox = try object.optional(
            "sandbox",
            { reader throws(ConfigurationError) -> Consumer.SandboxPolicy in
                let text = try reader.string()
                guard let policy = Consumer.SandboxPolicy(rawValue: text) else {
                    throw reader.fail("\(ConfigurationReader.quoted(text)) is not include, exclude or only")
                }
                return policy
            })
        {
            consumer.sandbox = sandbox
        }
        try object.finish()
        return consumer
    }

    private static func parseRetry(_ reader: ConfigurationReader) throws(ConfigurationError) -> Retry {
        var object = try reader.object()
        var retry = Retry()
        if let attempts = try object.optional("maxAttempts", { try $0.integer(in: 1...1_000) }) { retry.maxAttempts = attempts }
        if let delay = try object.optional("initialDelay", { try $0.duration() }) {
            guard delay > .zero else { throw reader.child(.null, "initialDelay").fail("must be more than 0") }
            retry.initialDelay = delay
        }
        if let delay = try object.optional("maxDelay", { try $0.duration() }) { retry.maxDelay = delay }
        guard retry.maxDelay >= retry.initialDelay else {
            throw reader.child(.null, "maxDelay").fail("must not be less than initialDelay")
        }
        try object.finish()
        return retry
    }

    /// Source and consumer names: letters, digits, `.`, `_`, `-`, not starting with `_` (reserved
    /// for the gateway's own `_unparsed`). Consumer names become file names.
    private static func parseName(_ reader: ConfigurationReader) throws(ConfigurationError) -> String {
        let name = try reader.nonEmptyString()
        let allowed = name.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: "-")
        }
        guard allowed, name.count <= 64, !name.hasPrefix("_"), !name.hasPrefix(".") else {
            throw reader.fail(
                "\(ConfigurationReader.quoted(name)) is not a valid name (1–64 of A–Z a–z 0–9 . _ -, not starting with _ or .)")
        }
        return name
    }
}

/// How the admin commands reach a running gateway: the admin listener's base URL and its token.
package struct AdminAccess: Sendable {
    package var baseURL: String
    package var token: Secret
    /// A PEM file of certificates to trust for an HTTPS admin listener (`--ca-file`); the
    /// system's roots when `nil`.
    package var trustedCertificates: String?

    /// How a local client writes the address of a listener bound to `host` in a URL: a listener on
    /// every address is reached on loopback, and IPv6 addresses go in brackets.
    package static func urlHost(listeningOn host: String) -> String {
        let reachable = host == "0.0.0.0" ? "127.0.0.1" : host == "::" ? "::1" : host
        return reachable.contains(":") ? "[\(reachable)]" : reachable
    }

    /// The environment variable that overrides the configured token.
    package static let tokenVariable = "WEBHOOK_GATEWAY_ADMIN_TOKEN"

    /// Reads only the `admin` section of the configuration at `path`, so that an operator's shell
    /// needs the admin token and nothing else (no TikTok or consumer secrets). `adminURL` and the
    /// `WEBHOOK_GATEWAY_ADMIN_TOKEN` environment variable override the configured address and token.
    package static func load(
        path: String,
        adminURL: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigurationError) -> AdminAccess {
        let url = URL(fileURLWithPath: path)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ConfigurationError(path: "", problem: "cannot read configuration file \(path)")
        }
        let document: JSONValue
        do {
            document = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw ConfigurationError(path: "", problem: "the configuration is not valid JSON")
        }
        let root = ConfigurationReader(
            value: document, path: "", baseDirectory: url.deletingLastPathComponent(), environment: environment)
        var object = try root.object()
        return try object.required("admin") { reader throws(ConfigurationError) in
            var admin = try reader.object()
            let host = try admin.optional("host") { try $0.nonEmptyString() } ?? "127.0.0.1"
            let port = try admin.optional("port") { try $0.integer(in: 0...65_535) } ?? 9_090
            let tls = admin.has("tls")
            let token: Secret
            if let override = environment[tokenVariable], !override.isEmpty {
                token = Secret(override)
            } else {
                token = try admin.required("token") { try $0.secret() }
            }
            var base = adminURL ?? "\(tls ? "https" : "http")://\(urlHost(listeningOn: host)):\(port)"
            while base.hasSuffix("/") { base.removeLast() }
            return AdminAccess(baseURL: base, token: token)
        }
    }
}
