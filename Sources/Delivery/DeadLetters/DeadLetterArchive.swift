public import Foundation

/// Where dead letters are kept for good: the JSONL files (`storage.kind` `sqlite`) or the shared
/// `dead_letters` table (`postgres`). ``DeadLetterService`` appends to it; the admin API lists,
/// loads and replays from it.
public protocol DeadLetterArchive: Sendable {
    /// Appends the dead letters of `consumer` durably. Appending a dead letter whose id is already
    /// kept (written again after a crash) must not make it appear twice to readers.
    func append(_ deadLetters: [DeadLetter], consumer: String) async throws

    /// What is kept for `consumer`: one entry per id, oldest first (by `offset`).
    func snapshot(consumer: String) async throws -> DeadLetterIndex.Snapshot

    /// The dead letters of `entries` (taken from a snapshot of `consumer`), in their order.
    func load(_ entries: [DeadLetterIndex.Entry], consumer: String) async throws -> [DeadLetter]
}

/// The files: `<directory>/<consumer>.jsonl`, appended with fsync, read through the index.
public struct FileDeadLetterArchive: DeadLetterArchive {
    public let writer: DeadLetterWriter
    public let index: DeadLetterIndex

    public init(writer: DeadLetterWriter) {
        self.writer = writer
        self.index = DeadLetterIndex(writer: writer)
    }

    public func append(_ deadLetters: [DeadLetter], consumer: String) async throws {
        try writer.append(deadLetters, consumer: consumer)
    }

    public func snapshot(consumer: String) async throws -> DeadLetterIndex.Snapshot {
        let index = self.index
        // Indexing a large file takes a while: off the cooperative threads that also serve ingest.
        return try await Self.offload { index.snapshot(consumer: consumer) }
    }

    public func load(_ entries: [DeadLetterIndex.Entry], consumer: String) async throws -> [DeadLetter] {
        let index = self.index
        return try await Self.offload { index.load(entries, consumer: consumer) }
    }

    static func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
        }
    }
}
