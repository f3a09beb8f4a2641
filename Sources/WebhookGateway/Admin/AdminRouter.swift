import Delivery
import Foundation
import Hummingbird
import NIOCore
import Prometheus
import Verification

/// The admin listener's routes: `/healthz`, `/readyz` (open), `/metrics`, the dead-letter, event and
/// consumer routes and the OpenAPI document (bearer token), and the operator console's static files
/// under `/ui/` (open: the page asks for the token). `docs/admin-api.yaml` describes each;
/// a test keeps the two the same.
enum AdminRouter {
    static func make(
        token: Reloadable<Secret>,
        state: GatewayState,
        deadLetters: DeadLetterAdmin,
        registry: PrometheusCollectorRegistry,
        consumers: ConsumerAdmin? = nil,
        events: EventAdmin? = nil,
        console: Console = Console(),
        refreshGauges: @escaping @Sendable () async -> Void
    ) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: BearerTokenMiddleware(token: token, openPaths: console.openPaths.union(["/healthz", "/readyz"])))
        router.get("/healthz") { _, _ in
            Response.json(.ok, ["status": "ok"])
        }
        router.get("/readyz") { _, _ in
            if state.isDraining {
                return Response.json(.serviceUnavailable, ["status": "draining"])
            }
            guard await state.store.checkWritable() else {
                return Response.json(.serviceUnavailable, ["status": "store unavailable"])
            }
            return Response.json(.ok, ["status": "ready"])
        }
        router.get("/metrics") { _, _ in
            await refreshGauges()
            var text: [UInt8] = []
            registry.emit(into: &text)
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: text))
            )
        }
        router.get("/admin/dead-letters") { request, _ in
            let query = request.uri.queryParameters
            let filter: DeadLetterFilter
            let limit: Int
            let cursor: DeadLetterCursor?
            do {
                let ids = query.getAll("id").map { String($0) }
                filter = try DeadLetterFilter(
                    ids: ids.isEmpty ? nil : ids,
                    eventType: query.get("eventType"),
                    dedupKey: query.get("dedupKey"),
                    since: query.get("since"),
                    until: query.get("until")
                )
                limit =
                    try query.get("limit").map { text throws(AdminRequestError) in
                        guard let value = Int(text), (1...DeadLetterAdmin.maximumLimit).contains(value) else {
                            throw AdminRequestError("limit must be an integer from 1 to \(DeadLetterAdmin.maximumLimit)")
                        }
                        return value
                    } ?? DeadLetterAdmin.defaultLimit
                cursor = try query.get("cursor").map { text throws(AdminRequestError) in try DeadLetterCursor(text: text) }
            } catch let error as AdminRequestError {
                return Response.json(.badRequest, ["error": error.message])
            }
            do {
                let page = try await deadLetters.list(consumer: query.get("consumer"), filter: filter, limit: limit, cursor: cursor)
                let encoder = DeadLetter.encoder
                var body = ByteBuffer(string: #"{"deadLetters":["#)
                for (index, item) in page.deadLetters.enumerated() {
                    if index > 0 { body.writeString(",") }
                    body.writeBytes(try encoder.encode(item))
                }
                body.writeString("],\"nextCursor\":")
                // The cursor is base64url: it needs no escaping inside a JSON string.
                body.writeString(page.nextCursor.map { "\"\($0.text)\"" } ?? "null")
                body.writeString("}")
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
            } catch let failure as DeadLetterAdmin.Failure {
                return failure.response
            } catch let error as StoreError {
                // The store (PostgreSQL) is down or slow: "not now", as for ingest.
                return Response.json(.serviceUnavailable, ["error": "the store is unavailable: \(error.detail)"])
            }
        }
        router.post("/admin/dead-letters/replay") { request, _ in
            let body = try await request.body.collect(upTo: 64 * 1_048_576)
            let replay: ReplayRequest
            do {
                replay = try ReplayRequest(json: Data(body.readableBytesView))
            } catch let error as AdminRequestError {
                return Response.json(.badRequest, ["error": error.message])
            }
            do {
                let outcome = try await deadLetters.replay(
                    consumer: replay.consumer,
                    filter: replay.filter,
                    force: replay.force,
                    dryRun: replay.dryRun
                )
                let answer = ReplayAnswer(
                    replayed: outcome.result.replayed.count,
                    skipped: outcome.result.skipped.count,
                    notFound: outcome.notFound,
                    ids: replay.dryRun ? outcome.result.replayed : nil
                )
                let data = try JSONEncoder().encode(answer)
                return Response(
                    status: .ok,
                    headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(bytes: data))
                )
            } catch let failure as DeadLetterAdmin.Failure {
                return failure.response
            } catch let error as StoreError {
                return Response.json(.serviceUnavailable, ["error": "the store is unavailable: \(error.detail)"])
            }
        }
        router.get("/admin/openapi.json") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: AdminAPIDocument.json)))
        }
        consumers?.addRoutes(to: router)
        events?.addRoutes(to: router)
        console.addRoutes(to: router)
        return router
    }
}

/// A bad admin request, answered 400 with this message.
struct AdminRequestError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// The answer of `POST /admin/dead-letters/replay`; `ids` (what would be replayed) only for a dry run.
struct ReplayAnswer: Codable, Sendable {
    var replayed: Int
    var skipped: Int
    var notFound: [String]
    var ids: [String]?
}

/// The body of `POST /admin/dead-letters/replay`.
struct ReplayRequest: Sendable {
    var consumer: String
    var filter: DeadLetterFilter
    var dryRun: Bool
    var force: Bool

    init(json: Data) throws(AdminRequestError) {
        guard let object = (try? JSONSerialization.jsonObject(with: json)) as? [String: Any] else {
            throw AdminRequestError("the body must be a JSON object")
        }
        let known: Set = ["consumer", "ids", "eventType", "dedupKey", "since", "until", "dryRun", "force"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw AdminRequestError("unknown key \"\(unknown)\"")
        }
        guard let consumer = object["consumer"] as? String, !consumer.isEmpty else {
            throw AdminRequestError("consumer is required")
        }
        func string(_ key: String) throws(AdminRequestError) -> String? {
            guard let value = object[key] else { return nil }
            guard let text = value as? String else { throw AdminRequestError("\(key) must be a string") }
            return text
        }
        func flag(_ key: String) throws(AdminRequestError) -> Bool {
            guard let value = object[key] else { return false }
            guard let flag = value as? Bool else { throw AdminRequestError("\(key) must be true or false") }
            return flag
        }
        var ids: [String]?
        if let value = object["ids"] {
            guard let list = value as? [String] else { throw AdminRequestError("ids must be a list of strings") }
            ids = list
        }
        self.consumer = consumer
        self.filter = try DeadLetterFilter(
            ids: ids,
            eventType: string("eventType"),
            dedupKey: string("dedupKey"),
            since: string("since"),
            until: string("until")
        )
        self.dryRun = try flag("dryRun")
        self.force = try flag("force")
    }
}

extension DeadLetterFilter {
    /// A filter from request text; times are RFC 3339.
    init(ids: [String]?, eventType: String?, dedupKey: String?, since: String?, until: String?) throws(AdminRequestError) {
        func time(_ text: String?, _ name: String) throws(AdminRequestError) -> Date? {
            guard let text else { return nil }
            guard let date = DeadLetter.parseRFC3339(text) else {
                throw AdminRequestError("\(name) must be an RFC 3339 time such as 2026-11-24T10:00:00Z")
            }
            return date
        }
        self.init(
            ids: ids.map(Set.init),
            eventType: eventType,
            dedupKey: dedupKey,
            since: try time(since, "since"),
            until: try time(until, "until")
        )
    }
}

extension DeadLetterAdmin.Failure {
    var response: Response {
        switch self {
        case .unknownConsumer(let name): Response.json(.notFound, ["error": "no consumer named \(name)"])
        case .notReplayable(let name): Response.json(.badRequest, ["error": "\(name) dead letters have no consumer to replay to"])
        case .badCursor(let message): Response.json(.badRequest, ["error": message])
        }
    }
}
