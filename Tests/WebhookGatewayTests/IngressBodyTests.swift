import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOEmbedded
import Synchronization
import Testing
import Verification

@testable import GatewayConfiguration
@testable import WebhookGateway

/// What happens to a request's body at the ingress: the signature header's form is checked before
/// the body is read, and the bodies held in memory at once stay within the ``BodyBudget``.
struct IngressBodyTests {
    /// A request body the test feeds, which counts how often it was read.
    struct FedBody: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        final class Reads: Sendable {
            let count = Atomic<Int>(0)
        }

        let stream: AsyncThrowingStream<ByteBuffer, any Error>
        let continuation: AsyncThrowingStream<ByteBuffer, any Error>.Continuation
        let reads = Reads()

        init() {
            let (stream, continuation) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
            self.stream = stream
            self.continuation = continuation
        }

        struct AsyncIterator: AsyncIteratorProtocol {
            var base: AsyncThrowingStream<ByteBuffer, any Error>.AsyncIterator
            let reads: Reads

            mutating func next() async throws -> ByteBuffer? {
                reads.count.add(1, ordering: .relaxed)
                return try await base.next()
            }
        }

        func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(base: stream.makeAsyncIterator(), reads: reads)
        }

        var wasRead: Bool { reads.count.load(ordering: .relaxed) > 0 }
    }

    struct BodyReadError: Error {}

    /// Sends one request straight to the fixture's responder, as the server would.
    func respond(
        _ responder: IngressResponder,
        path: String = "/webhooks/tiktok",
        headers: HTTPFields,
        body: FedBody
    ) async throws -> (status: HTTPResponse.Status, json: [String: String], headers: HTTPFields) {
        let request = Request(
            head: HTTPRequest(method: .post, scheme: "http", authority: "gateway", path: path, headerFields: headers),
            body: RequestBody(asyncSequence: body)
        )
        let context = IngressRequestContext(source: .init(channel: EmbeddedChannel(), logger: Logger(label: "test")))
        let response = try await responder.respond(to: request, context: context)
        let writer = CollectingWriter()
        try await response.body.write(writer)
        let json = (try? JSONDecoder().decode([String: String].self, from: Data(writer.bytes.readableBytesView))) ?? [:]
        return (response.status, json, response.headers)
    }

    /// Collects a response body.
    final class CollectingWriter: ResponseBodyWriter, @unchecked Sendable {
        var bytes = ByteBuffer()
        func write(_ buffer: ByteBuffer) async throws { bytes.writeImmutableBuffer(buffer) }
        func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }

    static let signatureName = HTTPField.Name("TikTok-Signature")!

    @Test(
        arguments: [
            (nil, "missing TikTok-Signature header"),
            ("t=1615338610;s=9a04", "malformed TikTok-Signature header: no s"),
            (
                "t=1615338610,s=9A0403A0527E9B5B80981E143DD32D045F6381F404D4C4625D1C74D32800EA1E",
                "malformed TikTok-Signature header: s is not 64 hex digits"
            ),
            (
                "t=soon,s=9a0403a0527e9b5b80981e143dd32d045f6381f404d4c4625d1c74d32800ea1e",
                "malformed TikTok-Signature header: t is not unix seconds"
            ),
            ("garbage", "malformed TikTok-Signature header: element without '='"),
        ] as [(String?, String)])
    func malformedTikTokHeaderIsRefusedWithoutReadingTheBody(signature: String?, message: String) async throws {
        let fixture = try GatewayFixture()
        let body = FedBody()
        // Reading this body fails the request: a 401 can only come from the early check.
        body.continuation.finish(throwing: BodyReadError())
        var headers: HTTPFields = [.contentLength: "1048576"]
        if let signature { headers[Self.signatureName] = signature }
        let reply = try await respond(fixture.makeResponder(), headers: headers, body: body)
        #expect(reply.status == .unauthorized)
        #expect(reply.json == ["error": message])
        #expect(!body.wasRead)
        // A large unread body: the connection is closed rather than read to its end.
        #expect(reply.headers[.connection] == "close")
        #expect(fixture.requestCount(source: "tiktok", outcome: "unauthorized") == 1)
        #expect(fixture.bodyBudget.inUse == 0)
    }

    @Test(
        arguments: [
            (nil, "missing Authorization header"),
            (
                "Bearer 3f67ddd0af15077f0a2dbb669f655cee785ae8dc9c59bea41f88f191029e84ff",
                "malformed Authorization header: not 64 hex digits"
            ),
            ("3F67DDD0AF15077F0A2DBB669F655CEE785AE8DC9C59BEA41F88F191029E84FF", "malformed Authorization header: not 64 hex digits"),
            ("3f67ddd0af15077f0a2dbb669f655cee785ae8dc9c59bea41f88f191029e84f", "malformed Authorization header: not 64 hex digits"),
        ] as [(String?, String)])
    func malformedShopHeaderIsRefusedWithoutReadingTheBody(signature: String?, message: String) async throws {
        let fixture = try GatewayFixture()
        let body = FedBody()
        body.continuation.finish(throwing: BodyReadError())
        // Small and declared: the server reads and drops it, so the connection is kept.
        var headers: HTTPFields = [.contentLength: "200"]
        if let signature { headers[.authorization] = signature }
        let reply = try await respond(fixture.makeResponder(), path: "/webhooks/shop", headers: headers, body: body)
        #expect(reply.status == .unauthorized)
        #expect(reply.json == ["error": message])
        #expect(!body.wasRead)
        #expect(reply.headers[.connection] == nil)
        #expect(fixture.requestCount(source: "shop", outcome: "unauthorized") == 1)
    }

    /// A well-formed header with a wrong signature (under an old `t` or the current one) passes the
    /// early check: the body is read before the signature is refused.
    @Test(arguments: [
        ("t=1615338000,s=9a0403a0527e9b5b80981e143dd32d045f6381f404d4c4625d1c74d32800ea1e", "no matching signature"),
        ("t=1615338610,s=9a0403a0527e9b5b80981e143dd32d045f6381f404d4c4625d1c74d32800ea1f", "no matching signature"),
    ])
    func wellFormedHeaderIsCheckedAfterTheBody(signature: String, message: String) async throws {
        let fixture = try GatewayFixture()
        let body = FedBody()
        body.continuation.yield(ByteBuffer(string: IngressTests.tiktokBody))
        body.continuation.finish()
        let reply = try await respond(
            fixture.makeResponder(),
            headers: [Self.signatureName: signature, .contentLength: "\(IngressTests.tiktokBody.utf8.count)"],
            body: body
        )
        #expect(reply.status == .unauthorized)
        #expect(reply.json == ["error": message])
        #expect(body.wasRead)
        #expect(reply.headers[.connection] == nil)
    }

    /// Over the live server: the 401 comes while the client has sent only the headers of a 1 MiB
    /// body, and the connection is then closed.
    @Test func liveEarlyRefusalClosesTheConnectionWithTheBodyUnsent() async throws {
        let fixture = try GatewayFixture(maxBodyBytes: 1_048_576)
        try await fixture.makeApplication().test(.live) { client in
            let script = """
                import socket
                sock = socket.create_connection(("127.0.0.1", \(client.port!)), timeout=5)
                sock.sendall(b"POST /webhooks/tiktok HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 1048576\\r\\n\\r\\n")
                data = b""
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                print(data.decode())
                """
            let output = try await Edge.run("python3", ["-c", script])
            #expect(output.stdout.hasPrefix("HTTP/1.1 401"), "\(output.stdout) \(output.stderr)")
            #expect(output.stdout.lowercased().contains("connection: close"), "\(output.stdout)")
            #expect(output.stdout.contains(#"{"error":"missing TikTok-Signature header"}"#), "\(output.stdout)")
        }
    }

    /// A small unsigned body on a kept-alive connection is read and dropped by the server, and the
    /// next request on the same connection is understood.
    @Test func keptAliveConnectionStaysInStepAfterAnEarlyRefusal() async throws {
        let fixture = try GatewayFixture()
        try await fixture.makeApplication().test(.live) { client in
            for round in 0..<3 {
                try await client.execute(uri: "/webhooks/tiktok", method: .post, body: ByteBuffer(string: IngressTests.tiktokBody)) {
                    #expect($0.status == .unauthorized)
                }
                let event = GatewayFixture.tiktokEvent(orderID: "kept-\(round)")
                try await client.execute(
                    uri: "/webhooks/tiktok",
                    method: .post,
                    headers: [Self.signatureName: event.signature],
                    body: ByteBuffer(string: event.body)
                ) {
                    #expect($0.status == .ok)
                }
            }
        }
    }
}
