import Synchronization

/// The bytes of request bodies held in memory at once, across every request of the ingress port.
///
/// A request reserves its body before holding it: its declared `Content-Length` as a whole before
/// reading a byte, or, for a body without one (chunked), each chunk as it arrives. It releases all
/// it reserved when it ends, however it ends (answered, failed, cancelled, connection reset).
/// A reservation that does not fit is refused, and the request is answered 503.
///
/// The last ``smallBodyShare`` of the budget is kept for small bodies (at most ``smallBodyBytes``,
/// which TikTok's events of a few KB are): a flood of large bodies, which fills the budget in steps
/// of `maxBodyBytes`, cannot crowd out real events. So the configured size must be at least twice
/// `maxBodyBytes`, for one body of the largest size to fit beside that share.
///
/// One atomic compare-and-exchange per reservation and one subtraction per release: no lock on
/// the request path. (A body is copied once into `Data` when complete, so for an instant a request
/// holds twice its size; at most one per thread does.)
///
/// ```swift
/// let budget = BodyBudget(limit: 32 << 20)
/// guard budget.reserve(1_024, bodyTotal: 1_024) else { return .serviceUnavailable }
/// defer { budget.release(1_024) }
/// ```
package final class BodyBudget: Sendable {
    /// A body up to this size may use the share of the budget kept for small bodies.
    package static let smallBodyBytes = 64 << 10
    /// The part of the budget only small bodies may use, as a fraction's denominator (1/8).
    static let smallBodyShare = 8

    /// The default size: 32 MiB, 28 bodies of the default `maxBodyBytes` (1 MiB) beside the
    /// small bodies' share, or thousands of TikTok's events of a few KB. Under a flood of 1 MiB
    /// bodies the debug build stays near 100 MB resident (the attack test's bound is 150 MB); at
    /// 64 MiB it came within 15 MB of that bound.
    static let defaultLimit = 32 << 20

    /// Bytes that may be held at once.
    package let limit: Int
    /// What a body larger than ``smallBodyBytes`` may fill the budget up to.
    private let largeBodyLimit: Int
    private let used = Atomic<Int>(0)

    package init(limit: Int = BodyBudget.defaultLimit) {
        precondition(limit > 0, "the budget must be positive")
        self.limit = limit
        self.largeBodyLimit = limit - limit / Self.smallBodyShare
    }

    /// The bytes reserved now.
    var inUse: Int { used.load(ordering: .relaxed) }

    /// Reserves `bytes` more for a body whose total, with them, is `bodyTotal`; `false` if they do
    /// not fit (nothing is reserved then).
    package func reserve(_ bytes: Int, bodyTotal: Int) -> Bool {
        let ceiling = bodyTotal <= Self.smallBodyBytes ? limit : largeBodyLimit
        var current = used.load(ordering: .relaxed)
        while true {
            guard bytes <= ceiling - current else { return false }
            let (exchanged, original) = used.weakCompareExchange(
                expected: current,
                desired: current + bytes,
                ordering: .relaxed
            )
            if exchanged { return true }
            current = original
        }
    }

    /// Gives back `bytes` reserved earlier.
    package func release(_ bytes: Int) {
        guard bytes > 0 else { return }
        used.subtract(bytes, ordering: .relaxed)
    }
}
