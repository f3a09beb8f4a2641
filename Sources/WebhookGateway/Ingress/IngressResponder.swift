import Delivery
import Foundation
import GatewayConfiguration
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Verification

/// Answers the ingress port: `POST <source.path>` for each source, `GET /healthz`, and 404/405
/// for everything else, as SPEC.md's Ingress table says.
///
/// Before a body is read, the source's signature header is checked for presence and form: a
/// request that fails gets its 401 with the body unread. The timestamp's tolerance and the
/// signature itself are checked after the body, by the ``Ingestor``.
///
/// The body is read chunk by chunk and cut off as soon as it passes `maxBodyBytes` (a declared
/// `Content-Length` over the limit is refused before reading anything); the 413 closes the
/// connection, so an oversized upload is neither buffered nor read to its end. Bodies held at once,
/// across all requests, are bounded by a ``BodyBudget``: past it a request gets 503.
///
/// With a rate limit configured, a client address past its rate gets 429 with `Retry-After`
/// before its body is read (`/healthz` is not limited).
struct IngressResponder: HTTPResponder {
    typealias Context = IngressRequestContext

    /// Sources by path; replaced by a configuration reload (new secrets apply to the next request).
    let sources: Reloadable<[String: Ingestor.Source]>
    let ingestor: Ingestor
    let maxBodyBytes: Int
    /// The bytes of request bodies held at once, across all requests.
    let bodyBudget: BodyBudget
    let metrics: GatewayMetrics
    var rateLimiter: RateLimiter?

    init(
        sources: Reloadable<[String: Ingestor.Source]>,
        ingestor: Ingestor,
        maxBodyBytes: Int,
        bodyBudget: BodyBudget = BodyBudget(),
        metrics: GatewayMetrics,
        rateLimiter: RateLimiter? = nil
    ) {
        self.sources = sources
        self.ingestor = ingestor
        self.maxBodyBytes = maxBodyBytes
        self.bodyBudget = bodyBudget
        self.metrics = metrics
        self.rateLimiter = rateLimiter
    }

    init(
        sources: [String: Ingestor.Source],
        ingestor: Ingestor,
        maxBodyBytes: Int,
        bodyBudget: BodyBudget = BodyBudget(),
        metrics: GatewayMetrics,
        rateLimiter: RateLimiter? = nil
    ) {
        self.init(
            sources: Reloadable(sources),
            ingestor: ingestor,
            maxBodyBytes: maxBodyBytes,
            bodyBudget: bodyBudget,
            metrics: metrics,
            rateLimiter: rateLimiter
        )
    }

    func respond(to request: Request, context: Context) async throws -> Response {
        let path = request.uri.path
        if path == "/healthz" {
            guard request.method == .get || request.method == .head else {
                return .json(.methodNotAllowed, ["error": "method not allowed"], allow: "GET")
            }
            return .json(.ok, ["status": "ok"])
        }
        if let rateLimiter, let wait = rateLimiter.check(client: context.clientAddress ?? "unknown") {
            context.logger.notice("request rate limited", metadata: ["remote": "\(context.clientAddress ?? "?")"])
            var response = Response.json(.tooManyRequests, ["error": "too many requests from this address"])
            response.headers[.retryAfter] = "\(wait)"
            return response
        }
        guard let source = sources.value[path] else {
            return .json(.notFound, ["error": "no source at this path"])
        }
        guard request.method == .post else {
            return .json(.methodNotAllowed, ["error": "only POST is accepted here"], allow: "POST")
        }

        // Metadata goes on each log call: setting it on the logger costs a re-render per request.
        let logger = context.logger
        if logger.logLevel <= .debug {
            logger.debug(
                "request received",
                metadata: ["source": "\(source.name)", "headers": "\(RedactedHeaders.describe(request.headers))"]
            )
        }
        let headers = request.headers.map { ($0.name.canonicalName, $0.value) }
        let declaredLength = request.headers[.contentLength].flatMap { Int($0) }
        // A refusal before the body is read leaves it unread. A small declared body is read and
        // dropped by the server before the connection's next request; a larger or undeclared one
        // is cut off by closing the connection (see IngressConnectionHandler).
        let closeIfUnread = declaredLength.map { $0 > BodyBudget.smallBodyBytes } ?? true
        if case .unauthorized(let error)? = ingestor.checkHeader(source: source, headers: headers, logger: logger) {
            return Response.json(.unauthorized, ["error": error.detail]).closingConnection(closeIfUnread)
        }

        // Whatever is reserved is given back when this request ends, however it ends.
        var reserved = 0
        defer { bodyBudget.release(reserved) }
        let body: Data
        switch try await collectBody(request, declaredLength: declaredLength, reserved: &reserved) {
        case .complete(let data):
            body = data
        case .tooLarge:
            metrics.request(source: source.name, outcome: .tooLarge)
            logger.notice("body too large", metadata: ["source": "\(source.name)", "limit": "\(maxBodyBytes)"])
            // Closing the connection stops the upload; the rest of the body is never read.
            return Response.json(.contentTooLarge, ["error": "body larger than \(maxBodyBytes) bytes"]).closingConnection()
        case .overBudget(let unread):
            metrics.request(source: source.name, outcome: .unavailable)
            logger.warning(
                "request bodies in memory at their limit",
                metadata: ["source": "\(source.name)", "limit": "\(bodyBudget.limit)", "declaredLength": "\(declaredLength ?? -1)"]
            )
            return Response.json(.serviceUnavailable, ["error": "too many request bodies in memory; retry later"])
                .closingConnection(!unread || closeIfUnread)
        }
        switch await ingestor.ingest(source: source, headers: headers, body: body, logger: logger) {
        case .accepted(let id):
            return .json(.ok, ["status": "accepted", "id": id])
        case .duplicate(let id):
            return .json(.ok, ["status": "duplicate", "id": id])
        case .unauthorized(let error):
            return .json(.unauthorized, ["error": error.detail])
        case .unavailable:
            return .json(.serviceUnavailable, ["error": "the event cannot be stored right now; retry later"])
        }
    }

    /// What reading a body came to.
    private enum CollectedBody {
        case complete(Data)
        /// Past `maxBodyBytes`.
        case tooLarge
        /// It did not fit in the body budget; `unread` when refused before a byte was read.
        case overBudget(unread: Bool)
    }

    /// Reads the body, reserving it in the body budget first (a declared length as a whole, before
    /// reading; otherwise chunk by chunk), and cuts it off once it passes `maxBodyBytes`. What was
    /// reserved is added to `reserved`, for the caller to give back.
    private func collectBody(_ request: Request, declaredLength: Int?, reserved: inout Int) async throws -> CollectedBody {
        var collected = ByteBuffer()
        if let declaredLength {
            guard declaredLength <= maxBodyBytes else { return .tooLarge }
            if declaredLength > 0 {
                guard bodyBudget.reserve(declaredLength, bodyTotal: declaredLength) else { return .overBudget(unread: true) }
                reserved = declaredLength
                // One allocation of the reserved size: growing by doubling could hold half as much again.
                collected.reserveCapacity(declaredLength)
            }
        }
        for try await chunk in request.body {
            let total = collected.readableBytes + chunk.readableBytes
            guard total <= maxBodyBytes else { return .tooLarge }
            if total > reserved {
                guard bodyBudget.reserve(total - reserved, bodyTotal: total) else { return .overBudget(unread: false) }
                reserved = total
            }
            var chunk = chunk
            collected.writeBuffer(&chunk)
        }
        return .complete(Data(collected.readableBytesView))
    }
}

extension Response {
    /// A JSON response with a flat string-to-string body.
    static func json(_ status: HTTPResponse.Status, _ fields: KeyValuePairs<String, String>, allow: String? = nil) -> Response {
        let text = JSONText.object(fields.map { ($0.key, $0.value) })
        var headers: HTTPFields = [.contentType: "application/json"]
        if let allow { headers[.allow] = allow }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// This response with `Connection: close` when `close` is true: the connection is closed once
    /// it is written, and what the client still sends is not read (``IngressConnectionHandler``).
    func closingConnection(_ close: Bool = true) -> Response {
        guard close else { return self }
        var response = self
        response.headers[.connection] = "close"
        return response
    }

}
