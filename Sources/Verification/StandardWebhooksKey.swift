import Crypto
import Foundation

/// A Standard Webhooks signing secret: `whsec_` followed by the base64 of 24 to 64 random bytes.
///
/// ```swift
/// let key = try StandardWebhooksKey(secret: "whsec_…")
/// ```
public struct StandardWebhooksKey: Sendable {
    /// Why a secret is not a usable Standard Webhooks secret. Never contains the secret.
    public struct FormatError: Error, Hashable, Sendable, CustomStringConvertible {
        public let description: String
    }

    public static let prefix = "whsec_"
    public static let byteCounts = 24...64

    /// An HMAC keyed once here and copied for each message: keying costs more than a small body.
    private let keyed: HMAC<SHA256>

    public init(secret: Secret) throws(FormatError) {
        let text = secret.text
        guard text.hasPrefix(Self.prefix) else {
            throw FormatError(description: "a signing secret must start with \"whsec_\"")
        }
        guard let raw = Data(base64Encoded: String(text.dropFirst(Self.prefix.count))) else {
            throw FormatError(description: "a signing secret must be \"whsec_\" followed by base64")
        }
        guard Self.byteCounts.contains(raw.count) else {
            throw FormatError(description: "a signing secret must encode 24 to 64 bytes, found \(raw.count)")
        }
        self.keyed = HMAC<SHA256>(key: SymmetricKey(data: raw))
    }

    /// A new random secret in `whsec_` form, for `check-config`'s advice and for tests.
    public static func generateSecret(byteCount: Int = 32) -> Secret {
        let key = SymmetricKey(size: SymmetricKeySize(bitCount: byteCount * 8))
        return key.withUnsafeBytes { Secret(Self.prefix + Data($0).base64EncodedString()) }
    }

    /// The raw signature bytes of `id.timestamp.body`.
    func mac(id: String, timestamp: Int64, body: some DataProtocol) -> HMAC<SHA256>.MAC {
        var hmac = keyed
        hmac.update(data: Array("\(id).\(timestamp).".utf8))
        hmac.update(data: body)
        return hmac.finalize()
    }
}
