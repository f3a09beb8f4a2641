import Synchronization

/// A value that a configuration reload (SIGHUP) replaces while readers on any thread use it.
final class Reloadable<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>

    init(_ value: Value) {
        storage = Mutex(value)
    }

    var value: Value { storage.withLock { $0 } }

    func replace(with value: Value) {
        storage.withLock { $0 = value }
    }
}
