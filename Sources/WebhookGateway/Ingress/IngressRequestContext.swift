import Hummingbird
import NIOCore

/// The ingress port's request context: Hummingbird's basics plus the client's address, which the
/// per-client rate limit is keyed by.
struct IngressRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// The peer's IP address as text (on an HTTP/2 stream, the connection's peer).
    let clientAddress: String?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        clientAddress = source.channel.remoteAddress?.ipAddress ?? source.channel.parent?.remoteAddress?.ipAddress
    }
}
