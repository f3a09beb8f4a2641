import ArgumentParser
import Foundation
import GatewayConfiguration

struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a configuration file: exit 0, or non-zero with a message naming the bad field.",
        discussion: """
            Also reports secrets that are missing (an unset env: variable, an unreadable file:) or
            obviously weak (short, a placeholder, written literally, reused), naming the field and
            never the value. Missing secrets make the configuration invalid; weak ones are
            warnings unless --strict.
            """
    )

    @Option(name: .long, help: "Path to the JSON configuration file.")
    var config: String

    @Flag(name: .long, help: "Exit non-zero (3) when a secret is weak.")
    var strict = false

    func run() throws {
        let url = URL(fileURLWithPath: config)
        let findings =
            FileManager.default.contents(atPath: url.path).map {
                SecretAudit.audit(
                    data: $0, baseDirectory: url.deletingLastPathComponent(), environment: ProcessInfo.processInfo.environment)
            } ?? []
        for finding in findings {
            FileHandle.standardError.write(Data("\(config): \(finding)\n".utf8))
        }
        let configuration: GatewayConfiguration
        do {
            configuration = try GatewayConfiguration.load(path: config)
        } catch {
            FileHandle.standardError.write(Data("\(config): \(error)\n".utf8))
            throw ExitCode(2)
        }
        // The certificates and keys must load and match, as at startup and on reload.
        for (field, files) in [("listen.tls", configuration.listen.tls), ("admin.tls", configuration.admin.tls)] {
            guard let files else { continue }
            do {
                _ = try ReloadableCertificate.load(files)
            } catch {
                FileHandle.standardError.write(Data("\(config): \(field): \(error)\n".utf8))
                throw ExitCode(2)
            }
        }
        let weak = findings.filter { $0.kind == .weak }.count
        print(
            "configuration ok: \(configuration.sources.count) source(s), \(configuration.consumers.count) consumer(s), "
                + "store \(configuration.storage.summary)" + (weak > 0 ? "; \(weak) weak secret warning(s)" : "")
        )
        if strict && weak > 0 { throw ExitCode(3) }
    }
}
