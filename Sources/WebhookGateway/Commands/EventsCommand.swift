import ArgumentParser
import Foundation

struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Search the event log, show one event's story, redeliver an event, through a running gateway's admin API.",
        subcommands: [ListCommand.self, ShowCommand.self, RedeliverCommand.self]
    )

    static func decodeObject(_ data: Data, _ what: String) throws -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw AdminClient.Failure("the admin API answered something that is not \(what)")
        }
        return object
    }

    static func printJSON(_ object: Any) throws {
        FileHandle.standardOutput.write(
            try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
        print()
    }

    static func path(_ id: String) -> String {
        "/admin/events/" + (id.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(["_", "-"])) ?? id)
    }
}

extension EventsCommand {
    struct ListCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List stored events, newest first, with where each delivery stands."
        )

        @OptionGroup var admin: AdminOptions

        @Option(name: .long, help: "Only events of this order (content.order_id; Shop: data.order_id).")
        var orderId: String?

        @Option(name: .long, help: "Only events of this type.")
        var eventType: String?

        @Option(name: .long, help: "Only events of this source.")
        var source: String?

        @Option(name: .long, help: "Only events with this dedup key.")
        var dedupKey: String?

        @Option(name: .long, help: "Only events with a delivery in this state: pending, delivered or dead_lettered.")
        var status: String?

        @Option(name: .long, help: "Only events received at or after this RFC 3339 time.")
        var since: String?

        @Option(name: .long, help: "Only events received before this RFC 3339 time.")
        var until: String?

        @Option(name: .long, help: "At most this many events (1 to 1000).")
        var limit: Int = 100

        @Option(name: .long, help: "Where to go on: the cursor printed at the end of the previous page.")
        var cursor: String?

        @Flag(name: .long, help: "Print the admin API's JSON instead of a table.")
        var json = false

        func run() async throws {
            let client = AdminClient(access: try admin.access())
            defer { client.shutdown() }
            var query: [URLQueryItem] = [URLQueryItem(name: "limit", value: String(limit))]
            let filters: [(String, String?)] = [
                ("orderId", orderId), ("eventType", eventType), ("source", source), ("dedupKey", dedupKey), ("status", status),
                ("since", since), ("until", until), ("cursor", cursor),
            ]
            for case (let name, let value?) in filters { query.append(URLQueryItem(name: name, value: value)) }
            let object = try EventsCommand.decodeObject(try await client.get("/admin/events", query: query), "an event list")
            guard let events = object["events"] as? [[String: Any]] else {
                throw AdminClient.Failure("the admin API answered something that is not an event list")
            }
            if json {
                try EventsCommand.printJSON(object)
                return
            }
            if events.isEmpty { print("no events match") }
            for event in events { print(EventTimeline.line(event)) }
            if let next = object["nextCursor"] as? String {
                print("more: add --cursor \(next)")
            }
        }
    }

    struct ShowCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Show one event as a timeline: received, each attempt per consumer, dead letters, replays."
        )

        @OptionGroup var admin: AdminOptions

        @Argument(help: "The event id (evt_…).")
        var id: String

        @Flag(name: .long, help: "Print the admin API's JSON (with headers and body) instead of the timeline.")
        var json = false

        func run() async throws {
            let client = AdminClient(access: try admin.access())
            defer { client.shutdown() }
            let object = try EventsCommand.decodeObject(try await client.get(EventsCommand.path(id), query: []), "an event")
            if json {
                try EventsCommand.printJSON(object)
                return
            }
            print(EventTimeline.render(object), terminator: "")
        }
    }

    struct RedeliverCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "redeliver",
            abstract: "Queue a new delivery of a stored event (its original webhook-id) through the normal queue."
        )

        @OptionGroup var admin: AdminOptions

        @Argument(help: "The event id (evt_…).")
        var id: String

        @Option(
            name: .customLong("consumer"),
            help: "A consumer to redeliver to; repeat for several (default: every consumer the event matches now).")
        var consumers: [String] = []

        func run() async throws {
            let client = AdminClient(access: try admin.access())
            defer { client.shutdown() }
            let body: [String: Any]? = consumers.isEmpty ? nil : ["consumers": consumers]
            let object = try EventsCommand.decodeObject(
                try await client.post(EventsCommand.path(id) + "/redeliver", json: body), "a redelivery result")
            let queued = object["queued"] as? [String] ?? []
            let skipped = object["skipped"] as? [[String: Any]] ?? []
            for name in queued { print("queued for \(name)") }
            for entry in skipped {
                print("skipped \(entry["consumer"] as? String ?? "?"): \(entry["reason"] as? String ?? "")")
            }
            print("queued \(queued.count), skipped \(skipped.count)")
        }
    }
}

/// The human forms of the event log: a line per event for `events list`, and the timeline of one
/// event for `events show`, both from the admin API's JSON.
enum EventTimeline {
    /// `2026-11-24T10:00:00.000Z  evt_…  tiktok  minis.trade_order.redeem.success  order 42  orders delivered, …`
    static func line(_ event: [String: Any]) -> String {
        var fields = [
            event["receivedAt"] as? String ?? "-", event["id"] as? String ?? "-", event["source"] as? String ?? "-",
            event["eventType"] as? String ?? "(not an envelope)",
        ]
        if let order = event["orderId"] as? String { fields.append("order \(order)") }
        let deliveries = (event["deliveries"] as? [[String: Any]] ?? []).map { delivery in
            let status = (delivery["status"] as? String ?? "?").replacingOccurrences(of: "_", with: "-")
            let attempts = delivery["attempts"] as? Int ?? 0
            return "\(delivery["consumer"] as? String ?? "?") \(status)" + (attempts > 1 ? " (\(attempts) attempts)" : "")
        }
        fields.append(deliveries.isEmpty ? "no deliveries" : deliveries.joined(separator: ", "))
        return fields.joined(separator: "  ")
    }

    private struct Entry {
        var at: String
        var consumer: String
        var text: String
        var order: Int
    }

    /// The whole story of one event, oldest first, then where each delivery stands now.
    static func render(_ event: [String: Any]) -> String {
        func text(_ key: String, in object: [String: Any] = event) -> String? { object[key] as? String }
        var out = ""
        out += "event     \(text("id") ?? "?")\n"
        out += "source    \(text("source") ?? "?")\n"
        out += "type      \(text("eventType") ?? "(not an envelope)")\n"
        out += "order     \(text("orderId") ?? "-")\n"
        out += "dedup key \(text("dedupKey") ?? "?")\n"
        if event["sandbox"] as? Bool == true { out += "sandbox   yes (delivered with webhook-sandbox: true)\n" }
        out += "\n"
        let deliveries = event["deliveries"] as? [[String: Any]] ?? []
        let width = max(8, deliveries.map { ($0["consumer"] as? String ?? "").count }.max() ?? 0)
        func pad(_ name: String) -> String { name + String(repeating: " ", count: max(0, width - name.count)) }

        var entries: [Entry] = [Entry(at: text("receivedAt") ?? "", consumer: "", text: "received and stored", order: 0)]
        var sequence = 1
        func add(_ at: String?, _ consumer: String, _ what: String) {
            guard let at else { return }
            entries.append(Entry(at: at, consumer: consumer, text: what, order: sequence))
            sequence += 1
        }
        for delivery in deliveries {
            let consumer = text("consumer", in: delivery) ?? "?"
            switch text("replayOf", in: delivery) {
            case nil: break
            case "redeliver": add(text("queuedAt", in: delivery), consumer, "queued again: redelivered by an operator")
            case let deadLetter?: add(text("queuedAt", in: delivery), consumer, "queued again: replay of dead letter \(deadLetter)")
            }
            let attempts = delivery["attempts"] as? [[String: Any]] ?? []
            let status = text("status", in: delivery)
            for (index, attempt) in attempts.enumerated() {
                var what = "attempt \(index + 1): "
                if let code = attempt["status"] as? Int {
                    what += (200..<300).contains(code) ? "delivered (\(code))" : "status \(code)"
                } else {
                    what += "no answer: \(attempt["error"] as? String ?? "unknown error")"
                }
                if let duration = attempt["durationMs"] as? Int { what += ", \(duration) ms" }
                add(text("at", in: attempt), consumer, what)
            }
            if status == "dead_lettered" {
                let id = text("deadLetterId", in: delivery).map { " \($0)" } ?? ""
                add(text("finishedAt", in: delivery), consumer, "dead-lettered\(id): \(text("reason", in: delivery) ?? "?")")
            }
        }
        // Oldest first; RFC 3339 UTC times with milliseconds sort as text.
        entries.sort { ($0.at, $0.order) < ($1.at, $1.order) }
        for entry in entries {
            out += "\(entry.at)  \(pad(entry.consumer))  \(entry.text)\n"
        }
        out += "\nnow\n"
        if deliveries.isEmpty { out += "  no deliveries: no consumer subscribed to this event when it arrived\n" }
        // The latest delivery of each consumer says where it stands (earlier ones are history).
        var latest: [String: [String: Any]] = [:]
        var consumers: [String] = []
        for delivery in deliveries {
            let consumer = text("consumer", in: delivery) ?? "?"
            if latest.updateValue(delivery, forKey: consumer) == nil { consumers.append(consumer) }
        }
        for consumer in consumers {
            guard let delivery = latest[consumer] else { continue }
            let what: String
            switch text("status", in: delivery) {
            case "pending":
                what = "pending, next attempt at \(text("nextAttemptAt", in: delivery) ?? "?")"
            case "delivering": what = "an attempt is under way"
            case "delivered": what = "delivered"
            case "dead_lettered":
                what =
                    "dead-lettered (replay: webhook-gateway dead-letters replay --consumer \(consumer)"
                    + (text("deadLetterId", in: delivery).map { " --id \($0)" } ?? "") + ")"
            case let other: what = other ?? "?"
            }
            out += "  \(pad(consumer))  \(what)\n"
        }
        return out
    }
}
