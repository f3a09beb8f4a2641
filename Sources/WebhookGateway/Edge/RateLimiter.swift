import NIOCore
import Synchronization

/// Per-client request rate as token buckets: each client address has a bucket of `burst` tokens
/// that refills at `requestsPerSecond`; a request takes one token, and a request that finds the
/// bucket empty is refused with the time until the next token.
///
/// A pure state machine: time comes in as a number of nanoseconds, so the arithmetic is tested
/// without a clock. At most `maxClients` buckets are kept; past that, the buckets that are full
/// again (clients that have been quiet) are dropped, and if none is, the oldest half goes. A
/// dropped client starts again with a full bucket, so memory stays bounded under a flood of
/// source addresses at the price of letting such clients burst once more.
struct TokenBuckets: Sendable {
    enum Decision: Equatable, Sendable {
        case allowed
        /// Refused; a token will be there after this many nanoseconds.
        case limited(retryAfterNanoseconds: Int64)
    }

    private struct Bucket: Sendable {
        var tokens: Double
        var updated: Int64
    }

    let requestsPerSecond: Double
    let burst: Double
    let maxClients: Int
    private var buckets: [String: Bucket] = [:]

    init(requestsPerSecond: Int, burst: Int, maxClients: Int = 100_000) {
        self.requestsPerSecond = Double(requestsPerSecond)
        self.burst = Double(burst)
        self.maxClients = maxClients
    }

    var clientCount: Int { buckets.count }

    mutating func take(client: String, now: Int64) -> Decision {
        var bucket = buckets[client] ?? Bucket(tokens: burst, updated: now)
        let elapsed = Double(max(0, now - bucket.updated)) / 1e9
        bucket.tokens = min(burst, bucket.tokens + elapsed * requestsPerSecond)
        bucket.updated = now
        let decision: Decision
        if bucket.tokens >= 1 {
            bucket.tokens -= 1
            decision = .allowed
        } else {
            let wait = (1 - bucket.tokens) / requestsPerSecond
            decision = .limited(retryAfterNanoseconds: Int64((wait * 1e9).rounded(.up)))
        }
        if buckets.updateValue(bucket, forKey: client) == nil && buckets.count > maxClients {
            evict(now: now, keeping: client)
        }
        return decision
    }

    private mutating func evict(now: Int64, keeping client: String) {
        let refill = requestsPerSecond
        let full = burst
        buckets = buckets.filter { key, bucket in
            key == client || bucket.tokens + Double(max(0, now - bucket.updated)) / 1e9 * refill < full
        }
        guard buckets.count > maxClients else { return }
        let oldest = buckets.sorted { $0.value.updated < $1.value.updated }.prefix(buckets.count / 2)
        for (key, _) in oldest where key != client { buckets[key] = nil }
    }
}

/// ``TokenBuckets`` behind a lock, on the system's monotonic clock.
final class RateLimiter: Sendable {
    private let buckets: Mutex<TokenBuckets>

    init(requestsPerSecond: Int, burst: Int) {
        buckets = Mutex(TokenBuckets(requestsPerSecond: requestsPerSecond, burst: burst))
    }

    /// `nil` if `client` may send a request now, else the whole seconds to wait (at least 1).
    func check(client: String) -> Int? {
        let now = Int64(NIODeadline.now().uptimeNanoseconds)
        switch buckets.withLock({ $0.take(client: client, now: now) }) {
        case .allowed:
            return nil
        case .limited(let nanoseconds):
            return max(1, Int((nanoseconds + 999_999_999) / 1_000_000_000))
        }
    }
}
