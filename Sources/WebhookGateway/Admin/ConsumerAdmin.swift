import Delivery
import Foundation
import Hummingbird
import Logging
import NIOCore

/// `GET /admin/consumers` and the operator's pause and resume of a consumer.
///
/// Whether a consumer is paused by an operator is the store's answer (so a pause made through
/// another gateway on the same database shows at once); whether failures paused it, and its last
/// delivery and failure, are this gateway's worker's.
struct ConsumerAdmin: Sendable {
    let dispatcher: Dispatcher
    let store: any DeliveryQueue & ConsumerControlStore
    let now: @Sendable () -> Date
    let logger: Logger
    /// Told of each pause and resume that changed something (`consumer.paused`, `consumer.resumed`).
    var operational: OperationalEvents?

    /// One consumer as the API shows it.
    struct Item: Encodable, Sendable {
        var name: String
        var url: String
        var paused: Bool
        var pausedBy: String?
        var queueDepth: Int
        var oldestPendingAt: String?
        var lastDeliveredAt: String?
        var lastFailureAt: String?
        var lastFailure: String?

        enum CodingKeys: String, CodingKey {
            case name, url, paused, pausedBy, queueDepth, oldestPendingAt, lastDeliveredAt, lastFailureAt, lastFailure
        }

        // Every key is written, null included: the document says which fields an item has.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(url, forKey: .url)
            try container.encode(paused, forKey: .paused)
            try container.encode(pausedBy, forKey: .pausedBy)
            try container.encode(queueDepth, forKey: .queueDepth)
            try container.encode(oldestPendingAt, forKey: .oldestPendingAt)
            try container.encode(lastDeliveredAt, forKey: .lastDeliveredAt)
            try container.encode(lastFailureAt, forKey: .lastFailureAt)
            try container.encode(lastFailure, forKey: .lastFailure)
        }
    }

    struct Unknown: Error {}

    /// The consumer's URL as shown: no user, password, query or fragment (they may carry secrets).
    static func displayURL(_ url: String) -> String {
        // (The configuration accepts only http and https URLs with a host; anything else shows empty.)
        guard var components = URLComponents(string: url), components.scheme != nil, components.host != nil else { return "" }
        components.user = nil
        components.password = nil
        components.query = nil
        components.fragment = nil
        return components.string ?? ""
    }

    func list() async throws(StoreError) -> [Item] {
        let statuses = dispatcher.statuses()
        let holds = try await store.consumerHolds()
        var items: [Item] = []
        for name in statuses.keys.sorted() {
            guard let status = statuses[name] else { continue }
            items.append(try await item(status, held: holds[name] != nil))
        }
        return items
    }

    func item(named name: String) async throws -> Item {
        guard let status = dispatcher.statuses()[name] else { throw Unknown() }
        let holds = try await store.consumerHolds()
        return try await item(status, held: holds[name] != nil)
    }

    /// The change was recorded, but the consumer's state could not be read for the answer.
    struct RecordedButUnreadable: Error {
        let error: StoreError
    }

    /// Pauses (`held`) or resumes `name`; the answer shows the consumer afterwards.
    func setPaused(_ name: String, _ held: Bool) async throws -> Item {
        guard let status = dispatcher.statuses()[name] else { throw Unknown() }
        let wasHeld = try await store.consumerHolds()[name] != nil
        try await store.setConsumerHold(consumer: name, held: held, at: now())
        // A resume also ends a pause by failures (the operator says the consumer is back); with
        // several gateways the pause may be another gateway's, not read here yet.
        var pausedByFailures = status.pausedByFailures
        if !held, !pausedByFailures, let shared = store as? any SharedPauseStore {
            pausedByFailures = (try? await shared.sharedPause(consumer: name)) ?? false
        }
        if wasHeld != held || (!held && pausedByFailures) {
            if held {
                operational?.consumerPaused(name, reason: "operator")
            } else {
                operational?.consumerResumed(name, reason: "operator")
            }
        }
        dispatcher.operatorPaused(consumer: name, held: held)
        logger.notice(
            held ? "consumer paused by an operator; nothing is sent to it until it is resumed" : "consumer resumed by an operator",
            metadata: ["consumer": "\(name)"])
        do {
            return try await item(named: name)
        } catch let error as StoreError {
            throw RecordedButUnreadable(error: error)
        }
    }

    private func item(_ status: Dispatcher.ConsumerStatus, held: Bool) async throws(StoreError) -> Item {
        let name = status.endpoint.name
        let pausedBy: String? = held ? "operator" : status.pausedByFailures ? "failures" : nil
        return Item(
            name: name,
            url: Self.displayURL(status.endpoint.url),
            paused: pausedBy != nil,
            pausedBy: pausedBy,
            queueDepth: try await store.depth(consumer: name),
            oldestPendingAt: try await store.oldestPending(consumer: name).map(DeadLetter.rfc3339),
            lastDeliveredAt: status.activity.lastDeliveredAt.map(DeadLetter.rfc3339),
            lastFailureAt: status.activity.lastFailureAt.map(DeadLetter.rfc3339),
            lastFailure: status.activity.lastFailure
        )
    }
}

extension ConsumerAdmin {
    /// Adds the routes to `router`.
    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/admin/consumers") { _, _ in
            let items: [Item]
            do {
                items = try await list()
            } catch let error as StoreError {
                return Response.json(.serviceUnavailable, ["error": "the store is unavailable: \(error.detail)"])
            }
            return try Self.json(.ok, ["consumers": items])
        }
        for (action, held) in [("pause", true), ("resume", false)] {
            router.post("/admin/consumers/:name/\(action)") { _, context in
                let name = context.parameters.get("name") ?? ""
                do {
                    return try Self.json(.ok, try await setPaused(name, held))
                } catch is Unknown {
                    return Response.json(.notFound, ["error": "no consumer named \(name)"])
                } catch let failure as RecordedButUnreadable {
                    return Response.json(
                        .serviceUnavailable,
                        ["error": "the \(action) is recorded, but the consumer's state cannot be read: \(failure.error.detail)"])
                } catch let error as StoreError {
                    return Response.json(.serviceUnavailable, ["error": "the store is unavailable: \(error.detail)"])
                }
            }
        }
    }

    static func json(_ status: HTTPResponse.Status, _ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}
