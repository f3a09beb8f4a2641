import Delivery
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Prometheus
import Testing
import Verification

@testable import WebhookGateway

/// `docs/admin-api.yaml` (served as `/admin/openapi.json`) and the admin router describe the same
/// routes: every route in the router is in the document, and the other way round. The console's
/// static files (`/ui/…`) are a web page, not API, and are left out of both (ConsoleTests).
struct OpenAPIDocumentTests {
    static func document() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(AdminAPIDocument.json.utf8)) as? [String: Any])
    }

    /// `METHOD /path/{parameter}` for every operation of the document.
    static func documentedRoutes() throws -> Set<String> {
        let paths = try #require(try document()["paths"] as? [String: [String: Any]])
        var routes = Set<String>()
        for (path, operations) in paths {
            for method in operations.keys where ["get", "post", "put", "patch", "delete"].contains(method) {
                routes.insert("\(method.uppercased()) \(path)")
            }
        }
        return routes
    }

    /// The same for the router that `serve` builds (`:name` written `{name}`).
    static func routerRoutes() throws -> Set<String> {
        let fixture = try GatewayFixture()
        let router = AdminRouter.make(
            token: Reloadable(Secret("t")), state: GatewayState(store: fixture.store),
            deadLetters: DeadLetterAdmin(
                archive: FileDeadLetterArchive(writer: DeadLetterWriter(directory: fixture.directory.path)), store: fixture.store,
                consumers: [], now: { Date() }, onReplayed: { _ in }),
            registry: PrometheusCollectorRegistry(),
            consumers: ConsumerAdmin(
                dispatcher: Dispatcher(
                    consumers: [], store: fixture.store, observer: NoObserver(), logger: Logger(label: "test"),
                    onDeadLetterDecided: {}),
                store: fixture.store, now: { Date() }, logger: Logger(label: "test")),
            events: EventAdmin(
                store: fixture.store, consumers: Reloadable([]), now: { Date() }, onQueued: { _ in }, logger: Logger(label: "test")),
            refreshGauges: {})
        return Set(
            router.routes.filter { "\($0.path)".split(separator: "/").first != "ui" }.map { route in
                let path = "\(route.path)".split(separator: "/").map { part in
                    part.hasPrefix(":") ? "{\(part.dropFirst())}" : String(part)
                }
                return "\(route.method.rawValue) /" + path.joined(separator: "/")
            })
    }

    struct NoObserver: DispatchObserver {
        func delivered(consumer: String, latency: Duration) {}
        func retried(consumer: String) {}
        func pauseChanged(consumer: String, paused: Bool) {}
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() throws {
        let documented = try Self.documentedRoutes()
        let served = try Self.routerRoutes()
        #expect(
            served.subtracting(documented).isEmpty, "routes missing from docs/admin-api.yaml: \(served.subtracting(documented).sorted())")
        #expect(documented.subtracting(served).isEmpty, "documented routes the router lacks: \(documented.subtracting(served).sorted())")
        #expect(served.contains("GET /admin/events/{id}"))
        #expect(served.count >= 12)
    }

    @Test func theDocumentIsOpenAPI31AndServedWithTheToken() async throws {
        let document = try Self.document()
        #expect(document["openapi"] as? String == "3.1.0")
        let fixture = try GatewayFixture()
        let app = Application(
            router: AdminRouter.make(
                token: Reloadable(Secret("the-token")), state: GatewayState(store: fixture.store),
                deadLetters: DeadLetterAdmin(
                    archive: FileDeadLetterArchive(writer: DeadLetterWriter(directory: fixture.directory.path)),
                    store: fixture.store, consumers: [], now: { Date() }, onReplayed: { _ in }),
                registry: PrometheusCollectorRegistry(), refreshGauges: {}))
        try await app.test(.router) { client in
            try await client.execute(uri: "/admin/openapi.json", method: .get) { response in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(uri: "/admin/openapi.json", method: .get, headers: [.authorization: "Bearer the-token"]) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                let served = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                #expect(served?["openapi"] as? String == "3.1.0")
            }
        }
    }
}
