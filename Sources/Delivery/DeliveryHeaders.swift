public import Foundation
public import Verification

/// The headers of one delivery attempt to a consumer.
///
/// Besides the body's `content-type`, these are the Standard Webhooks headers (`webhook-id`,
/// `webhook-timestamp`, `webhook-signature`, signed with the consumer's secret) and the gateway's
/// own `webhook-source`, `webhook-event-type`, `webhook-dedup-key` and `webhook-attempt` (1-based),
/// and `webhook-sandbox: true` for a TikTok sandbox event.
public struct DeliveryHeaders: Sendable, Hashable {
    /// The headers as `(name, value)` pairs, names lowercase, in a fixed order.
    public let fields: [(String, String)]

    public init(
        eventID: String,
        source: String,
        eventType: String,
        dedupKey: String,
        attempt: Int,
        timestamp: Int64,
        body: Data,
        signer: StandardWebhooksSigner,
        sandbox: Bool = false
    ) {
        var fields = [
            ("content-type", "application/json"),
            ("webhook-id", eventID),
            ("webhook-timestamp", String(timestamp)),
            ("webhook-signature", signer.signature(id: eventID, timestamp: timestamp, body: body)),
            ("webhook-source", source),
            ("webhook-event-type", eventType),
            ("webhook-dedup-key", dedupKey),
            ("webhook-attempt", String(attempt)),
        ]
        if sandbox { fields.append(("webhook-sandbox", "true")) }
        self.fields = fields
    }

    /// The value of the header `name` (lowercase), if set.
    public subscript(name: String) -> String? {
        fields.first { $0.0 == name }?.1
    }

    public static func == (lhs: DeliveryHeaders, rhs: DeliveryHeaders) -> Bool {
        lhs.fields.elementsEqual(rhs.fields) { $0 == $1 }
    }

    public func hash(into hasher: inout Hasher) {
        for (name, value) in fields {
            hasher.combine(name)
            hasher.combine(value)
        }
    }
}
