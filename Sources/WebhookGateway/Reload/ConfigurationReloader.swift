import Delivery
import GatewayConfiguration
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals
import Verification

/// Reads the configuration file again and applies what can change while the gateway runs.
///
/// Applied live: source secrets, app keys and tolerances; consumer URLs, signing secrets,
/// timeouts, concurrency, retry policies and subscriptions (`sources`, `events`); the admin token;
/// and the TLS certificates and keys (the same files, read again). `file:` and `credential:`
/// secrets are read again; `env:` ones keep the value the process started with (its environment
/// cannot change), and the log names those fields in a warning. Queued deliveries stay queued:
/// a consumer whose settings changed gets a new worker, while its old one finishes the attempts it
/// has in flight.
///
/// Everything else (addresses, TLS on or off, storage, dead-letter folder, limits, body size, the
/// set of sources and consumers) needs a restart. A reload that changes any of it, or whose file
/// does not load, is refused whole: the log names the fields and the running configuration stays.
final class ConfigurationReloader: Sendable {
    /// What became of one reload.
    enum Outcome: Equatable, Sendable {
        case applied(changedConsumers: [String])
        case refused(String)
    }

    let path: String?
    let live: LiveSettings
    let certificates: [ReloadableCertificate]
    let dispatcher: Dispatcher
    let logger: Logger
    private let current: Mutex<GatewayConfiguration>

    init(
        path: String?,
        current: GatewayConfiguration,
        live: LiveSettings,
        certificates: [ReloadableCertificate],
        dispatcher: Dispatcher,
        logger: Logger
    ) {
        self.path = path
        self.current = Mutex(current)
        self.live = live
        self.certificates = certificates
        self.dispatcher = dispatcher
        self.logger = logger
    }

    @discardableResult
    func reload() async -> Outcome {
        let outcome = await attempt()
        switch outcome {
        case .applied(let changed):
            let secrets = current.withLock { $0.secretFields }
            let reread = secrets.filter { $0.reference.isReadAgainOnReload }.map(\.path)
            logger.notice(
                "configuration reloaded",
                metadata: ["consumers.changed": "\(changed)", "secrets.reread": "\(reread.joined(separator: ", "))"])
            // The environment of a running process cannot change: say so, rather than let an
            // operator believe a rotated env: secret is in use.
            let fixed = secrets.filter { if case .environment = $0.reference.form { true } else { false } }.map(\.path)
            if !fixed.isEmpty {
                logger.warning(
                    "env: secrets are fixed until restart; a reload does not change them (rotate with file: or credential:)",
                    metadata: ["fields": "\(fixed.joined(separator: ", "))"])
            }
        case .refused(let reason):
            logger.error("configuration reload refused; the running configuration stays", metadata: ["reason": "\(reason)"])
        }
        return outcome
    }

    private func attempt() async -> Outcome {
        guard let path else { return .refused("the gateway was not started from a configuration file") }
        let new: GatewayConfiguration
        do {
            new = try GatewayConfiguration.load(path: path)
        } catch {
            return .refused("\(error)")
        }
        let old = current.withLock { $0 }
        let fixed = old.fieldsNeedingRestart(comparedWith: new)
        guard fixed.isEmpty else {
            return .refused("these settings need a restart: \(fixed.joined(separator: ", "))")
        }
        if old.storage.postgres != new.storage.postgres {
            // Not refused (that would block every other rotation), but not in use either: the
            // connections open with the password the gateway started with.
            logger.warning(
                "storage.url changed (its password): it takes effect at the next restart; restart the gateways one by one")
        }
        // Every certificate is read and checked before anything changes.
        let pairs: [ReloadableCertificate.Pair]
        do {
            pairs = try certificates.map { certificate throws(ReloadableCertificate.LoadError) in
                try ReloadableCertificate.load(certificate.files)
            }
        } catch {
            return .refused("\(error)")
        }
        for (certificate, pair) in zip(certificates, pairs) { certificate.use(pair) }
        live.apply(new)
        let changed = new.consumers.filter { consumer in
            old.consumers.first { $0.name == consumer.name }.map { !$0.hasSameDelivery(as: consumer) } ?? false
        }
        if !changed.isEmpty { await dispatcher.replace(endpoints: changed.map(\.endpoint)) }
        current.withLock { $0 = new }
        return .applied(changedConsumers: changed.map(\.name))
    }
}

/// Reloads the configuration on each SIGHUP until graceful shutdown.
struct ReloadService: Service {
    let reloader: ConfigurationReloader
    let signals: UnixSignalsSequence

    func run() async throws {
        for await _ in signals.cancelOnGracefulShutdown() {
            await reloader.reload()
        }
    }
}

extension GatewayConfiguration {
    /// The settings that differ from `new` and cannot change without a restart, by field path.
    func fieldsNeedingRestart(comparedWith new: GatewayConfiguration) -> [String] {
        var fields: [String] = []
        func check(_ same: Bool, _ field: String) { if !same { fields.append(field) } }
        check(listen.host == new.listen.host && listen.port == new.listen.port, "listen")
        check(listen.tls == new.listen.tls, "listen.tls")
        check(admin.host == new.admin.host && admin.port == new.admin.port, "admin")
        check(admin.tls == new.admin.tls, "admin.tls")
        check(maxBodyBytes == new.maxBodyBytes, "maxBodyBytes")
        check(limits == new.limits, "limits")
        check(storage.path == new.storage.path && storage.postgres?.withoutPassword == new.storage.postgres?.withoutPassword, "storage")
        check(deadLetterDirectory == new.deadLetterDirectory, "deadLetters")
        check(dedupRetention == new.dedupRetention && dedupRules == new.dedupRules, "dedup")
        check(eventRetention == new.eventRetention, "events")
        check(
            sources.map { [$0.name, $0.path, $0.scheme.description] } == new.sources.map { [$0.name, $0.path, $0.scheme.description] },
            "sources (names, paths, schemes)"
        )
        check(Set(consumers.map(\.name)) == Set(new.consumers.map(\.name)), "consumers (the set of names)")
        return fields
    }
}

extension GatewayConfiguration.Consumer {
    /// Whether deliveries to `other` go out exactly as to this consumer (subscriptions aside).
    func hasSameDelivery(as other: Self) -> Bool {
        url == other.url && signingSecret == other.signingSecret && timeout == other.timeout
            && concurrency == other.concurrency && retry == other.retry
    }
}
