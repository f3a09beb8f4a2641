import ArgumentParser
import Foundation
import GatewayConfiguration
import Logging

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the gateway until SIGINT or SIGTERM, then drain gracefully."
    )

    @Option(name: .long, help: "Path to the JSON configuration file.")
    var config: String

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
    }

    func run() async throws {
        let configuration: GatewayConfiguration
        do {
            configuration = try GatewayConfiguration.load(path: config)
        } catch {
            throw ValidationError("invalid configuration: \(error)")
        }
        var logger = Logger(label: "webhook-gateway")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        if let addresses = ProcessInfo.processInfo.environment["WEBHOOK_GATEWAY_PORTS_FILE"] {
            // For tests and supervisors that start the gateway on port 0.
            try await Gateway(configuration: configuration, configurationPath: config, logger: logger).run { ports in
                try? "\(ports.ingressPort) \(ports.adminPort)\n".write(toFile: addresses, atomically: true, encoding: .utf8)
            }
        } else {
            try await Gateway(configuration: configuration, configurationPath: config, logger: logger).run()
        }
    }
}
