import ArgumentParser
import AsyncHTTPClient
import Foundation
import GatewayConfiguration
import NIOCore
import NIOHTTP1
import NIOSSL
import Verification

struct DeadLettersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letters",
        abstract: "List and replay dead letters through a running gateway's admin API; export them from the store.",
        subcommands: [ListCommand.self, ReplayCommand.self, ExportCommand.self]
    )
}

/// Where the admin API is.
struct AdminOptions: ParsableArguments {
    @Option(name: .long, help: "Path to the JSON configuration file (its admin section is read).")
    var config: String

    @Option(name: .long, help: "Admin base URL such as http://127.0.0.1:9090 (overrides the configuration).")
    var adminURL: String?

    @Option(name: .long, help: "PEM file of the CA (or the self-signed certificate) to trust for an HTTPS admin listener.")
    var caFile: String?

    func access() throws -> AdminAccess {
        var access: AdminAccess
        do {
            access = try AdminAccess.load(path: config, adminURL: adminURL)
        } catch {
            throw ValidationError("invalid configuration: \(error)")
        }
        if let caFile {
            guard FileManager.default.isReadableFile(atPath: caFile) else { throw ValidationError("cannot read --ca-file \(caFile)") }
            access.trustedCertificates = caFile
        }
        return access
    }
}

/// Which dead letters: by id, event type, dedup key and a time range on `deadLetteredAt`.
struct FilterOptions: ParsableArguments {
    @Option(name: .customLong("id"), help: "A dead-letter id (dl_…); repeat for several.")
    var ids: [String] = []

    @Option(name: .long, help: "Only dead letters of this event type.")
    var eventType: String?

    @Option(name: .long, help: "Only dead letters with this dedup key.")
    var dedupKey: String?

    @Option(name: .long, help: "Only dead letters written at or after this RFC 3339 time.")
    var since: String?

    @Option(name: .long, help: "Only dead letters written before this RFC 3339 time.")
    var until: String?

    var queryItems: [URLQueryItem] {
        ids.map { URLQueryItem(name: "id", value: $0) }
            + [("eventType", eventType), ("dedupKey", dedupKey), ("since", since), ("until", until)].compactMap { name, value in
                value.map { URLQueryItem(name: name, value: $0) }
            }
    }

    func json(into object: inout [String: Any]) {
        if !ids.isEmpty { object["ids"] = ids }
        if let eventType { object["eventType"] = eventType }
        if let dedupKey { object["dedupKey"] = dedupKey }
        if let since { object["since"] = since }
        if let until { object["until"] = until }
    }
}

extension DeadLettersCommand {
    struct ListCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List dead letters, newest first."
        )

        @OptionGroup var admin: AdminOptions
        @OptionGroup var filter: FilterOptions

        @Option(name: .long, help: "Only this consumer's dead letters (default: all).")
        var consumer: String?

        @Option(name: .long, help: "At most this many (default: all).")
        var limit: Int?

        @Option(name: .long, help: ArgumentHelp("Dead letters per request (the admin API allows up to 1000).", visibility: .hidden))
        var pageSize = 1_000

        @Flag(name: .long, help: "Print the admin API's JSON instead of a table (every page in one list).")
        var json = false

        func validate() throws {
            guard (1...1_000).contains(pageSize) else { throw ValidationError("--page-size must be from 1 to 1000") }
            if let limit, limit < 1 { throw ValidationError("--limit must be positive") }
        }

        func run() async throws {
            let access = try admin.access()
            var items = filter.queryItems
            if let consumer { items.append(URLQueryItem(name: "consumer", value: consumer)) }
            let client = AdminClient(access: access)
            defer { client.shutdown() }
            // Page after page, following nextCursor: lines written meanwhile neither shift nor
            // repeat what the later pages list.
            var deadLetters: [[String: Any]] = []
            var cursor: String?
            repeat {
                let wanted = min(pageSize, (limit ?? Int.max) - deadLetters.count)
                var query = items + [URLQueryItem(name: "limit", value: String(wanted))]
                if let cursor { query.append(URLQueryItem(name: "cursor", value: cursor)) }
                let data = try await client.get("/admin/dead-letters", query: query)
                guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                    let page = object["deadLetters"] as? [[String: Any]]
                else {
                    throw AdminClient.Failure("the admin API answered something that is not a dead-letter list")
                }
                deadLetters += page
                cursor = object["nextCursor"] as? String
            } while cursor != nil && deadLetters.count < (limit ?? Int.max)
            if json {
                let all: [String: Any] = ["deadLetters": deadLetters, "nextCursor": NSNull()]
                FileHandle.standardOutput.write(
                    try JSONSerialization.data(withJSONObject: all, options: [.sortedKeys, .withoutEscapingSlashes]))
                print()
                return
            }
            for item in deadLetters {
                let attempts = (item["attempts"] as? [Any])?.count ?? 0
                let replayed = (item["replayed"] as? Bool) == true ? "replayed \(item["replayedAt"] as? String ?? "")" : "not replayed"
                print(
                    [
                        item["deadLetteredAt"] as? String ?? "-", item["id"] as? String ?? "-", item["consumer"] as? String ?? "-",
                        item["eventType"] as? String ?? "-", item["reason"] as? String ?? "-", "attempts \(attempts)", replayed,
                    ].joined(separator: "  ")
                )
            }
            print("\(deadLetters.count) dead letter\(deadLetters.count == 1 ? "" : "s")")
        }
    }

    struct ReplayCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "replay",
            abstract: "Queue dead letters for delivery again, with their original webhook-id.",
            discussion: """
                Without --id or other filters, every dead letter of the consumer that was not replayed yet is \
                replayed. A dead letter replayed before is skipped unless --force. Ends with "replayed N, skipped M".
                """
        )

        @OptionGroup var admin: AdminOptions
        @OptionGroup var filter: FilterOptions

        @Option(name: .long, help: "The consumer whose dead letters are replayed.")
        var consumer: String

        @Flag(name: .long, help: "Only list what would be replayed.")
        var dryRun = false

        @Flag(name: .long, help: "Replay dead letters that were replayed before, too.")
        var force = false

        @Option(name: .long, help: ArgumentHelp("Dead letters per request; progress is shown between requests.", visibility: .hidden))
        var chunkSize = 10_000

        func validate() throws {
            guard chunkSize > 0 else { throw ValidationError("--chunk-size must be positive") }
        }

        func run() async throws {
            let access = try admin.access()
            let client = AdminClient(access: access)
            defer { client.shutdown() }

            var plan: [String: Any] = ["consumer": consumer, "dryRun": true, "force": force]
            filter.json(into: &plan)
            let planned = try await client.replay(plan)
            for id in planned.notFound {
                FileHandle.standardError.write(Data("not found: \(id)\n".utf8))
            }
            if dryRun {
                for id in planned.ids ?? [] { print("would replay \(id)") }
                print("dry run: nothing was queued")
                print("replayed \(planned.replayed), skipped \(planned.skipped)")
                return
            }

            let ids = planned.ids ?? []
            var replayed = 0
            var skipped = planned.skipped
            var done = 0
            let showProgress = ids.count > chunkSize
            for start in stride(from: 0, to: ids.count, by: chunkSize) {
                let chunk = Array(ids[start..<min(start + chunkSize, ids.count)])
                let answer = try await client.replay(["consumer": consumer, "ids": chunk, "force": force])
                replayed += answer.replayed
                skipped += answer.skipped
                done += chunk.count
                if showProgress {
                    FileHandle.standardError.write(Data("replaying \(consumer): \(done)/\(ids.count)\n".utf8))
                }
            }
            print("replayed \(replayed), skipped \(skipped)")
        }
    }
}

/// A small client of the admin API for the commands.
struct AdminClient {
    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    let access: AdminAccess
    let client: HTTPClient

    init(access: AdminAccess) {
        self.access = access
        // A gateway that is not running is reported quickly (the pool retries refused connections
        // until the connect timeout).
        var configuration = HTTPClient.Configuration(timeout: .init(connect: .seconds(2)))
        if let file = access.trustedCertificates {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(file)
            configuration.tlsConfiguration = tls
        }
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    func shutdown() {
        try? client.syncShutdown()
    }

    func get(_ path: String, query: [URLQueryItem]) async throws -> Data {
        var components = URLComponents(string: access.baseURL + path)
        if !query.isEmpty { components?.queryItems = query }
        guard let url = components?.string else { throw Failure("bad admin URL \(access.baseURL)") }
        return try await send(HTTPClientRequest(url: url))
    }

    func replay(_ body: [String: Any]) async throws -> ReplayAnswer {
        var request = HTTPClientRequest(url: access.baseURL + "/admin/dead-letters/replay")
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        let data = try await send(request)
        guard let answer = try? JSONDecoder().decode(ReplayAnswer.self, from: data) else {
            throw Failure("the admin API answered something that is not a replay result")
        }
        return answer
    }

    /// A POST, with a JSON body or none (pause, resume).
    func post(_ path: String, json body: [String: Any]? = nil) async throws -> Data {
        var request = HTTPClientRequest(url: access.baseURL + path)
        request.method = .POST
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        }
        return try await send(request)
    }

    private func send(_ request: HTTPClientRequest) async throws -> Data {
        var request = request
        request.headers.add(name: "authorization", value: "Bearer \(access.token.text)")
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(300))
        } catch {
            throw Failure("cannot reach the admin API at \(access.baseURL): \(error)")
        }
        let body = try await response.body.collect(upTo: 1 << 30)
        let data = Data(body.readableBytesView)
        guard response.status == .ok else {
            if response.status == .unauthorized {
                throw Failure("the admin API refused the token (401)")
            }
            let message =
                (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["error"] as? String
                ?? "status \(response.status.code)"
            throw Failure("the admin API answered \(response.status.code): \(message)")
        }
        return data
    }
}
