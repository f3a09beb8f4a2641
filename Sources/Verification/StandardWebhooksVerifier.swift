public import Foundation

/// Verifies a Standard Webhooks request, as a consumer of the gateway does.
///
/// Reads `webhook-id`, `webhook-timestamp` and `webhook-signature` (names in any case). The
/// signature header is a space-separated list of `<version>,<base64>`; entries of versions other
/// than `v1` are ignored, and any `v1` entry that matches is enough. The timestamp must be within
/// `tolerance` of now, in either direction.
///
/// ```swift
/// let verifier = try StandardWebhooksVerifier(secret: Secret("whsec_…"))
/// try verifier.verify(body: body, headers: headers, now: .now)
/// ```
public struct StandardWebhooksVerifier: Sendable {
    public static let defaultTolerance: Duration = .seconds(300)

    private let key: StandardWebhooksKey
    private let toleranceSeconds: Int64

    public init(
        secret: Secret,
        tolerance: Duration = StandardWebhooksVerifier.defaultTolerance
    ) throws(StandardWebhooksKey.FormatError) {
        self.key = try StandardWebhooksKey(secret: secret)
        self.toleranceSeconds = tolerance.components.seconds
    }

    /// Verifies and returns the message id (`webhook-id`), which a consumer de-duplicates on.
    @discardableResult
    public func verify(
        body: some DataProtocol,
        headers: some Sequence<(String, String)>,
        now: Date
    ) throws(VerificationError) -> String {
        let id = try Self.header("webhook-id", "webhook-id", headers)
        let timestampText = try Self.header("webhook-timestamp", "webhook-timestamp", headers)
        let signatures = try Self.header("webhook-signature", "webhook-signature", headers)

        guard let timestamp = Int64(timestampText), timestampText.allSatisfy(\.isASCIIDigit) else {
            throw .malformedHeader("webhook-timestamp", "not unix seconds")
        }
        guard abs(Int64(now.timeIntervalSince1970.rounded(.down)) - timestamp) <= toleranceSeconds else {
            throw .timestampOutsideTolerance
        }
        // Compared as text, so that only the one canonical base64 spelling matches.
        let expected = Array(Data(key.mac(id: id, timestamp: timestamp, body: body)).base64EncodedString().utf8)
        var sawVersion1 = false
        for entry in signatures.split(separator: " ", omittingEmptySubsequences: true) {
            guard let comma = entry.firstIndex(of: ","), entry[..<comma] == "v1" else { continue }
            sawVersion1 = true
            let candidate = Array(entry[entry.index(after: comma)...].utf8)
            let matches = expected.withUnsafeBytes { expectedBytes in
                candidate.withUnsafeBytes { constantTimeEquals(expectedBytes, $0) }
            }
            if matches { return id }
        }
        guard sawVersion1 else { throw .malformedHeader("webhook-signature", "no v1 signature") }
        throw .noMatchingSignature
    }

    private static func header(
        _ name: StaticString,
        _ displayName: String,
        _ headers: some Sequence<(String, String)>
    ) throws(VerificationError) -> String {
        switch HeaderLookup.find(name, in: headers) {
        case .absent: throw .missingHeader(displayName)
        case .repeated: throw .malformedHeader(displayName, "header repeated")
        case .found(let value): return value
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
