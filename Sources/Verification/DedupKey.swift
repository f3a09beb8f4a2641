import Crypto
public import Foundation

/// The key under which the gateway de-duplicates an event.
///
/// Its text is the key's components joined by `:`, each component percent-encoded so that it
/// contains only `A–Z a–z 0–9 - . _ ~` and `%`. That keeps the text safe for an HTTP header and
/// makes the forms impossible to confuse:
///
/// | form | text |
/// |---|---|
/// | `tiktok` event with an order | `<source>:<event>:<order_id>` |
/// | `tiktok-shop` notification | `<source>:<tts_notification_id>` |
/// | anything else (no order id, not an envelope) | `<source>:sha256=<hex of the raw body's SHA-256>` |
///
/// For example `tiktok:minis.trade_order.redeem.success:order_id_as_in_your_system`.
public struct DedupKey: Sendable, Hashable, CustomStringConvertible {
    /// The key's text, as stored and as sent in `webhook-dedup-key`.
    public let rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    /// `(source, event, order_id)` for the `tiktok` scheme.
    public static func order(source: String, event: String, orderID: String) -> DedupKey {
        DedupKey(rawValue: [source, event, orderID].map(percentEncoded).joined(separator: ":"))
    }

    /// `(source, tts_notification_id)` for the `tiktok-shop` scheme.
    public static func notification(source: String, notificationID: String) -> DedupKey {
        DedupKey(rawValue: percentEncoded(source) + ":" + percentEncoded(notificationID))
    }

    /// `(source, SHA-256 of the raw body)`, the fallback when there is no business id.
    public static func bodyHash(source: String, body: some DataProtocol) -> DedupKey {
        let digest = SHA256.hash(data: body)
        return DedupKey(rawValue: percentEncoded(source) + ":sha256=" + Hex.encode(digest))
    }

    public var description: String { rawValue }

    private static let hex = Array("0123456789ABCDEF".utf8)

    static func percentEncoded(_ component: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(component.utf8.count)
        for byte in component.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
