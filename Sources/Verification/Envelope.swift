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
///   and `is_sandbox` are read (ids may be strings or integers). For `minis.trade_order.*` events
///   the key is `(source, event, order_id)`; every other event, and a trade-order event without an
///   `order_id`, is keyed by the body's SHA-256 (a subscription order renews many times).
/// - `tiktok-shop`: a JSON object with an integer `type` (the event type, as a decimal string),
///   and optionally `tts_notification_id`, `shop_id` and `data.order_id`. The key is
///   `(source, tts_notification_id)`, or the body's SHA-256 when there is none.
/// `dedup.keys` rules (``DedupRule``) override these keys for the event types they match.
/// Anything else is ``ParsedBody/notAnEnvelope(_:)``.
public struct Envelope: Sendable, Hashable {
    /// `event` (tiktok) or `type` as a decimal string (tiktok-shop).
    public let eventType: String
    public internal(set) var dedupKey: DedupKey
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
    /// The notification's `timestamp`, unix seconds (tiktok-shop; not part of its signature).
    public var timestamp: Int64? = nil
    /// A `dedup.keys` rule applied to the event but a field was missing, so the key is the body's
    /// hash: a rule that names a field the events do not have (counted and logged by the gateway).
    public internal(set) var ruleFellBack = false

    /// Parses the envelope of a verified body received on the source named `source`; the first of
    /// `rules` that applies to the event's type makes its key.
    public static func parse(
        body: some DataProtocol, source: String, verified: VerifiedRequest, rules: [DedupRule] = []
    ) -> ParsedBody {
        parse(bytes: Array(body), source: source, verified: verified, rules: rules)
    }

    /// The same for `Data`, specialized here (as `WebhookVerifier` does for the request path).
    public static func parse(body: Data, source: String, verified: VerifiedRequest, rules: [DedupRule] = []) -> ParsedBody {
        parse(bytes: Array(body), source: source, verified: verified, rules: rules)
    }

    /// The event family keyed by `(source, event, content.order_id)`.
    static let tradeOrderPrefix = "minis.trade_order."

    private static func parse(bytes: [UInt8], source: String, verified: VerifiedRequest, rules: [DedupRule]) -> ParsedBody {
        let parsed = parseDefault(bytes: bytes, source: source, verified: verified)
        guard case .envelope(var envelope) = parsed, let rule = rules.first(where: { $0.applies(to: envelope.eventType) }) else {
            return parsed
        }
        if let values = RuleFields.values(of: rule.fields, in: bytes) {
            envelope.dedupKey = .fields(source: source, eventType: envelope.eventType, values: values)
        } else {
            envelope.dedupKey = .bodyHash(source: source, body: bytes)
            envelope.ruleFellBack = true
        }
        return .envelope(envelope)
    }

    /// The envelope with the scheme's own key.
    private static func parseDefault(bytes: [UInt8], source: String, verified: VerifiedRequest) -> ParsedBody {
        switch verified.scheme {
        case .tiktok:
            guard let fields = try? TikTokFields(bytes), let event = fields.event, !event.isEmpty else {
                return .notAnEnvelope(
                    NotAnEnvelope(dedupKey: .bodyHash(source: source, body: bytes), reason: "not a TikTok event envelope"))
            }
            let content = fields.content.flatMap { try? ContentFields(JSONScanner(utf8: $0)) }
            let orderID = content?.orderID
            // Only a trade order's events are keyed by the order: one order is redeemed once (a
            // retry is a duplicate) and a refund traceback is a new event. Every other family
            // (a subscription renews many times under one order id) is keyed by the body's hash:
            // when the business key is not certain, the gateway delivers rather than drops.
            let key: DedupKey =
                if let orderID, event.hasPrefix(Self.tradeOrderPrefix) {
                    .order(source: source, event: event, orderID: orderID)
                } else {
                    .bodyHash(source: source, body: bytes)
                }
            return .envelope(
                Envelope(
                    eventType: event, dedupKey: key, orderID: orderID,
                    tradeOrderID: content?.tradeOrderID, isSandbox: content?.isSandbox,
                    notificationID: nil, shopID: nil
                )
            )
        default:
            guard let fields = try? ShopFields(bytes), let type = fields.type else {
                return .notAnEnvelope(
                    NotAnEnvelope(dedupKey: .bodyHash(source: source, body: bytes), reason: "not a TikTok Shop notification envelope")
                )
            }
            let key: DedupKey =
                if let id = fields.notificationID { .notification(source: source, notificationID: id) } else {
                    .bodyHash(source: source, body: bytes)
                }
            return .envelope(
                Envelope(
                    eventType: String(type), dedupKey: key, orderID: fields.orderID,
                    tradeOrderID: nil, isSandbox: nil,
                    notificationID: fields.notificationID, shopID: fields.shopID, timestamp: fields.timestamp
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

// MARK: - Envelope fields

/// An id may be a JSON string or integer; as text. Anything else, or empty, counts as absent.
private func identifier(_ scalar: JSONScanner.Scalar) -> String? {
    switch scalar {
    case .string(let text), .integer(let text): text.isEmpty ? nil : text
    default: nil
    }
}

/// The top level of a TikTok event: `event` must be a string and `content`, if present, a string
/// (or null); otherwise the body is not an envelope.
private struct TikTokFields {
    var event: String?
    var content: String?

    init(_ bytes: [UInt8]) throws(JSONScanner.Invalid) {
        var scanner = try JSONScanner(bytes)
        var event: String?
        var content: String?
        try scanner.readDocument { key, scanner throws(JSONScanner.Invalid) in
            switch key {
            case "event":
                guard case .string(let text) = try scanner.readScalar() else { throw JSONScanner.Invalid() }
                event = text
            case "content":
                switch try scanner.readScalar() {
                case .string(let text): content = text
                case .null: content = nil
                default: throw JSONScanner.Invalid()
                }
            default:
                try scanner.skipValue()
            }
        }
        self.event = event
        self.content = content
    }
}

/// The `content` string of a TikTok event, read field by field: a field of an unexpected type is
/// treated as absent rather than failing the whole event.
private struct ContentFields {
    var orderID: String?
    var tradeOrderID: String?
    var isSandbox: Bool?

    init(_ scanner: JSONScanner) throws(JSONScanner.Invalid) {
        var scanner = scanner
        var fields = (orderID: String?.none, tradeOrderID: String?.none, isSandbox: Bool?.none)
        try scanner.readDocument { key, scanner throws(JSONScanner.Invalid) in
            switch key {
            case "order_id": fields.orderID = identifier(try scanner.readScalar())
            case "trade_order_id": fields.tradeOrderID = identifier(try scanner.readScalar())
            case "is_sandbox":
                if case .bool(let value) = try scanner.readScalar() { fields.isSandbox = value } else { fields.isSandbox = nil }
            default: try scanner.skipValue()
            }
        }
        (orderID, tradeOrderID, isSandbox) = fields
    }
}

/// The top level of a TikTok Shop notification: `type` must be an integer.
private struct ShopFields {
    var type: Int64?
    var notificationID: String?
    var shopID: String?
    var orderID: String?
    var timestamp: Int64?

    init(_ bytes: [UInt8]) throws(JSONScanner.Invalid) {
        var scanner = try JSONScanner(bytes)
        var fields = (type: Int64?.none, notificationID: String?.none, shopID: String?.none, orderID: String?.none)
        var timestamp: Int64?
        try scanner.readDocument { key, scanner throws(JSONScanner.Invalid) in
            switch key {
            case "type":
                guard case .integer(let text) = try scanner.readScalar(), let type = Int64(text) else { throw JSONScanner.Invalid() }
                fields.type = type
            case "tts_notification_id": fields.notificationID = identifier(try scanner.readScalar())
            case "shop_id": fields.shopID = identifier(try scanner.readScalar())
            case "timestamp":
                if case .integer(let text) = try scanner.readScalar() { timestamp = Int64(text) }
            case "data":
                var probe = scanner
                do {
                    var orderID: String?
                    try probe.readObject { key, scanner throws(JSONScanner.Invalid) in
                        if key == "order_id" { orderID = identifier(try scanner.readScalar()) } else { try scanner.skipValue() }
                    }
                    fields.orderID = orderID
                    scanner = probe
                } catch {
                    // `data` that is not an object carries no order id.
                    try scanner.skipValue()
                }
            default:
                try scanner.skipValue()
            }
        }
        (type, notificationID, shopID, orderID) = fields
        self.timestamp = timestamp
    }
}

/// The values of a rule's fields in an envelope, read in a second pass (only events that a rule
/// applies to pay for it).
private enum RuleFields {
    /// The values in the rule's order, or `nil` when one is missing, empty, or not a string,
    /// number or boolean.
    static func values(of fields: [DedupRule.Field], in bytes: [UInt8]) -> [(DedupRule.Field, String)]? {
        var found: [DedupRule.Field: String] = [:]
        let wanted = Set(fields)
        let innerNames = Dictionary(
            grouping: fields.compactMap { field -> (String, String)? in
                if case .inner(let container, let name) = field { (container, name) } else { nil }
            },
            by: \.0
        ).mapValues { Set($0.map(\.1)) }
        do {
            var scanner = try JSONScanner(bytes)
            try scanner.readDocument { key, scanner throws(JSONScanner.Invalid) in
                if wanted.contains(.envelope(key)) {
                    found[.envelope(key)] = text(try scanner.readScalar())
                } else if key == "content", let names = innerNames["content"] {
                    // TikTok's `content` is a JSON string holding an object.
                    guard case .string(let content) = try scanner.readScalar() else { return }
                    var inner = JSONScanner(utf8: content)
                    var values: [DedupRule.Field: String] = [:]
                    // `content` that is not an object has no members.
                    guard
                        (try? inner.readDocument { key, scanner throws(JSONScanner.Invalid) in
                            if names.contains(key) {
                                values[.inner(container: "content", name: key)] = text(try scanner.readScalar())
                            } else {
                                try scanner.skipValue()
                            }
                        }) != nil
                    else { return }
                    found.merge(values) { _, last in last }
                } else if key == "data", let names = innerNames["data"] {
                    var probe = scanner
                    var values: [DedupRule.Field: String] = [:]
                    do {
                        try probe.readObject { key, scanner throws(JSONScanner.Invalid) in
                            if names.contains(key) {
                                values[.inner(container: "data", name: key)] = text(try scanner.readScalar())
                            } else {
                                try scanner.skipValue()
                            }
                        }
                        found.merge(values) { _, last in last }
                        scanner = probe
                    } catch {
                        // `data` that is not an object has no members.
                        try scanner.skipValue()
                    }
                } else {
                    try scanner.skipValue()
                }
            }
        } catch {
            return nil
        }
        var values: [(DedupRule.Field, String)] = []
        for field in fields {
            guard let value = found[field] else { return nil }
            values.append((field, value))
        }
        return values
    }

    private static func text(_ scalar: JSONScanner.Scalar) -> String? {
        switch scalar {
        case .string(let text), .integer(let text), .number(let text): text.isEmpty ? nil : text
        case .bool(let value): value ? "true" : "false"
        case .null, .other: nil
        }
    }
}
