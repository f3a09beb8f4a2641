/// Why the store could not do what was asked.
///
/// ``unavailable(_:)`` means "not now": the disk is full or read-only, the file was removed, the
/// gateway is draining. The caller answers 503 and the sender retries; nothing was written.
public struct StoreError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case unavailable
        case corrupt
    }

    private let code: Code
    /// What happened, for logs. Never contains event bodies or secrets.
    public let detail: String
    /// The underlying error (SQLite's, the file system's), kept for logs.
    public let underlying: (any Error & Sendable)?

    private init(_ code: Code, _ detail: String, underlying: (any Error & Sendable)?) {
        self.code = code
        self.detail = detail
        self.underlying = underlying
    }

    /// The store cannot durably write right now; nothing of the request was kept.
    public static func unavailable(_ detail: String, underlying: (any Error & Sendable)? = nil) -> StoreError {
        StoreError(.unavailable, detail, underlying: underlying)
    }

    /// A stored record could not be read back as expected.
    public static func corrupt(_ detail: String) -> StoreError {
        StoreError(.corrupt, detail, underlying: nil)
    }

    public static var unavailable: StoreError { .unavailable("") }

    public static func == (lhs: StoreError, rhs: StoreError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    public var description: String {
        if let underlying { "\(detail): \(underlying)" } else { detail }
    }
}
