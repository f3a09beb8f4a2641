/// Limits a listener puts on its connections, against clients that hold resources without
/// sending requests.
package struct ConnectionLimits: Sendable, Equatable {
    /// A request (its headers and its body, and the TLS handshake before the first one) must
    /// arrive within this time of its first byte.
    package var readTimeout: Duration = .seconds(10)
    /// A connection with no request in progress and nothing received for this long is closed.
    package var idleTimeout: Duration = .seconds(60)
    /// The request line and headers together, at most.
    package var maxHeaderBytes = 16_384
    /// Open connections at most. At the limit an idle connection is closed to make room for a new
    /// one; when none is idle the new connection is refused (closed at once).
    package var maxConnections = 1_024

    package init() {}
}
