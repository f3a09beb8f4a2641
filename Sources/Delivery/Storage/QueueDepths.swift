/// The number of unfinished deliveries (pending, leased, or dead letters whose line is not yet
/// written) per consumer, kept up to date by the store as its transactions commit.
///
/// `/metrics` reads the queue depth on every scrape; counting the rows each time costs a scan of
/// the queue, which grows with the backlog just when the gateway is busiest. The store counts once
/// when it opens the database and then applies the changes of each committed transaction.
struct QueueDepths: Sendable, Equatable {
    private(set) var byConsumer: [String: Int] = [:]

    init(_ byConsumer: [String: Int] = [:]) {
        self.byConsumer = byConsumer
    }

    subscript(consumer: String) -> Int { byConsumer[consumer, default: 0] }

    mutating func add(_ count: Int, consumer: String) {
        guard count != 0 else { return }
        byConsumer[consumer, default: 0] += count
    }

    mutating func apply(_ changes: QueueDepths) {
        for (consumer, count) in changes.byConsumer { add(count, consumer: consumer) }
    }
}
