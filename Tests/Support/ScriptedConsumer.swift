public import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// A consumer server for tests: it records every delivery it receives and answers what the test's
/// script says (a status with headers, after an optional delay, or after a gate opens).
public final class ScriptedConsumer: Sendable {
    public struct Received: Sendable {
        public let headers: [String: String]
        public let body: Data
        public let at: Date
        /// How many requests arrived before this one.
        public let index: Int

        public var webhookID: String { headers["webhook-id"] ?? "" }
        public var attempt: Int { Int(headers["webhook-attempt"] ?? "") ?? 0 }
    }

    public struct Reply: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var delay: Duration?
        /// Bytes of body streamed after the head, in 64 KiB chunks.
        public var bodyBytes: Int
        /// Whether the body breaks off after `bodyBytes`: the connection closes mid-body.
        public var breaksBody: Bool
        /// Whether the body stalls: the head (with `content-length: 10`) and one byte go out,
        /// then nothing until the connection is closed by the other side.
        public var stallsBody: Bool

        public init(
            status: Int, headers: [String: String] = [:], delay: Duration? = nil, bodyBytes: Int = 0, breaksBody: Bool = false,
            stallsBody: Bool = false
        ) {
            self.status = status
            self.headers = headers
            self.delay = delay
            self.bodyBytes = bodyBytes
            self.breaksBody = breaksBody
            self.stallsBody = stallsBody
        }

        public static func status(_ status: Int) -> Reply { Reply(status: status) }

        /// `200 OK` with `content-length: 10`, one byte of body, then a stall.
        public static var stalledBody: Reply { Reply(status: 200, headers: ["content-length": "10"], stallsBody: true) }
    }

    public typealias Handler = @Sendable (Received) async -> Reply

    private struct State {
        var received: [Received] = []
        var inFlight = 0
        var maxInFlight = 0
        var handler: Handler
    }

    private let state: Mutex<State>
    private let task: Mutex<Task<Void, any Error>?> = Mutex(nil)
    private let boundPort = Atomic<Int>(0)
    public var port: Int { boundPort.load(ordering: .relaxed) }

    private init(handler: @escaping Handler) {
        state = Mutex(State(handler: handler))
    }

    /// Starts a consumer on a free loopback port; its URL is ``url``.
    public static func start(port: Int = 0, handler: @escaping Handler = { _ in .status(200) }) async throws -> ScriptedConsumer {
        let consumer = ScriptedConsumer(handler: handler)
        let router = Router()
        router.post("/hook") { request, _ in
            let body = try await request.body.collect(upTo: 1 << 24)
            var headers: [String: String] = [:]
            for field in request.headers {
                headers[field.name.canonicalName] = field.value
            }
            return try await consumer.answer(headers: headers, body: Data(body.readableBytesView))
        }
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: nil),
            onServerRunning: { portContinuation.yield($0.localAddress?.port ?? 0) }
        )
        consumer.task.withLock { $0 = Task { try await app.runService(gracefulShutdownSignals: []) } }
        for await port in ports {
            consumer.boundPort.store(port, ordering: .relaxed)
            break
        }
        return consumer
    }

    public var url: String { "http://127.0.0.1:\(port)/hook" }

    public func stop() async {
        let task = self.task.withLock { $0 }
        task?.cancel()
        _ = await task?.result
    }

    /// Replaces the script.
    public func setHandler(_ handler: @escaping Handler) {
        state.withLock { $0.handler = handler }
    }

    public var received: [Received] { state.withLock { $0.received } }

    /// The most requests that were being answered at the same time.
    public var maxInFlight: Int { state.withLock { $0.maxInFlight } }

    /// Waits until `condition` holds for the received deliveries; false on timeout.
    public func wait(
        timeout: Duration = .seconds(20),
        until condition: @Sendable ([Received]) -> Bool
    ) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(received) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition(received)
    }

    private func answer(headers: [String: String], body: Data) async throws -> Response {
        let (received, handler) = state.withLock { state in
            let received = Received(headers: headers, body: body, at: Date(), index: state.received.count)
            state.received.append(received)
            state.inFlight += 1
            state.maxInFlight = max(state.maxInFlight, state.inFlight)
            return (received, state.handler)
        }
        defer { state.withLock { $0.inFlight -= 1 } }
        let reply = await handler(received)
        if let delay = reply.delay { try await Task.sleep(for: delay) }
        var fields = HTTPFields()
        for (name, value) in reply.headers {
            if let name = HTTPField.Name(name) { fields[name] = value }
        }
        if reply.stallsBody {
            let body = ResponseBody { writer in
                try await writer.write(ByteBuffer(string: "a"))
                // Until the client gives up and closes the connection (which cancels this).
                try await Task.sleep(for: .seconds(3_600))
                try await writer.finish(nil)
            }
            return Response(status: .init(code: reply.status), headers: fields, body: body)
        }
        guard reply.bodyBytes > 0 || reply.breaksBody else {
            return Response(status: .init(code: reply.status), headers: fields)
        }
        let body = ResponseBody { writer in
            let chunk = ByteBuffer(repeating: UInt8(ascii: "a"), count: 64 << 10)
            var left = reply.bodyBytes
            while left > 0 {
                try await writer.write(chunk.getSlice(at: 0, length: min(left, chunk.readableBytes))!)
                left -= chunk.readableBytes
            }
            if reply.breaksBody { throw CancellationError() }
            try await writer.finish(nil)
        }
        return Response(status: .init(code: reply.status), headers: fields, body: body)
    }
}

/// A gate that tasks wait at until a test opens it.
public final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    public init() {}

    public func wait() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    public func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
