import Delivery
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Verification

/// Answers the ingress port: `POST <source.path>` for each source, `GET /healthz`, and 404/405
/// for everything else, as SPEC.md's Ingress table says.
///
/// The body is read chunk by chunk and cut off as soon as it passes `maxBodyBytes` (a declared
/// `Content-Length` over the limit is refused before reading anything); the 413 closes the
/// connection, so an oversized upload is neither buffered nor read to its end.
///
/// With a rate limit configured, a client address past its rate gets 429 with `Retry-After`
/// before its body is read (`/healthz` is not limited).
struct IngressResponder: HTTPResponder {
    typealias Context = IngressRequestContext

    /// Sources by path; replaced by a configuration reload (new secrets apply to the next request).
    let sources: Reloadable<[String: Ingestor.Source]>
    let ingestor: Ingestor
    let maxBodyBytes: Int
    let metrics: GatewayMetrics
    var rateLimiter: RateLimiter?

    init(
        sources: Reloadable<[String: Ingestor.Source]>,
        ingestor: Ingestor,
        maxBodyBytes: Int,
        metrics: GatewayMetrics,
        rateLimiter: RateLimiter? = nil
    ) {
        self.sources = sources
        self.ingestor = ingestor
        self.maxBodyBytes = maxBodyBytes
        self.metrics = metrics
        self.rateLimiter = rateLimiter
    }

    init(
        sources: [String: Ingestor.Source], ingestor: Ingestor, maxBodyBytes: Int, metrics: GatewayMetrics, rateLimiter: RateLimiter? = nil
    ) {
        self.init(sources: Reloadable(sources), ingestor: ingestor, maxBodyBytes: maxBodyBytes, metrics: metrics, rateLimiter: rateLimiter)
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
        guard let body = try await collectBody(request) else {
            metrics.request(source: source.name, outcome: .tooLarge)
            logger.notice("body too large", metadata: ["source": "\(source.name)", "limit": "\(maxBodyBytes)"])
            // Closing the connection stops the upload; the rest of the body is never read.
            var response = Response.json(.contentTooLarge, ["error": "body larger than \(maxBodyBytes) bytes"])
            response.headers[.connection] = "close"
            return response
        }
        let headers = request.headers.map { ($0.name.canonicalName, $0.value) }
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

    /// The body, or `nil` once it passes the limit.
    private func collectBody(_ request: Request) async throws -> Data? {
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > maxBodyBytes {
            return nil
        }
        var collected = ByteBuffer()
        for try await chunk in request.body {
            guard collected.readableBytes + chunk.readableBytes <= maxBodyBytes else { return nil }
            var chunk = chunk
            collected.writeBuffer(&chunk)
        }
        return Data(collected.readableBytesView)
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

}
