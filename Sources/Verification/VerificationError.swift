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
    /// For a timestamp outside the tolerance: the signed timestamp (unix seconds), so that an
    /// operator can see how old the refused request was. It is not secret (it is sent in clear).
    public let signedTimestamp: Int64?

    private init(_ code: Code, _ detail: String, signedTimestamp: Int64? = nil) {
        self.code = code
        self.detail = detail
        self.signedTimestamp = signedTimestamp
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

    /// The signature is correct but its timestamp, `signedAt`, is outside the tolerance: a stale
    /// request (a replay, or a retry that re-used its old timestamp). Equal to
    /// ``timestampOutsideTolerance``.
    public static func timestampOutsideTolerance(signedAt: Int64) -> VerificationError {
        VerificationError(.timestampOutsideTolerance, "timestamp outside tolerance", signedTimestamp: signedAt)
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
