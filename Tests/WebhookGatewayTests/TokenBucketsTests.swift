import Testing

@testable import WebhookGateway

/// The per-client rate limit's arithmetic, on nanoseconds given by the test (no clock, no sleep).
struct TokenBucketsTests {
    static let second: Int64 = 1_000_000_000

    @Test func burstThenOneTokenPerInterval() {
        var buckets = TokenBuckets(requestsPerSecond: 10, burst: 5)
        for _ in 0..<5 { #expect(buckets.take(client: "a", now: 0) == .allowed) }
        // Empty: the next token is 1/10 s away.
        #expect(buckets.take(client: "a", now: 0) == .limited(retryAfterNanoseconds: Self.second / 10))
        // 50 ms later, half a token: 50 ms to go.
        #expect(buckets.take(client: "a", now: Self.second / 20) == .limited(retryAfterNanoseconds: Self.second / 20))
        #expect(buckets.take(client: "a", now: Self.second / 10) == .allowed)
        #expect(buckets.take(client: "a", now: Self.second / 10) != .allowed)
    }

    @Test func refillsUpToTheBurstOnly() {
        var buckets = TokenBuckets(requestsPerSecond: 10, burst: 3)
        #expect(buckets.take(client: "a", now: 0) == .allowed)
        // An hour of quiet refills to 3, not to 36,000.
        let later = 3_600 * Self.second
        for _ in 0..<3 { #expect(buckets.take(client: "a", now: later) == .allowed) }
        #expect(buckets.take(client: "a", now: later) != .allowed)
    }

    @Test func clientsHaveTheirOwnBuckets() {
        var buckets = TokenBuckets(requestsPerSecond: 1, burst: 1)
        #expect(buckets.take(client: "attacker", now: 0) == .allowed)
        #expect(buckets.take(client: "attacker", now: 0) == .limited(retryAfterNanoseconds: Self.second))
        #expect(buckets.take(client: "tiktok", now: 0) == .allowed)
    }

    @Test func memoryStaysBoundedUnderManyAddresses() {
        var buckets = TokenBuckets(requestsPerSecond: 1, burst: 2, maxClients: 1_000)
        for index in 0..<20_000 {
            _ = buckets.take(client: "10.0.\(index / 256).\(index % 256)", now: Int64(index) * 1_000)
            #expect(buckets.clientCount <= 1_000 + 1)
        }
        // A client limited just now is still limited after the evictions (it is the newest).
        var small = TokenBuckets(requestsPerSecond: 1, burst: 1, maxClients: 2)
        _ = small.take(client: "a", now: 0)
        _ = small.take(client: "b", now: 1)
        _ = small.take(client: "c", now: 2)
        #expect(small.take(client: "c", now: 3) != .allowed)
    }
}
