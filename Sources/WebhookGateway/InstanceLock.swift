import Foundation

/// An exclusive lock on `<store path>.lock`, held while a gateway serves that store.
///
/// The embedded store belongs to one process: at startup the gateway releases every delivery
/// lease, on the grounds that the process that held them is gone. A second gateway on the same
/// file would break that (and both would deliver the same events), so it refuses to start.
final class InstanceLock {
    struct Held: Error, CustomStringConvertible {
        let path: String
        var description: String { "another webhook-gateway is serving this store (\(path) is locked)" }
    }

    private let descriptor: Int32

    init(path: String) throws {
        try FileManager.default.createDirectory(
            at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw Held(path: path)
        }
        self.descriptor = descriptor
    }

    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
