public import Foundation
public import Logging
public import ServiceLifecycle

/// Prunes the store in the background: expired dedup keys and, with a retention, events whose
/// deliveries all finished longer than the retention ago. Both go in small chunks, each its own
/// short write, so ingest never waits long behind a large delete.
public struct PruneService: Service {
    let dedup: any DedupStore
    let events: (any RetainingStore)?
    let eventRetention: Duration
    let interval: Duration
    let chunkSize: Int
    let logger: Logger
    let now: @Sendable () -> Date

    /// What one pass pruned.
    public struct Pass: Sendable, Hashable {
        public var dedupKeys = 0
        public var eventsMarked = 0
        public var eventsPruned = 0
    }

    /// - Parameters:
    ///   - events: the store whose finished events are pruned after `eventRetention`; `nil` keeps
    ///     every event.
    public init(
        dedup: any DedupStore,
        events: (any RetainingStore)? = nil,
        eventRetention: Duration = .seconds(7 * 86_400),
        interval: Duration = .seconds(60),
        chunkSize: Int = 500,
        logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.dedup = dedup
        self.events = events
        self.eventRetention = eventRetention
        self.interval = interval
        self.chunkSize = chunkSize
        self.logger = logger
        self.now = now
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let pass = await pruneOnce()
            if pass.dedupKeys > 0 { logger.info("expired dedup keys pruned", metadata: ["count": "\(pass.dedupKeys)"]) }
            if pass.eventsPruned > 0 { logger.info("finished events pruned", metadata: ["count": "\(pass.eventsPruned)"]) }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
        }
    }

    /// Prunes everything due by now, chunk by chunk.
    @discardableResult
    public func pruneOnce() async -> Pass {
        var pass = Pass()
        while !Task.isCancelled {
            do {
                let pruned = try await dedup.pruneExpiredDedupKeys(now: now(), limit: chunkSize)
                pass.dedupKeys += pruned
                if pruned < chunkSize { break }
                await Task.yield()
            } catch {
                logger.warning("pruning dedup keys failed; will try again", metadata: ["error": "\(error)"])
                break
            }
        }
        guard let events else { return pass }
        while !Task.isCancelled {
            do {
                let chunk = try await events.pruneFinishedEvents(now: now(), retention: eventRetention, limit: chunkSize)
                pass.eventsMarked += chunk.marked
                pass.eventsPruned += chunk.pruned
                if chunk.marked < chunkSize && chunk.pruned < chunkSize { break }
                await Task.yield()
            } catch {
                logger.warning("pruning events failed; will try again", metadata: ["error": "\(error)"])
                break
            }
        }
        return pass
    }
}
