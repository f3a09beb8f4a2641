import Crypto
public import Foundation

/// Verifies the `tiktok-shop` scheme: `Authorization: <hex>` (no `Bearer`).
///
/// The signed bytes are the app key followed by the raw body, MACed with HMAC-SHA256 keyed by the
/// app secret. The scheme carries no timestamp, so there is no tolerance window; replays are
/// caught by de-duplication on `tts_notification_id`.
public struct TikTokShopVerifier: Sendable {
    /// The header name, lowercase.
    public static let headerName = "authorization"

    /// One HMAC per secret, keyed and fed the app key once here: every signed message starts with
    /// the app key, so each verification copies one (a value type) and adds only the body.
    private let authenticators: [HMAC<SHA256>]

    public init(appKey: Secret, secrets: [Secret]) {
        precondition(!secrets.isEmpty, "at least one secret is needed")
        self.authenticators = secrets.map { secret in
            var hmac = HMAC<SHA256>(key: SymmetricKey(data: secret.bytes))
            hmac.update(data: appKey.bytes)
            return hmac
        }
    }

    /// Verifies `body` against the `Authorization` header found in `headers` (name in any case).
    /// Surrounding spaces are ignored; the value must be exactly 64 lowercase hex digits.
    public func verify(
        body: some DataProtocol,
        headers: some Sequence<(String, String)>
    ) throws(VerificationError) -> VerifiedRequest {
        var header = try Self.header(in: headers)
        let result = header.withUTF8 { raw in
            Result { () throws(VerificationError) -> Bool in
                let hex = try Self.parse(header: raw)
                for authenticator in authenticators {
                    var hmac = authenticator
                    hmac.update(data: body)
                    let mac = hmac.finalize()
                    if mac.withUnsafeBytes({ Hex.constantTimeEquals(hex: hex, bytes: $0) }) { return true }
                }
                return false
            }
        }
        guard try result.get() else { throw .noMatchingSignature }
        return VerifiedRequest(scheme: .tiktokShop, timestamp: nil)
    }

    /// Checks that the `Authorization` header is present once and is 64 lowercase hex digits,
    /// without the body: what can be refused before a body is read. ``verify(body:headers:)``
    /// repeats this check.
    public static func checkHeader(in headers: some Sequence<(String, String)>) throws(VerificationError) {
        var header = try Self.header(in: headers)
        let result = header.withUTF8 { raw in
            Result { () throws(VerificationError) in _ = try parse(header: raw) }
        }
        try result.get()
    }

    private static var headerDisplayName: String { "Authorization" }

    private static func header(in headers: some Sequence<(String, String)>) throws(VerificationError) -> String {
        switch HeaderLookup.find("authorization", in: headers) {
        case .absent: throw .missingHeader(headerDisplayName)
        case .repeated: throw .malformedHeader(headerDisplayName, "header repeated")
        case .found(let value): return value
        }
    }

    /// The hex digits of the header, without surrounding spaces or tabs.
    private static func parse(header raw: UnsafeBufferPointer<UInt8>) throws(VerificationError) -> UnsafeBufferPointer<UInt8> {
        var lower = 0
        var upper = raw.count
        while lower < upper && (raw[lower] == UInt8(ascii: " ") || raw[lower] == UInt8(ascii: "\t")) { lower += 1 }
        while upper > lower && (raw[upper - 1] == UInt8(ascii: " ") || raw[upper - 1] == UInt8(ascii: "\t")) { upper -= 1 }
        let hex = UnsafeBufferPointer(rebasing: raw[lower..<upper])
        guard Hex.isHex(hex, byteCount: SHA256.byteCount) else {
            throw .malformedHeader(headerDisplayName, "not 64 hex digits")
        }
        return hex
    }
}
