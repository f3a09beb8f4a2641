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

    @OptionGroup var log: LogOptions

    func run() async throws {
        let configuration: GatewayConfiguration
        do {
            configuration = try GatewayConfiguration.load(path: config)
        } catch {
            throw ValidationError("invalid configuration: \(error)")
        }
        let logger = log.logger
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
