public import Foundation
public import Logging
public import ServiceLifecycle

/// Deletes expired dedup keys in the background, in small chunks so that ingest never waits long
/// behind a large delete.
public struct DedupPruneService: Service {
    let store: any DedupStore
    let interval: Duration
    let chunkSize: Int
    let logger: Logger
    let now: @Sendable () -> Date

    public init(
        store: any DedupStore,
        interval: Duration = .seconds(60),
        chunkSize: Int = 500,
        logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.store = store
        self.interval = interval
        self.chunkSize = chunkSize
        self.logger = logger
        self.now = now
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let pruned = await pruneOnce()
            if pruned > 0 { logger.info("expired dedup keys pruned", metadata: ["count": "\(pruned)"]) }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
        }
    }

    /// Prunes every key expired by now, chunk by chunk; returns how many.
    @discardableResult
    public func pruneOnce() async -> Int {
        var total = 0
        while !Task.isCancelled {
            do {
                let pruned = try await store.pruneExpiredDedupKeys(now: now(), limit: chunkSize)
                total += pruned
                if pruned < chunkSize { break }
                await Task.yield()
            } catch {
                logger.warning("pruning dedup keys failed; will try again", metadata: ["error": "\(error)"])
                break
            }
        }
        return total
    }
}
