import Hummingbird
import NIOCore

/// The ingress port's request context: Hummingbird's basics plus the client's address, which the
/// per-client rate limit is keyed by.
struct IngressRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    private let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// The peer's IP address as text (on an HTTP/2 stream, the connection's peer). Made only when
    /// asked for: most requests never need it.
    var clientAddress: String? {
        channel.remoteAddress?.ipAddress ?? channel.parent?.remoteAddress?.ipAddress
    }
}
