public import Foundation

/// What the gateway needs to know of a verified event: its type, its de-duplication key and the
/// order it belongs to.
///
/// Parsing happens only after verification: ``parse(body:source:verified:)`` asks for the
/// ``VerifiedRequest`` that a verifier returned.
///
/// The envelopes, by scheme:
/// - `tiktok`: a JSON object with a non-empty string `event` and, optionally, `content`, which must
///   then be a string. When `content` is itself a JSON object, its `order_id`, `trade_order_id`
///   and `is_sandbox` are read (ids may be strings or integers). The key is
///   `(source, event, order_id)`, or the body's SHA-256 when there is no `order_id`.
/// - `tiktok-shop`: a JSON object with an integer `type` (the event type, as a decimal string),
///   and optionally `tts_notification_id`, `shop_id` and `data.order_id`. The key is
///   `(source, tts_notification_id)`, or the body's SHA-256 when there is none.
/// Anything else is ``ParsedBody/notAnEnvelope(_:)``.
public struct Envelope: Sendable, Hashable {
    /// `event` (tiktok) or `type` as a decimal string (tiktok-shop).
    public let eventType: String
    public let dedupKey: DedupKey
    /// The business order the event belongs to (`content.order_id` or `data.order_id`), used to
    /// keep the events of one order in sequence.
    public let orderID: String?
    /// `content.trade_order_id` (tiktok).
    public let tradeOrderID: String?
    /// `content.is_sandbox` (tiktok).
    public let isSandbox: Bool?
    /// `tts_notification_id` (tiktok-shop).
    public let notificationID: String?
    /// `shop_id` (tiktok-shop).
    public let shopID: String?

    /// Parses the envelope of a verified body received on the source named `source`.
    public static func parse(body: some DataProtocol, source: String, verified: VerifiedRequest) -> ParsedBody {
        let data = Data(body)
        let decoder = JSONDecoder()
        switch verified.scheme {
        case .tiktok:
            guard let envelope = try? decoder.decode(TikTokEnvelope.self, from: data), !envelope.event.isEmpty else {
                return .notAnEnvelope(NotAnEnvelope(dedupKey: .bodyHash(source: source, body: data), reason: "not a TikTok event envelope"))
            }
            let content = envelope.content.flatMap { try? decoder.decode(TikTokContent.self, from: Data($0.utf8)) }
            let orderID = content?.orderID
            let key: DedupKey =
                if let orderID { .order(source: source, event: envelope.event, orderID: orderID) } else {
                    .bodyHash(source: source, body: data)
                }
            return .envelope(
                Envelope(
                    eventType: envelope.event, dedupKey: key, orderID: orderID,
                    tradeOrderID: content?.tradeOrderID, isSandbox: content?.isSandbox,
                    notificationID: nil, shopID: nil
                )
            )
        default:
            guard let envelope = try? decoder.decode(ShopEnvelope.self, from: data) else {
                return .notAnEnvelope(
                    NotAnEnvelope(dedupKey: .bodyHash(source: source, body: data), reason: "not a TikTok Shop notification envelope"))
            }
            let key: DedupKey =
                if let id = envelope.notificationID { .notification(source: source, notificationID: id) } else {
                    .bodyHash(source: source, body: data)
                }
            return .envelope(
                Envelope(
                    eventType: String(envelope.type), dedupKey: key, orderID: envelope.orderID,
                    tradeOrderID: nil, isSandbox: nil,
                    notificationID: envelope.notificationID, shopID: envelope.shopID
                )
            )
        }
    }
}

/// The result of ``Envelope/parse(body:source:verified:)``.
public enum ParsedBody: Sendable, Hashable {
    case envelope(Envelope)
    /// A correctly signed body that is not the scheme's envelope. It is still accepted (the sender
    /// would otherwise retry it for days) and kept as a dead letter for an operator.
    case notAnEnvelope(NotAnEnvelope)

    /// The key to de-duplicate on, whichever case this is.
    public var dedupKey: DedupKey {
        switch self {
        case .envelope(let envelope): envelope.dedupKey
        case .notAnEnvelope(let unparsed): unparsed.dedupKey
        }
    }
}

/// A verified body that is not an envelope: keyed by its SHA-256, with a fixed reason.
public struct NotAnEnvelope: Sendable, Hashable {
    public let dedupKey: DedupKey
    public let reason: String
}

// MARK: - JSON shapes

/// A JSON string or integer, as text. TikTok sends ids as strings; integers are accepted too.
private struct FlexibleID: Decodable {
    let text: String

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self.text = text
        } else if let number = try? container.decode(Int64.self) {
            self.text = String(number)
        } else {
            self.text = String(try container.decode(UInt64.self))
        }
    }
}

private struct TikTokEnvelope: Decodable {
    let event: String
    let content: String?
}

/// The `content` string of a TikTok event, read field by field: a field of an unexpected type is
/// treated as absent rather than failing the whole event.
private struct TikTokContent: Decodable {
    let orderID: String?
    let tradeOrderID: String?
    let isSandbox: Bool?

    enum CodingKeys: String, CodingKey {
        case orderID = "order_id"
        case tradeOrderID = "trade_order_id"
        case isSandbox = "is_sandbox"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        orderID = (try? container.decodeIfPresent(FlexibleID.self, forKey: .orderID))??.text.nonEmpty
        tradeOrderID = (try? container.decodeIfPresent(FlexibleID.self, forKey: .tradeOrderID))??.text.nonEmpty
        isSandbox = (try? container.decodeIfPresent(Bool.self, forKey: .isSandbox)) ?? nil
    }
}

private struct ShopEnvelope: Decodable {
    let type: Int64
    let notificationID: String?
    let shopID: String?
    let orderID: String?

    enum CodingKeys: String, CodingKey {
        case type
        case notificationID = "tts_notification_id"
        case shopID = "shop_id"
        case data
    }

    enum DataKeys: String, CodingKey {
        case orderID = "order_id"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        type = try container.decode(Int64.self, forKey: .type)
        notificationID = (try? container.decodeIfPresent(FlexibleID.self, forKey: .notificationID))??.text.nonEmpty
        shopID = (try? container.decodeIfPresent(FlexibleID.self, forKey: .shopID))??.text.nonEmpty
        let data = try? container.nestedContainer(keyedBy: DataKeys.self, forKey: .data)
        orderID = (try? data?.decodeIfPresent(FlexibleID.self, forKey: .orderID))??.text.nonEmpty
    }
}

extension String {
    fileprivate var nonEmpty: String? { isEmpty ? nil : self }
}
