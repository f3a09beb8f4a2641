/// A secret value (an HMAC key, a token) that never prints itself.
///
/// `description`, `debugDescription` and string interpolation all show `<redacted>`, so a secret
/// that ends up in a log line, an error or a dump by accident does not leak.
///
/// ```swift
/// let secret = Secret("client_secret_example")
/// print("using \(secret)")  // using <redacted>
/// ```
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The secret's bytes. Read only where the key is needed.
    public let bytes: [UInt8]

    public init(_ value: String) {
        self.bytes = Array(value.utf8)
    }

    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The secret as UTF-8 text, for protocols that compare text (the admin bearer token).
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public var isEmpty: Bool { bytes.isEmpty }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }

    /// Compares with `other` in time that depends only on the lengths.
    public func constantTimeEquals(_ other: some Collection<UInt8>) -> Bool {
        let other = Array(other)
        return bytes.withUnsafeBytes { lhs in
            other.withUnsafeBytes { rhs in Verification.constantTimeEquals(lhs, rhs) }
        }
    }
}
