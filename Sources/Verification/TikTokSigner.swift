import Crypto
public import Foundation

/// Produces the signature headers TikTok and TikTok Shop send, for the developer tools and tests.
///
/// ```swift
/// let header = TikTokSigner.tiktokSignature(secret: Secret("…"), timestamp: 1615338610, body: body)
/// // "t=1615338610,s=9a04…"
/// ```
public enum TikTokSigner {
    /// The `TikTok-Signature` value: `t=<timestamp>,s=<hex HMAC-SHA256 of "t.body">`.
    public static func tiktokSignature(secret: Secret, timestamp: Int64, body: some DataProtocol) -> String {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: secret.bytes))
        hmac.update(data: Array("\(timestamp).".utf8))
        hmac.update(data: body)
        return "t=\(timestamp),s=" + Hex.encode(hmac.finalize())
    }

    /// The `Authorization` value of the tiktok-shop scheme: hex HMAC-SHA256 of `appKey + body`.
    public static func tiktokShopAuthorization(appKey: Secret, secret: Secret, body: some DataProtocol) -> String {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: secret.bytes))
        hmac.update(data: appKey.bytes)
        hmac.update(data: body)
        return Hex.encode(hmac.finalize())
    }
}
