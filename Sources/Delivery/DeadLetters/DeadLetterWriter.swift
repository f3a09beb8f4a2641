import Foundation

/// Appends dead letters to `<directory>/<consumer>.jsonl`, one JSON object per line, and fsyncs
/// the file before returning.
///
/// The file is opened for each append and closed after it (`O_APPEND`), so an operator can read,
/// copy or rotate it (`mv orders.jsonl orders.jsonl.1`) at any time: the next append creates a new
/// file. A line is written with a single `write` of the whole line.
///
/// Every line in the file is whole: an append that fails part-way (the disk fills after some of its
/// bytes, or the fsync fails) is cut back to the file's length before it, and the cut is fsync'd.
/// The delivery then stays in its queue and its line is written again once the disk recovers.
public struct DeadLetterWriter: Sendable {
    /// Why a dead letter could not be written; the delivery then stays in its queue.
    public struct WriteError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    public func path(consumer: String) -> String {
        URL(fileURLWithPath: directory).appendingPathComponent("\(consumer).jsonl").path
    }

    /// Appends the lines for `consumer` and fsyncs them.
    public func append(_ deadLetters: [DeadLetter], consumer: String) throws(WriteError) {
        guard !deadLetters.isEmpty else { return }
        var bytes: [UInt8] = []
        let encoder = DeadLetter.encoder
        for deadLetter in deadLetters {
            guard let line = try? encoder.encode(deadLetter) else {
                throw WriteError(description: "cannot encode dead letter \(deadLetter.id)")
            }
            bytes += line
            bytes.append(UInt8(ascii: "\n"))
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw WriteError(description: "cannot create \(directory): \(error)")
        }
        let file = path(consumer: consumer)
        let created = !FileManager.default.fileExists(atPath: file)
        let descriptor = open(file, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else { throw WriteError(description: "cannot open \(file): errno \(errno)") }
        defer { close(descriptor) }
        // The length before the append: a write that fails part-way (the disk fills after some of
        // the bytes) is cut back to it, so that every line in the file stays whole.
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw WriteError(description: "cannot stat \(file): errno \(errno)") }
        let lengthBefore = info.st_size
        if lengthBefore > 0 && !endsWithNewline(descriptor, length: lengthBefore) {
            // A line cut off by a crash (or an append whose cut-back failed): the new lines start
            // on a line of their own, so that only the broken one is unreadable.
            bytes.insert(UInt8(ascii: "\n"), at: 0)
        }
        do throws(WriteError) {
            try writeAll(bytes, to: descriptor, file: file)
            guard fsync(descriptor) == 0 else { throw WriteError(description: "cannot fsync \(file): errno \(errno)") }
        } catch {
            // Shrinking needs no free space. If even this fails, readers skip the broken line as
            // unreadable, and the next append starts on a line of its own (above).
            if ftruncate(descriptor, lengthBefore) == 0 { fsync(descriptor) }
            throw error
        }
        if created {
            // Make the new file's directory entry durable too.
            let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if directoryDescriptor >= 0 {
                fsync(directoryDescriptor)
                close(directoryDescriptor)
            }
        }
    }

    private func endsWithNewline(_ descriptor: Int32, length: off_t) -> Bool {
        var last: UInt8 = 0
        return pread(descriptor, &last, 1, length - 1) == 1 && last == UInt8(ascii: "\n")
    }

    private func writeAll(_ bytes: [UInt8], to descriptor: Int32, file: String) throws(WriteError) {
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, $0.count - written) }
            if result < 0 {
                if errno == EINTR { continue }
                throw WriteError(description: "cannot write \(file): errno \(errno)")
            }
            written += result
        }
    }

    /// Every dead letter in `consumer`'s file, oldest first. Lines that do not parse are skipped
    /// and counted.
    public func read(consumer: String) -> (deadLetters: [DeadLetter], unreadableLines: Int) {
        guard let data = FileManager.default.contents(atPath: path(consumer: consumer)) else { return ([], 0) }
        var deadLetters: [DeadLetter] = []
        var unreadable = 0
        for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            if let deadLetter = DeadLetter.read(line: line) {
                deadLetters.append(deadLetter)
            } else {
                unreadable += 1
            }
        }
        return (deadLetters, unreadable)
    }
}
