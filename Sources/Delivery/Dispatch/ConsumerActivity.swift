public import Foundation

/// What one gateway saw of a consumer lately (kept in memory: it starts empty after a restart, and
/// with several gateways each knows its own attempts).
public struct ConsumerActivity: Sendable, Hashable {
    public var lastDeliveredAt: Date?
    public var lastFailureAt: Date?
    /// `status 503`, or the error when there was no answer (`connection refused`, `timeout`).
    public var lastFailure: String?

    public init(lastDeliveredAt: Date? = nil, lastFailureAt: Date? = nil, lastFailure: String? = nil) {
        self.lastDeliveredAt = lastDeliveredAt
        self.lastFailureAt = lastFailureAt
        self.lastFailure = lastFailure
    }
}
