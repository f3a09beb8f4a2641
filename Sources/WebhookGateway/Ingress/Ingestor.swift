import Delivery
import Foundation
import Logging
import Verification

/// The ingest pipeline of one gateway, independent of HTTP: verify, parse, pick consumers, store.
///
/// Nothing is parsed before the signature verifies, and nothing is answered `accepted` before the
/// store reports the event durable.
struct Ingestor: Sendable {
    /// A configured source, ready to verify.
    struct Source: Sendable {
        let name: String
        let verifier: WebhookVerifier
    }

    /// What became of one request.
    enum Outcome: Sendable, Equatable {
        case accepted(eventID: String)
        case duplicate(firstEventID: String)
        case unauthorized(VerificationError)
        case unavailable(StoreError)
    }

    let store: any EventStore
    /// Consumers and their subscriptions; replaced by a configuration reload.
    let consumers: Reloadable<[GatewayConfiguration.Consumer]>
    let metrics: GatewayMetrics
    let now: @Sendable () -> Date
    /// Called after an event was stored: the dispatcher's workers of these consumers (or, for a
    /// body that is not an envelope, the dead-letter writer) have work.
    let onStored: @Sendable (IncomingEvent) -> Void

    /// Checks the source's signature header for presence and form, before the body is read: a
    /// refusal is counted and logged as any other (`unauthorized`); `nil` means go on.
    func checkHeader(source: Source, headers: [(String, String)], logger: Logger) -> Outcome? {
        do {
            try source.verifier.checkHeader(headers: headers)
            return nil
        } catch {
            metrics.request(source: source.name, outcome: .unauthorized)
            logger.notice(
                "signature rejected before the body", metadata: ["source": "\(source.name)", "reason": "\(error.detail)"])
            return .unauthorized(error)
        }
    }

    func ingest(
        source: Source,
        headers: [(String, String)],
        body: Data,
        logger: Logger
    ) async -> Outcome {
        let receivedAt = now()
        let verified: VerifiedRequest
        do {
            verified = try source.verifier.verify(body: body, headers: headers, now: receivedAt)
        } catch {
            metrics.request(source: source.name, outcome: .unauthorized)
            logger.notice("signature rejected", metadata: ["source": "\(source.name)", "reason": "\(error.detail)"])
            return .unauthorized(error)
        }

        let parsed = Envelope.parse(body: body, source: source.name, verified: verified)
        // What differs between an envelope and a body that is not one.
        let (eventType, orderID, destinations): (String?, String?, [String])
        switch parsed {
        case .envelope(let envelope):
            eventType = envelope.eventType
            orderID = envelope.orderID
            destinations = consumers.value.filter { $0.matches(source: source.name, eventType: envelope.eventType) }.map(\.name)
        case .notAnEnvelope:
            logger.warning("verified body is not an envelope; keeping it as a dead letter", metadata: ["source": "\(source.name)"])
            (eventType, orderID, destinations) = (nil, nil, [GatewayConfiguration.unparsedConsumer])
        }
        let event = IncomingEvent(
            id: EventID.make(milliseconds: receivedAt.milliseconds),
            source: source.name,
            eventType: eventType,
            dedupKey: parsed.dedupKey,
            orderID: orderID,
            receivedAt: receivedAt,
            headers: headers,
            body: body,
            consumers: destinations,
            deadLetterReason: eventType == nil ? "not an envelope" : nil
        )

        do {
            switch try await store.accept(event) {
            case .accepted(let id):
                metrics.request(source: source.name, outcome: .accepted)
                logger.info(
                    "event accepted",
                    metadata: [
                        "source": "\(source.name)", "event.id": "\(id)", "event.type": "\(event.eventType ?? "-")",
                        "deliveries": "\(event.consumers.count)",
                    ]
                )
                onStored(event)
                return .accepted(eventID: id)
            case .duplicate(let firstID):
                metrics.request(source: source.name, outcome: .duplicate)
                logger.info("duplicate event", metadata: ["source": "\(source.name)", "event.id": "\(firstID)"])
                return .duplicate(firstEventID: firstID)
            }
        } catch {
            metrics.request(source: source.name, outcome: .unavailable)
            logger.error("event not stored", metadata: ["source": "\(source.name)", "error": "\(error.detail)"])
            return .unavailable(error)
        }
    }
}
