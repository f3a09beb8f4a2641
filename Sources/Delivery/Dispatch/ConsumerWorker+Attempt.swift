import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import Verification

/// One attempt of a delivery: sign, post, read the answer within the timeout, store the outcome.
extension ConsumerWorker {
    /// One attempt: post, classify, store the outcome.
    func attempt(_ delivery: ClaimedDelivery, isProbe: Bool) async -> AttemptReport {
        let number = delivery.attempts.count + 1
        let startedAt = now()
        let headers = DeliveryHeaders(
            eventID: delivery.eventID,
            source: delivery.source,
            eventType: delivery.eventType ?? "",
            dedupKey: delivery.dedupKey,
            attempt: number,
            timestamp: Int64(startedAt.timeIntervalSince1970),
            body: delivery.body,
            signer: endpoint.signer,
            sandbox: delivery.sandbox
        )
        var request = HTTPClientRequest(url: endpoint.url)
        request.method = .POST
        for (name, value) in headers.fields {
            request.headers.add(name: name, value: value)
        }
        request.body = .bytes(ByteBuffer(bytes: delivery.body))

        if isHeld {
            // Leased just before an operator paused the consumer: not sent. The lease is released
            // without counting an attempt, so the delivery goes first once the consumer is resumed.
            _ = await record(.retry(id: delivery.id, attempts: delivery.attempts, nextAttemptAt: startedAt), of: delivery)
            return AttemptReport(result: .abandoned, wasProbe: isProbe)
        }
        let client = isProbe ? makeClient() : self.client.withLock { $0 }
        let answer: Exchange
        do {
            answer = try await exchange(request, client: client)
        } catch {
            if isProbe { try? await client.shutdown() }
            return AttemptReport(result: .abandoned, wasProbe: isProbe)
        }
        if isProbe {
            // Awaited here (the attempt is a child task of the worker's loop), so no pool outlives it.
            if let status = answer.status, AttemptClass(status: status) != .retryable {
                // The consumer is back: keep the fresh pool, drop the old one (nothing else is in
                // flight while a probe is).
                let old = self.client.withLock { current in
                    defer { current = client }
                    return current
                }
                try? await old.shutdown()
            } else {
                try? await client.shutdown()
            }
        }
        if let unsendable = answer.unsendable {
            // The request never left: this delivery cannot be sent as it is, and the consumer's
            // health is not in question. Dead-letter it at once.
            var attempts = delivery.attempts
            attempts.append(DeadLetter.Attempt(at: startedAt, status: nil, error: unsendable, durationMs: 0))
            let update = DeliveryUpdate.deadLetter(
                id: delivery.id, attempts: attempts, reason: "cannot be sent: \(unsendable)", at: now())
            guard await record(update, of: delivery) else { return AttemptReport(result: .abandoned, wasProbe: isProbe) }
            logger.warning(
                "delivery cannot be sent; dead-lettering",
                metadata: ["event.id": "\(delivery.eventID)", "attempt": "\(number)", "error": "\(unsendable)"]
            )
            onDeadLetterDecided()
            return AttemptReport(result: .unsendable, wasProbe: isProbe)
        }
        let status = answer.status
        let failure = answer.failure
        let retryAfter = answer.retryAfter

        let outcome = AttemptClass(status: status)
        let finishedAt = now()
        var attempts = delivery.attempts
        attempts.append(
            DeadLetter.Attempt(
                at: startedAt, status: status, error: status == nil ? failure : nil,
                durationMs: Int(max(0, finishedAt.timeIntervalSince(startedAt)) * 1_000)))
        let update: DeliveryUpdate
        var nextAttemptAt: Date?
        switch outcome {
        case .delivered:
            update = .delivered(id: delivery.id, attempts: attempts)
        case .retryable where number < endpoint.retry.maxAttempts:
            let delay = endpoint.retry.delay(afterAttempt: number, retryAfter: retryAfter)
            let next = finishedAt.addingTimeInterval(TimeInterval(delay.milliseconds) / 1_000)
            nextAttemptAt = next
            update = .retry(id: delivery.id, attempts: attempts, nextAttemptAt: next)
        case .retryable:
            update = .deadLetter(id: delivery.id, attempts: attempts, reason: "max attempts", at: finishedAt)
        case .permanent:
            update = .deadLetter(
                id: delivery.id, attempts: attempts, reason: "not retryable: status \(status ?? 0)", at: finishedAt)
        }
        guard await record(update, of: delivery) else { return AttemptReport(result: .abandoned, wasProbe: isProbe) }
        activity.withLock { activity in
            if outcome == .delivered {
                activity.lastDeliveredAt = finishedAt
            } else {
                activity.lastFailureAt = finishedAt
                activity.lastFailure = status.map { "status \($0)" } ?? failure ?? "no answer"
            }
        }
        let metadata: Logger.Metadata = [
            "event.id": "\(delivery.eventID)", "attempt": "\(number)",
            "status": "\(status.map(String.init) ?? "none")",
        ]
        switch update {
        case .delivered:
            let latency = finishedAt.timeIntervalSince(delivery.receivedAt)
            observer.delivered(consumer: endpoint.name, latency: .milliseconds(Int64(max(0, latency) * 1_000)))
            logger.debug("delivered", metadata: metadata)
        case .retry(_, _, let next):
            observer.retried(consumer: endpoint.name)
            logger.notice(
                "delivery failed; will retry",
                metadata: metadata.merging(
                    ["error": "\(failure ?? "-")", "retryAt": "\(DeadLetter.rfc3339(next))"], uniquingKeysWith: { $1 })
            )
        case .deadLetter(_, _, let reason, _):
            logger.warning(
                "delivery failed for good; dead-lettering",
                metadata: metadata.merging(["reason": "\(reason)", "error": "\(failure ?? "-")"], uniquingKeysWith: { $1 })
            )
            onDeadLetterDecided()
        }
        return AttemptReport(result: .answered(outcome), wasProbe: isProbe, retryAfter: retryAfter, nextAttemptAt: nextAttemptAt)
    }

    /// Stores an attempt's outcome. When that fails, the lease stays until it expires or the next
    /// start releases it, and the delivery goes again (at least once, never lost).
    private func record(_ update: DeliveryUpdate, of delivery: ClaimedDelivery) async -> Bool {
        do {
            try await store.finish([update])
            return true
        } catch {
            logger.error(
                "cannot record a delivery outcome; it will be sent again",
                metadata: ["event.id": "\(delivery.eventID)", "error": "\(error)"]
            )
            return false
        }
    }

    /// What one exchange with the consumer gave.
    struct Exchange: Sendable {
        /// The consumer's status, once its response head arrived (it stands even if the body then
        /// broke off); `nil` when there was no answer in time.
        var status: Int?
        var retryAfter: Duration?
        /// Why there was no answer (connection refused, timeout, …).
        var failure: String?
        /// Set when the request could not be sent at all (the HTTP client refused it before
        /// anything left): the delivery's own fault, not the consumer's.
        var unsendable: String?
    }

    /// Posts `request` and reads the whole answer within the consumer's `timeout`: connecting,
    /// sending, the response head and the response body. AsyncHTTPClient's deadline covers only
    /// the part before the head, so the body is read in a child task that a sibling cancels at
    /// the deadline; a consumer that answers its status and then stalls counts as a timeout.
    ///
    /// Throws only when the attempt itself was cancelled (shutdown).
    func exchange(_ request: HTTPClientRequest, client: HTTPClient) async throws -> Exchange {
        let timeout = endpoint.timeout
        let now = self.now
        let clock = self.clock
        let answer = try await withThrowingTaskGroup(of: Exchange?.self) { group in
            group.addTask {
                var answer = Exchange()
                do {
                    let response = try await client.execute(request, timeout: .milliseconds(timeout.milliseconds))
                    answer.status = Int(response.status.code)
                    if let value = response.headers.first(name: "retry-after") {
                        answer.retryAfter = RetryAfter.parse(value, now: now())
                    }
                    // Read the (ignored) body to the end so the connection goes back to the pool.
                    for try await _ in response.body {}
                } catch {
                    if Task.isCancelled { return nil }
                    if answer.status == nil {
                        if let reason = Self.unsendableReason(error) {
                            answer.unsendable = reason
                        } else {
                            answer.failure = Self.describe(error)
                        }
                    }
                }
                return answer
            }
            group.addTask {
                try await clock.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        try Task.checkCancellation()
        // No answer before the deadline (the sleeper finished first): a timeout, even when the
        // status line had arrived and only the body was missing.
        return answer ?? Exchange(status: nil, failure: "timeout")
    }

    /// Why the HTTP client refused to send a request at all, or `nil` if the error came from the
    /// exchange. The reason never holds the refused value (it could be part of a signature).
    static func unsendableReason(_ error: any Error) -> String? {
        // Only what this delivery's own headers cause. A bad URL is the consumer's setting, not
        // the delivery's: it stays a failure of the consumer (retried, and it pauses it).
        // `shortDescription` is AsyncHTTPClient's name of the error, without the refused values.
        guard let error = error as? HTTPClientError else { return nil }
        switch error.shortDescription {
        case "Invalid header field values": return "the HTTP client refused a header value"
        case "Invalid header field names": return "the HTTP client refused a header name"
        default: return nil
        }
    }

    /// A short description of a failed attempt for the dead-letter line: never a secret (the
    /// request's headers are not part of any client error).
    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout: return "timeout"
            case .connectTimeout: return "connect timeout"
            case .remoteConnectionClosed: return "connection closed by the consumer"
            default: return "\(error)"
            }
        }
        let text = String(describing: error)
        if text.localizedCaseInsensitiveContains("refused") { return "connection refused" }
        return text.isEmpty ? "no response" : text
    }
}
