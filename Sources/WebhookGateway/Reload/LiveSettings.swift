import GatewayConfiguration
import Verification

/// The parts of the configuration that a reload (SIGHUP) changes while the gateway runs: the
/// sources' secrets, the consumers' settings and subscriptions, and the admin token.
struct LiveSettings: Sendable {
    let sources: Reloadable<[String: Ingestor.Source]>
    let consumers: Reloadable<[GatewayConfiguration.Consumer]>
    let adminToken: Reloadable<Secret>

    init(configuration: GatewayConfiguration) {
        sources = Reloadable(Self.sourceTable(configuration))
        consumers = Reloadable(configuration.consumers)
        adminToken = Reloadable(configuration.admin.token)
    }

    func apply(_ configuration: GatewayConfiguration) {
        sources.replace(with: Self.sourceTable(configuration))
        consumers.replace(with: configuration.consumers)
        adminToken.replace(with: configuration.admin.token)
    }

    /// The ingress routes: each source's verifier by its path.
    static func sourceTable(_ configuration: GatewayConfiguration) -> [String: Ingestor.Source] {
        var table: [String: Ingestor.Source] = [:]
        for source in configuration.sources {
            table[source.path] = Ingestor.Source(name: source.name, verifier: source.verifier)
        }
        return table
    }
}
