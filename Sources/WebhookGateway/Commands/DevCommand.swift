import ArgumentParser
import Foundation
import GatewayConfiguration
import Logging
import Verification

#if canImport(Glibc)
    import Glibc
#endif

/// `webhook-gateway dev`: a first run a newcomer can finish.
///
/// It runs the gateway with a configuration (by default `config.example.json`) on its embedded
/// store, with a development secret for every `env:` reference of the configuration: generated
/// once, kept in `data/dev-secrets.env` beside the configuration (mode 0600, shell syntax, so a
/// second terminal can load them), and printed at the start. It starts the example consumer for
/// each consumer on this machine when the `example-consumer` binary is built beside this one (or
/// prints the one command that starts it), and says what to type in a second terminal.
/// Development only: the secrets are on disk and on the screen.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run a development gateway with generated secrets and the example consumer.",
        discussion: """
            Runs the gateway with --config (default config.example.json), setting each env: secret of the
            configuration to a generated development value kept in data/dev-secrets.env beside the
            configuration. Never use this mode or these secrets in production.
            """
    )

    @Option(name: .long, help: "The configuration to run (its env: secrets get development values).")
    var config: String = "config.example.json"

    @Flag(name: .long, help: "Do not start the example consumer.")
    var noConsumer = false

    @OptionGroup var log: LogOptions

    func run() async throws {
        let configURL = URL(fileURLWithPath: config)
        guard let document = FileManager.default.contents(atPath: configURL.path) else {
            throw ValidationError("cannot read configuration file \(config)")
        }
        let secretsURL = configURL.deletingLastPathComponent().appendingPathComponent("data/dev-secrets.env")
        let secrets = try DevSecrets.loadOrCreate(at: secretsURL, for: DevSecrets.references(in: document))
        // The gateway, a reload and the admin commands all read the secrets from the environment.
        for (name, value) in secrets.values { setenv(name, value, 1) }

        let configuration: GatewayConfiguration
        do {
            configuration = try GatewayConfiguration.load(path: config)
        } catch {
            throw ValidationError("invalid configuration: \(error)")
        }
        let logger = log.logger

        let consumers = noConsumer ? [] : ExampleConsumers.local(in: configuration)
        let binary = ExampleConsumers.binary
        let banner = DevSecrets.banner(
            config: config, secretsPath: Self.relative(secretsURL), secrets: secrets, configuration: configuration,
            consumers: consumers, consumerBinary: binary)
        FileHandle.standardOutput.write(Data((banner + "\n").utf8))
        var children: [Process] = []
        // Foundation starts each child in a process group of its own, so Ctrl-C does not reach
        // them: they are stopped here, whatever way the gateway ends.
        defer { ExampleConsumers.stop(children) }
        if let binary {
            for consumer in consumers {
                children.append(try ExampleConsumers.start(consumer, binary: binary))
            }
        }
        try await Gateway(configuration: configuration, configurationPath: config, logger: logger).run()
    }

    /// `url`'s path relative to the working folder when it is inside it.
    static func relative(_ url: URL) -> String {
        let here = FileManager.default.currentDirectoryPath + "/"
        let path = url.standardizedFileURL.path
        return path.hasPrefix(here) ? String(path.dropFirst(here.count)) : path
    }
}

/// The development secrets of `webhook-gateway dev`.
struct DevSecrets: Equatable {
    /// Variable name and value, in the order the configuration names them.
    var values: [(String, String)]

    static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.values.map(\.0) == rhs.values.map(\.0) && lhs.values.map(\.1) == rhs.values.map(\.1)
    }

    /// The `env:` references of a configuration document, in document order, each with whether a
    /// consumer's `signingSecret` names it (that one must be a Standard Webhooks `whsec_` secret).
    static func references(in document: Data) throws -> [(name: String, isSigningSecret: Bool)] {
        guard let root = try? JSONSerialization.jsonObject(with: document) else {
            throw ValidationError("the configuration is not valid JSON")
        }
        var found: [(String, Bool)] = []
        func visit(_ value: Any, key: String?) {
            if let text = value as? String, text.hasPrefix("env:") {
                let name = String(text.dropFirst(4))
                if !name.isEmpty, !found.contains(where: { $0.0 == name }) { found.append((name, key == "signingSecret")) }
            } else if let object = value as? [String: Any] {
                for member in object.keys.sorted() { visit(object[member]!, key: member) }
            } else if let list = value as? [Any] {
                for item in list { visit(item, key: key) }
            }
        }
        visit(root, key: nil)
        return found
    }

    /// The secrets kept at `url`, with a new value for each reference the file lacks (the file is
    /// then written again, mode 0600). Values already there are kept, so restarts keep them.
    static func loadOrCreate(at url: URL, for references: [(name: String, isSigningSecret: Bool)]) throws -> DevSecrets {
        var kept: [String: String] = [:]
        if let text = try? String(contentsOf: url, encoding: .utf8) {
            for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
                guard let equals = line.firstIndex(of: "=") else { continue }
                kept[String(line[..<equals])] = String(line[line.index(after: equals)...])
            }
        }
        var secrets = DevSecrets(values: [])
        var changed = false
        for reference in references {
            if let value = kept[reference.name] {
                secrets.values.append((reference.name, value))
            } else {
                secrets.values.append((reference.name, generate(signingSecret: reference.isSigningSecret)))
                changed = true
            }
        }
        if changed || !FileManager.default.fileExists(atPath: url.path) {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            var text = "# webhook-gateway dev: development secrets, never for production. Load with: set -a; . THIS_FILE; set +a\n"
            for (name, value) in secrets.values { text += "\(name)=\(value)\n" }
            guard FileManager.default.createFile(atPath: url.path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
            else {
                throw ValidationError("cannot write \(url.path)")
            }
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path)
        }
        return secrets
    }

    /// 32 random bytes: a `whsec_` secret (base64), or hex (safe in a shell and a header).
    static func generate(signingSecret: Bool) -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        if signingSecret { return "whsec_" + Data(bytes).base64EncodedString() }
        return bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// What `dev` prints when it starts: the secrets, the consumers and the second terminal's commands.
    static func banner(
        config: String, secretsPath: String, secrets: DevSecrets, configuration: GatewayConfiguration,
        consumers: [ExampleConsumers.Local], consumerBinary: URL?
    ) -> String {
        var lines = [
            "webhook-gateway dev: \(config) with development secrets (kept in \(secretsPath); never use them in production):"
        ]
        for (name, value) in secrets.values { lines.append("  \(name)=\(value)") }
        let ingress =
            "\(configuration.listen.tls == nil ? "http" : "https")://\(AdminAccess.urlHost(listeningOn: configuration.listen.host)):\(configuration.listen.port)"
        lines.append("Ingress: \(ingress)  (sources: \(configuration.sources.map { "\($0.path)" }.joined(separator: ", ")))")
        let admin =
            "\(configuration.admin.tls == nil ? "http" : "https")://\(AdminAccess.urlHost(listeningOn: configuration.admin.host)):\(configuration.admin.port)"
        lines.append("Operator console: \(admin)/ui/  (sign in with the admin token above)")
        for consumer in consumers {
            if consumerBinary != nil {
                lines.append(
                    "Example consumer for \(consumer.name): listening on 127.0.0.1:\(consumer.port); its lines start with [\(consumer.name)]"
                )
            } else {
                lines.append(
                    "Example consumer for \(consumer.name) (not built beside this binary; start it with):"
                        + " EXAMPLE_SIGNING_SECRET=\(consumer.secret) swift run example-consumer --port \(consumer.port)")
            }
        }
        lines += [
            "In a second terminal, from this folder:",
            "  set -a; . \(secretsPath); set +a",
            "  swift run webhook-gateway send-test-event --config \(config) --order-id 42",
            "  swift run webhook-gateway dead-letters list --config \(config)",
        ]
        return lines.joined(separator: "\n")
    }
}

/// The example consumer (`Examples/Consumer`), started by `dev` for the consumers on this machine.
enum ExampleConsumers {
    struct Local: Equatable {
        var name: String
        var port: Int
        var secret: String
    }

    /// The consumers whose URL is `http` on this machine, with their ports and signing secrets.
    static func local(in configuration: GatewayConfiguration) -> [Local] {
        configuration.consumers.compactMap { consumer in
            guard consumer.url.scheme == "http", ["127.0.0.1", "localhost"].contains(consumer.url.host ?? "") else { return nil }
            return Local(name: consumer.name, port: consumer.url.port ?? 80, secret: consumer.signingSecret.text)
        }
    }

    /// `example-consumer` beside this executable (a `swift build` builds both), if it is there.
    static var binary: URL? {
        let url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("example-consumer")
        return FileManager.default.isExecutableFile(atPath: url.path) ? url : nil
    }

    /// Stops the consumers: SIGTERM, up to 5 seconds to exit, then SIGKILL.
    static func stop(_ children: [Process]) {
        for child in children where child.isRunning { child.terminate() }
        let deadline = Date().addingTimeInterval(5)
        for child in children {
            while child.isRunning && Date() < deadline { usleep(20_000) }
            if child.isRunning { kill(child.processIdentifier, SIGKILL) }
        }
    }

    /// Starts the example consumer for `consumer`; each line it writes is printed with its name.
    static func start(_ consumer: Local, binary: URL) throws -> Process {
        let process = Process()
        process.executableURL = binary
        process.arguments = ["--port", "\(consumer.port)"]
        process.environment = ["EXAMPLE_SIGNING_SECRET": consumer.secret, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? ""]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let prefix = "[\(consumer.name)] "
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            guard !data.isEmpty else {
                handle.readabilityHandler = nil
                return
            }
            let text = String(decoding: data, as: UTF8.self)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: true).map { prefix + $0 + "\n" }
            FileHandle.standardOutput.write(Data(lines.joined().utf8))
        }
        process.terminationHandler = { process in
            // A consumer that stops on its own (its port taken, say) leaves deliveries failing.
            guard process.terminationReason == .exit, process.terminationStatus != 0 else { return }
            FileHandle.standardError.write(Data("\(prefix)example consumer exited with status \(process.terminationStatus)\n".utf8))
        }
        try process.run()
        return process
    }
}
