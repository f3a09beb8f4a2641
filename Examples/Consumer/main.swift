// An example consumer of webhook-gateway deliveries: a Hummingbird service that verifies the
// Standard Webhooks signature and unlocks a purchase once per `webhook-id`.
//
// Run it:    EXAMPLE_SIGNING_SECRET=whsec_… swift run example-consumer --port 7001
// and point a gateway consumer at http://127.0.0.1:7001/tiktok-events with the same secret
// (the example configuration's `ops` consumer, subscribed to the source `_gateway`, runs one on port
// 7003 and posts to /gateway-events).
//
// It depends on Hummingbird and swift-crypto only, so it can be copied into a service as it is.
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Verifies `webhook-signature` over `webhook-id.webhook-timestamp.body` (Standard Webhooks).
struct SignatureVerifier: Sendable {
    let key: SymmetricKey
    /// How far `webhook-timestamp` may be from now, either way (replays of old requests fail).
    let tolerance: TimeInterval = 300

    init?(secret: String) {
        guard secret.hasPrefix("whsec_"), let bytes = Data(base64Encoded: String(secret.dropFirst(6))) else { return nil }
        key = SymmetricKey(data: bytes)
    }

    func verify(id: String, timestamp: String, signatures: String, body: some DataProtocol, now: Date = Date()) -> Bool {
        guard let seconds = TimeInterval(timestamp), abs(now.timeIntervalSince1970 - seconds) <= tolerance else { return false }
        let signed = Data("\(id).\(timestamp).".utf8) + Data(body)
        // The header may carry several space-separated signatures (the gateway's secret rotation).
        // `isValidAuthenticationCode` compares in constant time.
        return signatures.split(separator: " ").contains { candidate in
            guard candidate.hasPrefix("v1,"), let given = Data(base64Encoded: String(candidate.dropFirst(3))) else { return false }
            return HMAC<SHA256>.isValidAuthenticationCode(given, authenticating: signed, using: key)
        }
    }
}

/// The purchases unlocked so far. A real service keeps this in its database and records the
/// `webhook-id` in the same transaction as the unlock (a unique key on it), so that a retried or
/// replayed delivery can never unlock twice, even across restarts.
actor Entitlements {
    private var processed: [String: String] = [:]

    /// Unlocks `orderID` unless delivery `webhookID` was processed before; says which happened.
    func unlock(webhookID: String, orderID: String) -> Bool {
        guard processed[webhookID] == nil else { return false }
        processed[webhookID] = orderID
        return true
    }
}

/// One line per operational event, for a person reading the output.
enum OperationalEvent {
    static func line(_ event: [String: Any]) -> String {
        func text(_ key: String) -> String { event[key].map { "\($0)" } ?? "?" }
        let what: String
        switch event["type"] as? String {
        case "consumer.paused": what = "consumer \(text("consumer")) paused (\(text("reason")))"
        case "consumer.resumed": what = "consumer \(text("consumer")) resumed (\(text("reason")))"
        case "deadletter.created":
            let ids = (event["ids"] as? [String] ?? []).joined(separator: " ")
            what = "\(text("count")) new dead letter(s) for \(text("consumer")): \(ids)"
        case "store.recovered": what = "store writable again (unavailable since \(text("unavailableSince")))"
        default: what = text("type")
        }
        return "[gateway] \(text("at")) \(what)"
    }
}

@main
struct ExampleConsumer {
    static func main() async throws {
        let arguments = CommandLine.arguments
        let port = arguments.firstIndex(of: "--port").flatMap { Int(arguments[$0 + 1]) } ?? 7001
        guard let secret = ProcessInfo.processInfo.environment["EXAMPLE_SIGNING_SECRET"], let verifier = SignatureVerifier(secret: secret)
        else {
            FileHandle.standardError.write(Data("set EXAMPLE_SIGNING_SECRET to the consumer's whsec_ signing secret\n".utf8))
            exit(2)
        }
        let entitlements = Entitlements()
        let router = Router()
        router.post("/tiktok-events") { request, context -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            guard let id = request.headers[HTTPField.Name("webhook-id")!],
                let timestamp = request.headers[HTTPField.Name("webhook-timestamp")!],
                let signatures = request.headers[HTTPField.Name("webhook-signature")!],
                verifier.verify(id: id, timestamp: timestamp, signatures: signatures, body: body.readableBytesView)
            else {
                // 401 is not retried by the gateway: the delivery becomes a dead letter to look at.
                return Response(status: .unauthorized)
            }
            // Only now is the body trusted. The order id is inside TikTok's `content` string.
            let envelope = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
            let content = (envelope?["content"] as? String).flatMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            let orderID = (content?["order_id"]).map { "\($0)" } ?? "unknown"
            let unlocked = await entitlements.unlock(webhookID: id, orderID: orderID)
            context.logger.info(
                unlocked ? "purchase unlocked" : "already unlocked", metadata: ["webhook.id": "\(id)", "order": "\(orderID)"])
            // A duplicate is answered 2xx too, so the gateway stops retrying it.
            let answer = try JSONSerialization.data(withJSONObject: [
                "status": unlocked ? "unlocked" : "already unlocked", "order": orderID,
            ])
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: answer)))
        }
        // The gateway's operational events (consumers of source `_gateway`): a pager or chat
        // bridge would forward them; this prints one line each.
        router.post("/gateway-events") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            guard let id = request.headers[HTTPField.Name("webhook-id")!],
                let timestamp = request.headers[HTTPField.Name("webhook-timestamp")!],
                let signatures = request.headers[HTTPField.Name("webhook-signature")!],
                verifier.verify(id: id, timestamp: timestamp, signatures: signatures, body: body.readableBytesView),
                let event = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
            else {
                return Response(status: .unauthorized)
            }
            print(OperationalEvent.line(event))
            return Response(status: .noContent)
        }
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: port)),
            onServerRunning: { channel in
                FileHandle.standardOutput.write(Data("listening on port \(channel.localAddress?.port ?? port)\n".utf8))
            }
        )
        try await app.runService()
    }
}
