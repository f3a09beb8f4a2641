import Delivery
import Foundation
import GatewayConfiguration
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle
import Synchronization
import UnixSignals
import Verification

/// One running gateway: the ingress and admin listeners, the store and the background services,
/// built from a configuration and run in one `ServiceGroup`.
struct Gateway {
    /// Where the listeners ended up (useful when the configuration asks for port 0).
    struct Addresses: Sendable {
        var ingressPort: Int
        var adminPort: Int
    }

    let configuration: GatewayConfiguration
    /// The file the configuration came from, read again on SIGHUP (`nil`: reloads are refused).
    let configurationPath: String?
    let logger: Logger
    let now: @Sendable () -> Date

    init(
        configuration: GatewayConfiguration,
        configurationPath: String? = nil,
        logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.configuration = configuration
        self.configurationPath = configurationPath
        self.logger = logger
        self.now = now
    }

    /// Runs until SIGTERM or SIGINT (or the task is cancelled), then drains: the listeners stop
    /// accepting, in-flight requests and their commits finish, and it returns.
    ///
    /// - Parameter onListening: called once both listeners are bound.
    func run(onListening: @escaping @Sendable (Addresses) async -> Void = { _ in }) async throws {
        let opened = try await OpenedStore.open(configuration, logger: logger, now: now)
        defer { withExtendedLifetime(opened.lock) {} }
        let store = opened.store
        let registry = PrometheusCollectorRegistry()
        let factory = PrometheusMetricsFactory(registry: registry)
        let consumerNames = configuration.consumers.map(\.name) + [GatewayConfiguration.unparsedConsumer]
        let metrics = GatewayMetrics(sources: configuration.sources.map(\.name), consumers: consumerNames, factory: factory)
        let state = GatewayState(store: store)

        let live = LiveSettings(configuration: configuration)
        // Created before the dispatcher it wakes (the dispatcher reports to it).
        let wakeForOperationalEvents = Mutex<(@Sendable ([String]) -> Void)?>(nil)
        let operational = OperationalEvents(
            store: store, consumers: live.consumers, now: now,
            onStored: { consumers in wakeForOperationalEvents.withLock { $0 }?(consumers) }, logger: logger)
        let deadLetters = DeadLetterService(
            store: store,
            archive: opened.archive,
            logger: logger,
            onWritten: { consumer, written in
                metrics.deadLettered(consumer: consumer, count: written.count)
                operational.deadLettersWritten(consumer: consumer, written)
            }
        )
        let dispatcher = Dispatcher(
            consumers: configuration.consumers.map(\.endpoint),
            store: store,
            observer: GatewayObserver(metrics: metrics, operational: operational),
            logger: logger,
            now: now,
            // One gateway (SQLite) releases its leases at start; with PostgreSQL a dead gateway's
            // deliveries wait for their leases to run out, so these are kept short there.
            leaseMargin: configuration.storage.postgres == nil ? .seconds(60) : .seconds(15),
            onDeadLetterDecided: { deadLetters.wake() }
        )
        wakeForOperationalEvents.withLock { $0 = { dispatcher.wake(consumers: $0) } }
        var ingestor = Ingestor(
            store: store,
            consumers: live.consumers,
            metrics: metrics,
            now: now,
            onStored: { event in
                if event.deadLetterReason != nil {
                    deadLetters.wake()
                } else {
                    dispatcher.wake(consumers: event.consumers)
                }
            },
            dedupRetention: configuration.dedupRetention,
            dedupRules: configuration.dedupRules
        )
        ingestor.onStoreWrite = { succeeded in
            if succeeded { operational.storeSucceeded() } else { operational.storeFailed() }
        }
        let ingressCertificate = try configuration.listen.tls.map { files throws(ReloadableCertificate.LoadError) in
            try ReloadableCertificate(files: files)
        }
        let adminCertificate = try configuration.admin.tls.map { files throws(ReloadableCertificate.LoadError) in
            try ReloadableCertificate(files: files)
        }
        let rateLimiter = configuration.limits.rateLimit.map {
            RateLimiter(requestsPerSecond: $0.requestsPerSecond, burst: $0.burst)
        }

        let ports = PortCollector(onBoth: onListening)
        let ingress = Application(
            responder: IngressResponder(
                sources: live.sources,
                ingestor: ingestor,
                maxBodyBytes: configuration.maxBodyBytes,
                bodyBudget: BodyBudget(limit: configuration.bufferedBodyBytes),
                metrics: metrics,
                rateLimiter: rateLimiter
            ),
            server: ListenerProtocol(
                limits: configuration.limits.connections,
                certificate: ingressCertificate,
                extraHandlers: { [IngressConnectionHandler()] }
            ).serverBuilder(gate: ConnectionGate(limits: configuration.limits.connections)),
            configuration: .init(
                address: .hostname(configuration.listen.host, port: configuration.listen.port),
                serverName: nil
            ),
            onServerRunning: { await ports.ingress($0.localAddress?.port ?? 0) },
            logger: logger
        )
        let admin = Application(
            router: AdminRouter.make(
                token: live.adminToken,
                state: state,
                deadLetters: DeadLetterAdmin(
                    archive: opened.archive,
                    store: store,
                    consumers: configuration.consumers.map(\.name),
                    now: now,
                    onReplayed: { dispatcher.wake(consumers: [$0]) },
                    schemes: Dictionary(configuration.sources.map { ($0.name, $0.scheme) }, uniquingKeysWith: { first, _ in first })
                ),
                registry: registry,
                consumers: ConsumerAdmin(
                    dispatcher: dispatcher, store: store, now: now, logger: logger, operational: operational),
                events: EventAdmin(
                    store: store, consumers: live.consumers, now: now, onQueued: { dispatcher.wake(consumers: $0) },
                    logger: logger),
                refreshGauges: {
                    for consumer in consumerNames {
                        if let depth = try? await store.depth(consumer: consumer) {
                            metrics.queueDepth(consumer: consumer, depth: depth)
                        }
                    }
                }
            ),
            server: ListenerProtocol(limits: configuration.limits.connections, certificate: adminCertificate)
                .serverBuilder(gate: ConnectionGate(limits: configuration.limits.connections)),
            configuration: .init(
                address: .hostname(configuration.admin.host, port: configuration.admin.port),
                serverName: nil
            ),
            onServerRunning: { await ports.admin($0.localAddress?.port ?? 0) },
            logger: logger
        )
        let reloader = ConfigurationReloader(
            path: configurationPath,
            current: configuration,
            live: live,
            certificates: [ingressCertificate, adminCertificate].compactMap { $0 },
            dispatcher: dispatcher,
            logger: logger
        )
        // Trapped before the listeners are up, so a SIGHUP never falls to the default (exit).
        let hangups = await UnixSignalsSequence(trapping: .sighup)

        // Services shut down in reverse order: first the drain flag flips, then the ingress
        // listener stops accepting and finishes its requests (and so their commits), then the
        // admin listener, then the dispatcher (it stops leasing and finishes what is in flight),
        // then the dead-letter writer (it writes what the dispatcher decided last). With PostgreSQL
        // the listener for other gateways' notifications stops right after the drain flag.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: ReloadService(reloader: reloader, signals: hangups)),
            .init(
                service: PruneService(
                    dedup: store, events: store, eventRetention: configuration.eventRetention, logger: logger, now: now)
            ),
            // Stops after the dead-letter writer, so that the last dead letters are reported.
            .init(service: operational),
            .init(service: deadLetters),
            .init(service: dispatcher),
            .init(service: admin),
            .init(service: ingress),
            .init(service: DrainSignal(state: state, logger: logger)),
        ]
        if let notifications = opened.notifications {
            services.insert(
                .init(
                    service: NotificationListener(listen: notifications) { consumers in
                        if let consumers { dispatcher.wake(consumers: consumers) } else { dispatcher.wakeAll() }
                    }),
                at: services.count - 1)
        }
        var groupConfiguration = ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            cancellationSignals: [],
            logger: logger
        )
        // SPEC: exit within 10 seconds of SIGTERM. Whatever has not drained by then is cancelled
        // (a request cancelled before its commit was never acknowledged, so nothing is lost).
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(8)
        let group = ServiceGroup(configuration: groupConfiguration)
        logger.info(
            "gateway starting",
            metadata: [
                "listen": "\(configuration.listen.host):\(configuration.listen.port)",
                "admin": "\(configuration.admin.host):\(configuration.admin.port)",
                "store": "\(configuration.storage.summary)",
                "sources": "\(configuration.sources.map(\.name))",
                "consumers": "\(configuration.consumers.map(\.name))",
            ]
        )
        try await group.run()
        await opened.close()
        logger.info("gateway stopped")
    }
}

/// The store a configuration names, with where its dead letters are kept.
struct OpenedStore {
    typealias Store = any EventStore & DedupStore & DeliveryQueue & RetainingStore & ConsumerControlStore & EventLogStore
    let store: Store
    let archive: any DeadLetterArchive
    /// SQLite: the lock that keeps a second gateway off the same file.
    let lock: InstanceLock?
    /// PostgreSQL: the other gateways' notifications of new deliveries.
    let notifications: (@Sendable (_ wake: @escaping @Sendable ([String]?) -> Void) async -> Void)?
    let close: @Sendable () async -> Void

    static func open(
        _ configuration: GatewayConfiguration,
        logger: Logger,
        now: @escaping @Sendable () -> Date
    ) async throws -> OpenedStore {
        if let postgres = configuration.storage.postgres {
            let store = try await PostgresStore(
                configuration: .init(
                    connection: postgres.url,
                    maxConnections: postgres.maxConnections,
                    dedupRetention: configuration.dedupRetention
                ),
                logger: logger,
                now: now
            )
            return OpenedStore(
                store: store, archive: store, lock: nil,
                notifications: { wake in await store.listenForDeliveries(wake: wake) },
                close: { await store.close() })
        }
        let lock = try InstanceLock(path: configuration.storage.path + ".lock")
        let store = try SQLiteStore(
            configuration: .init(path: configuration.storage.path, dedupRetention: configuration.dedupRetention),
            logger: logger,
            now: now
        )
        return OpenedStore(
            store: store,
            archive: FileDeadLetterArchive(writer: DeadLetterWriter(directory: configuration.deadLetterDirectory)),
            lock: lock,
            notifications: nil,
            close: {}
        )
    }
}

/// Wakes the workers when another gateway on the same database queued deliveries (PostgreSQL),
/// until graceful shutdown begins.
struct NotificationListener: Service {
    let listen: @Sendable (_ wake: @escaping @Sendable ([String]?) -> Void) async -> Void
    let wake: @Sendable ([String]?) -> Void

    func run() async throws {
        let listen = self.listen
        let wake = self.wake
        try await cancelWhenGracefulShutdown { await listen(wake) }
    }
}

/// Flips the gateway to draining as soon as graceful shutdown starts, so `/readyz` says 503 while
/// the listeners finish their work.
struct DrainSignal: Service {
    let state: GatewayState
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        state.startDraining()
        logger.info("draining")
    }
}

/// Collects the two bound ports and reports them once both are known.
actor PortCollector {
    private var ingressPort: Int?
    private var adminPort: Int?
    private let onBoth: @Sendable (Gateway.Addresses) async -> Void

    init(onBoth: @escaping @Sendable (Gateway.Addresses) async -> Void) {
        self.onBoth = onBoth
    }

    func ingress(_ port: Int) async {
        ingressPort = port
        await reportIfComplete()
    }

    func admin(_ port: Int) async {
        adminPort = port
        await reportIfComplete()
    }

    private func reportIfComplete() async {
        guard let ingressPort, let adminPort else { return }
        await onBoth(Gateway.Addresses(ingressPort: ingressPort, adminPort: adminPort))
    }
}
