import ArgumentParser
import Delivery
import Foundation
import GatewayConfiguration
import Logging

extension DeadLettersCommand {
    /// `dead-letters export`: a consumer's dead letters as SPEC's JSONL lines on standard output,
    /// read from where the configuration keeps them (the file, or the shared PostgreSQL table), not
    /// through a running gateway.
    struct ExportCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export",
            abstract: "Write a consumer's dead letters to standard output, one JSON line each (SPEC's format), oldest first."
        )

        @Option(name: .long, help: "Path to the JSON configuration file (its storage section is read).")
        var config: String

        @Option(name: .long, help: "The consumer whose dead letters are written.")
        var consumer: String

        @Option(name: .long, help: "Only dead letters written at or after this RFC 3339 time.")
        var since: String?

        @Option(name: .long, help: "Only dead letters written before this RFC 3339 time.")
        var until: String?

        func run() async throws {
            let configuration: GatewayConfiguration
            do {
                configuration = try GatewayConfiguration.load(path: config)
            } catch {
                throw ValidationError("invalid configuration: \(error)")
            }
            let known = configuration.consumers.map(\.name) + [DeadLetterService.unparsedConsumer]
            guard known.contains(consumer) else {
                throw ValidationError("unknown consumer \"\(consumer)\" (known: \(known.joined(separator: ", ")))")
            }
            let since = try since.map { text in
                guard let date = DeadLetter.parseRFC3339(text) else { throw ValidationError("--since: not an RFC 3339 time") }
                return date
            }
            let until = try until.map { text in
                guard let date = DeadLetter.parseRFC3339(text) else { throw ValidationError("--until: not an RFC 3339 time") }
                return date
            }
            let output = FileHandle.standardOutput
            if let postgres = configuration.storage.postgres {
                var logger = Logger(label: "webhook-gateway")
                logger.logLevel = .error
                // Reads only: the schema is checked, never migrated (a newer CLI must not upgrade a
                // database its running gateways do not know yet).
                var storeConfiguration = PostgresStore.Configuration(connection: postgres.url, maxConnections: 2)
                storeConfiguration.migrate = false
                let store = try await PostgresStore(configuration: storeConfiguration, logger: logger)
                var after: Int64 = 0
                while true {
                    let page = try await store.exportLines(
                        consumer: consumer, since: since, until: until, afterSequence: after, limit: 1_000)
                    guard let last = page.last else { break }
                    output.write(Data(page.map { $0.line + "\n" }.joined().utf8))
                    after = last.sequence
                }
                await store.close()
                return
            }
            // The file: its lines as written, the first of each id, in the time range.
            let path = DeadLetterWriter(directory: configuration.deadLetterDirectory).path(consumer: consumer)
            guard let data = FileManager.default.contents(atPath: path) else { return }
            var seen = Set<String>()
            var chunk = Data()
            for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
                guard let deadLetter = DeadLetter.read(line: line), seen.insert(deadLetter.id).inserted else { continue }
                if let since, deadLetter.deadLetteredAt < since { continue }
                if let until, deadLetter.deadLetteredAt >= until { continue }
                chunk.append(contentsOf: line)
                chunk.append(UInt8(ascii: "\n"))
                if chunk.count >= 1 << 20 {
                    output.write(chunk)
                    chunk.removeAll(keepingCapacity: true)
                }
            }
            output.write(chunk)
        }
    }
}
