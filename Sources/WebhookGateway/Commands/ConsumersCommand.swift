import ArgumentParser
import Foundation

struct ConsumersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consumers",
        abstract: "Show consumers, and pause or resume one, through a running gateway's admin API.",
        subcommands: [ListCommand.self, PauseCommand.self, ResumeCommand.self]
    )

    /// One consumer as a line of the table.
    static func line(_ item: [String: Any]) -> String {
        func text(_ key: String) -> String { item[key] as? String ?? "-" }
        let state: String
        switch item["pausedBy"] as? String {
        case "operator": state = "paused by an operator"
        case "failures": state = "paused after failures (probing)"
        default: state = "delivering"
        }
        var fields = [text("name"), state, "queued \(item["queueDepth"] as? Int ?? 0)"]
        if let oldest = item["oldestPendingAt"] as? String { fields.append("oldest \(oldest)") }
        fields.append("last delivered \(text("lastDeliveredAt"))")
        if let failedAt = item["lastFailureAt"] as? String {
            fields.append("last failure \(failedAt) (\(text("lastFailure")))")
        }
        fields.append(text("url"))
        return fields.joined(separator: "  ")
    }

    static func decodeItem(_ data: Data) throws -> [String: Any] {
        guard let item = try? JSONSerialization.jsonObject(with: data) as? [String: Any], item["name"] is String else {
            throw AdminClient.Failure("the admin API answered something that is not a consumer")
        }
        return item
    }
}

extension ConsumersCommand {
    struct ListCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List the consumers with their state, queue and last delivery and failure."
        )

        @OptionGroup var admin: AdminOptions

        @Flag(name: .long, help: "Print the admin API's JSON instead of a table.")
        var json = false

        func run() async throws {
            let client = AdminClient(access: try admin.access())
            defer { client.shutdown() }
            let data = try await client.get("/admin/consumers", query: [])
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let consumers = object["consumers"] as? [[String: Any]]
            else {
                throw AdminClient.Failure("the admin API answered something that is not a consumer list")
            }
            if json {
                FileHandle.standardOutput.write(
                    try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
                print()
                return
            }
            for item in consumers { print(ConsumersCommand.line(item)) }
        }
    }

    struct PauseCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pause",
            abstract: "Pause a consumer: nothing is sent to it (not even a probe) until it is resumed, across restarts."
        )

        @OptionGroup var admin: AdminOptions

        @Argument(help: "The consumer's name.")
        var name: String

        func run() async throws {
            try await ConsumersCommand.post("pause", name: name, admin: admin)
        }
    }

    struct ResumeCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "resume",
            abstract: "Resume a consumer that an operator paused; its queue is delivered."
        )

        @OptionGroup var admin: AdminOptions

        @Argument(help: "The consumer's name.")
        var name: String

        func run() async throws {
            try await ConsumersCommand.post("resume", name: name, admin: admin)
        }
    }

    /// `POST /admin/consumers/NAME/ACTION`; prints the consumer as the answer shows it.
    static func post(_ action: String, name: String, admin: AdminOptions) async throws {
        let client = AdminClient(access: try admin.access())
        defer { client.shutdown() }
        let path = "/admin/consumers/\(name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? name)/\(action)"
        print(line(try decodeItem(try await client.post(path))))
    }
}
