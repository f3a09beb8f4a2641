import Delivery
import Foundation
import Hummingbird
import NIOCore
import Prometheus
import Verification

/// The admin listener's routes: `/healthz`, `/readyz` (open), `/metrics` (bearer token).
enum AdminRouter {
    static func make(
        token: Secret,
        state: GatewayState,
        registry: PrometheusCollectorRegistry,
        refreshGauges: @escaping @Sendable () async -> Void
    ) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: BearerTokenMiddleware(token: token, openPaths: ["/healthz", "/readyz"]))
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
        return router
    }
}
