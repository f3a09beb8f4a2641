import ArgumentParser
import Foundation

struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a configuration file: exit 0, or non-zero with a message naming the bad field."
    )

    @Option(name: .long, help: "Path to the JSON configuration file.")
    var config: String

    func run() throws {
        let configuration: GatewayConfiguration
        do {
            configuration = try GatewayConfiguration.load(path: config)
        } catch {
            FileHandle.standardError.write(Data("\(config): \(error)\n".utf8))
            throw ExitCode(2)
        }
        print(
            "configuration ok: \(configuration.sources.count) source(s), \(configuration.consumers.count) consumer(s), "
                + "store \(configuration.storage.path)"
        )
    }
}
