/// Why a webhook request failed signature verification.
///
/// Two errors are equal when they have the same kind; the detail is for humans only. The
/// ``description`` names what was wrong (which header, which rule) and never contains a secret,
/// a computed signature or any part of the request's own signature value.
public struct VerificationError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case missingHeader
        case malformedHeader
        case timestampOutsideTolerance
        case noMatchingSignature
    }

    private let code: Code
    /// A fixed, human-readable explanation. Built only from header names and fixed strings.
    public let detail: String

    private init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    /// The signature header (or one of the headers a scheme needs) is absent.
    public static func missingHeader(_ name: String) -> VerificationError {
        VerificationError(.missingHeader, "missing \(name) header")
    }

    /// The header is present but does not have the scheme's shape.
    public static func malformedHeader(_ name: String, _ reason: String) -> VerificationError {
        VerificationError(.malformedHeader, "malformed \(name) header: \(reason)")
    }

    /// The signed timestamp is further from now than the configured tolerance, in either direction.
    public static var timestampOutsideTolerance: VerificationError {
        VerificationError(.timestampOutsideTolerance, "timestamp outside tolerance")
    }

    /// The header is well formed but no signature in it matches any configured secret.
    public static var noMatchingSignature: VerificationError {
        VerificationError(.noMatchingSignature, "no matching signature")
    }

    public static func == (lhs: VerificationError, rhs: VerificationError) -> Bool {
        lhs.code == rhs.code
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
    }

    public var description: String { detail }
}
