public import Foundation

/// Signs outbound deliveries the Standard Webhooks way.
///
/// The signed content is `webhook-id + "." + webhook-timestamp + "." + body`; the signature header
/// is `v1,` followed by the base64 of its HMAC-SHA256 under the decoded secret.
///
/// ```swift
/// let signer = try StandardWebhooksSigner(secret: Secret("whsec_…"))
/// let signature = signer.signature(id: "msg_…", timestamp: 1614265330, body: body)  // "v1,…"
/// ```
public struct StandardWebhooksSigner: Sendable {
    private let key: StandardWebhooksKey

    public init(secret: Secret) throws(StandardWebhooksKey.FormatError) {
        self.key = try StandardWebhooksKey(secret: secret)
    }

    /// The `webhook-signature` header value for one attempt.
    public func signature(id: String, timestamp: Int64, body: some DataProtocol) -> String {
        "v1," + Data(key.mac(id: id, timestamp: timestamp, body: body)).base64EncodedString()
    }

    /// The same for a body held as `Data`, as the dispatcher holds it. A generic public function
    /// called from another module runs unspecialized; this one is specialized here.
    public func signature(id: String, timestamp: Int64, body: Data) -> String {
        "v1," + Data(key.mac(id: id, timestamp: timestamp, body: body)).base64EncodedString()
    }
}
