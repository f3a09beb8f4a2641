import Delivery
import Synchronization

/// What the admin routes need to know of the running gateway.
final class GatewayState: Sendable {
    let store: any EventStore
    private let draining = Atomic<Bool>(false)

    init(store: any EventStore) {
        self.store = store
    }

    /// Set once graceful shutdown has begun: `/readyz` answers 503 from then on.
    var isDraining: Bool { draining.load(ordering: .acquiring) }

    func startDraining() { draining.store(true, ordering: .releasing) }
}
