import Delivery
import Foundation
import GatewayConfiguration
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
    /// How long dedup keys are kept: a Shop notification older than this could be a replay whose
    /// key has expired, so it is refused (its signature has no timestamp of its own).
    var dedupRetention: Duration = .seconds(7 * 86_400)
    /// `dedup.keys`: the rules that override the scheme's key for the events they match.
    var dedupRules: [DedupRule] = []
    /// Told whether each write to the store succeeded (for `store.recovered`).
    var onStoreWrite: @Sendable (_ succeeded: Bool) -> Void = { _ in }

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

    /// A correct signature on a request too old to accept: refused (401) like any other, but
    /// counted as `stale` and logged with its age, so that an operator can see whether TikTok's
    /// retries re-use old timestamps (the runbook says what to do then). The signature is not logged.
    private func stale(
        source: Source, signedAt: Int64?, receivedAt: Date, error: VerificationError, logger: Logger
    ) -> Outcome {
        metrics.request(source: source.name, outcome: .stale)
        var metadata: Logger.Metadata = ["source": "\(source.name)"]
        if let signedAt {
            metadata["signedAt"] = "\(signedAt)"
            metadata["ageSeconds"] = "\(Int64(receivedAt.timeIntervalSince1970) - signedAt)"
        }
        logger.warning("stale request refused: a correct signature with a timestamp outside the tolerance", metadata: metadata)
        return .unauthorized(error)
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
            if error == .timestampOutsideTolerance {
                return stale(source: source, signedAt: error.signedTimestamp, receivedAt: receivedAt, error: error, logger: logger)
            }
            metrics.request(source: source.name, outcome: .unauthorized)
            logger.notice("signature rejected", metadata: ["source": "\(source.name)", "reason": "\(error.detail)"])
            return .unauthorized(error)
        }

        let parsed = Envelope.parse(body: body, source: source.name, verified: verified, rules: dedupRules)
        if verified.scheme == .tiktokShop, case .envelope(let envelope) = parsed, let timestamp = envelope.timestamp,
            receivedAt.timeIntervalSince1970 - Double(timestamp) > Double(dedupRetention.milliseconds) / 1_000
        {
            // SPEC: a Shop notification older than the dedup retention may be a replay whose key
            // has expired; its signature holds no time of its own.
            return stale(
                source: source, signedAt: timestamp, receivedAt: receivedAt,
                error: .timestampOutsideTolerance(signedAt: timestamp), logger: logger)
        }
        // What differs between an envelope and a body that is not one.
        let (eventType, orderID, destinations): (String?, String?, [String])
        switch parsed {
        case .envelope(let envelope):
            if envelope.ruleFellBack {
                // Delivered rather than dropped, but a rule that names a field its events lack
                // (a typo, or another scheme's field) keys nothing: say so.
                metrics.dedupRuleFellBack(source: source.name)
                logger.notice(
                    "a dedup.keys rule applied but the event lacks one of its fields; keyed by the body's hash",
                    metadata: ["source": "\(source.name)", "event.type": "\(envelope.eventType)"])
            }
            eventType = envelope.eventType
            orderID = envelope.orderID
            destinations = consumers.value.filter {
                $0.matches(source: source.name, eventType: envelope.eventType, sandbox: envelope.isSandbox == true)
            }.map(\.name)
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
            deadLetterReason: eventType == nil ? "not an envelope" : nil,
            sandbox: { if case .envelope(let envelope) = parsed { envelope.isSandbox == true } else { false } }()
        )

        do {
            switch try await store.accept(event) {
            case .accepted(let id):
                metrics.request(source: source.name, outcome: .accepted, sandbox: event.sandbox)
                onStoreWrite(true)
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
                metrics.request(source: source.name, outcome: .duplicate, sandbox: event.sandbox)
                logger.info("duplicate event", metadata: ["source": "\(source.name)", "event.id": "\(firstID)"])
                return .duplicate(firstEventID: firstID)
            }
        } catch {
            metrics.request(source: source.name, outcome: .unavailable)
            onStoreWrite(false)
            logger.error("event not stored", metadata: ["source": "\(source.name)", "error": "\(error.detail)"])
            return .unavailable(error)
        }
    }
}
