public import Foundation
import Synchronization

/// Where each dead letter is in its file, with the fields that filters use, so that listing and
/// replaying a few lines of a large file does not decode every line each time.
///
/// The index of a file is built once and then extended with what was appended since (the files
/// are append-only). A file that was rotated, replaced or truncated is indexed anew.
public final class DeadLetterIndex: Sendable {
    /// One line of a dead-letter file.
    public struct Entry: Sendable, Hashable {
        public var id: String
        public var eventType: String?
        public var dedupKey: String
        public var deadLetteredAt: Date
        /// Where the line is in the file, without its newline.
        public var offset: Int
        public var length: Int
    }

    /// Which file an index was built from: a rotated or replaced file is another file, even under
    /// the same name.
    public struct FileIdentity: Sendable, Hashable {
        public var device: UInt64
        public var inode: UInt64

        public init(device: UInt64, inode: UInt64) {
            self.device = device
            self.inode = inode
        }
    }

    /// What the index holds of a file at one moment.
    public struct Snapshot: Sendable {
        /// `nil` when there is no file.
        public var file: FileIdentity?
        /// One entry per id, oldest first (by `offset`).
        public var entries: [Entry]
        public var unreadableLines: Int
    }

    struct FileIndex {
        var identity: FileIdentity
        var indexedBytes: Int
        /// One entry per id: the first line of each.
        var entries: [Entry]
        var ids: Set<String>
        var unreadableLines: Int
    }

    public let writer: DeadLetterWriter
    private let files = Mutex<[String: FileIndex]>([:])

    public init(writer: DeadLetterWriter) {
        self.writer = writer
    }

    /// The lines of `consumer`'s file, oldest first; a line whose `id` appeared earlier in the file
    /// (written again after a crash) is left out. Lines that do not parse are counted, not listed.
    public func entries(consumer: String) -> (entries: [Entry], unreadableLines: Int) {
        let snapshot = snapshot(consumer: consumer)
        return (snapshot.entries, snapshot.unreadableLines)
    }

    /// The entries of `consumer`'s file as ``entries(consumer:)`` lists them, with the file they
    /// were read from. Entries are in file order, so an entry's `offset` also orders them.
    public func snapshot(consumer: String) -> Snapshot {
        let path = writer.path(consumer: consumer)
        guard let handle = FileHandle(forReadingAtPath: path) else {
            files.withLock { $0[consumer] = nil }
            return Snapshot(file: nil, entries: [], unreadableLines: 0)
        }
        defer { try? handle.close() }
        var info = stat()
        guard fstat(handle.fileDescriptor, &info) == 0 else { return Snapshot(file: nil, entries: [], unreadableLines: 0) }
        let stamp = FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        let size = Int(info.st_size)
        var index = files.withLock { $0[consumer] }
        if index == nil || index?.identity != stamp || index!.indexedBytes > size {
            index = FileIndex(identity: stamp, indexedBytes: 0, entries: [], ids: [], unreadableLines: 0)
        }
        guard var index else { return Snapshot(file: stamp, entries: [], unreadableLines: 0) }
        if index.indexedBytes < size {
            // In slices, so that indexing a large file does not hold all of it in memory; a slice
            // that holds no complete line (one huge line) is read again, larger.
            var sliceSize = 4 << 20
            do {
                while index.indexedBytes < size {
                    try handle.seek(toOffset: UInt64(index.indexedBytes))
                    let data = try handle.read(upToCount: min(sliceSize, size - index.indexedBytes)) ?? Data()
                    let before = index.indexedBytes
                    extend(&index, with: data)
                    if index.indexedBytes == before {
                        // No newline in the slice: the line is longer, or still being written.
                        if data.count < sliceSize { break }
                        sliceSize *= 2
                    }
                }
            } catch {
                // Keep what was indexed; the next call tries again.
            }
            files.withLock { $0[consumer] = index }
        }
        return Snapshot(file: stamp, entries: index.entries, unreadableLines: index.unreadableLines)
    }

    /// Indexes the complete lines of `data`, which starts at `index.indexedBytes`. A last line
    /// without its newline (being written right now) waits for the next call.
    private func extend(_ index: inout FileIndex, with data: Data) {
        let base = index.indexedBytes
        var consumed = 0
        data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
            let bytes = buffer.bindMemory(to: UInt8.self)
            var start = 0
            while let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) {
                let length = newline - start
                if length > 0 {
                    let line = Array(bytes[start..<newline])
                    if let entry = (try? DeadLetterLine(line, summaryOnly: true))?.entry(offset: base + start, length: length) {
                        // A line written again after a crash (same id) is left out.
                        if index.ids.insert(entry.id).inserted {
                            index.entries.append(entry)
                        }
                    } else {
                        index.unreadableLines += 1
                    }
                }
                start = newline + 1
                consumed = start
            }
        }
        index.indexedBytes = base + consumed
    }

    /// The dead letters at these entries of `consumer`'s file, in the order given. Entries whose
    /// line no longer reads (the file was rotated since) are left out.
    public func load(_ entries: some Sequence<Entry>, consumer: String) -> [DeadLetter] {
        guard let handle = FileHandle(forReadingAtPath: writer.path(consumer: consumer)) else { return [] }
        defer { try? handle.close() }
        var deadLetters: [DeadLetter] = []
        for entry in entries {
            guard (try? handle.seek(toOffset: UInt64(entry.offset))) != nil,
                let line = try? handle.read(upToCount: entry.length),
                let deadLetter = DeadLetter.read(line: line),
                deadLetter.id == entry.id
            else { continue }
            deadLetters.append(deadLetter)
        }
        return deadLetters
    }
}
