import GatewayConfiguration
import Logging
import NIOCore
import Synchronization

/// Progress of one connection's requests, sent by the HTTP-level ``IngressConnectionHandler``
/// to the byte-level ``ConnectionGuard`` as outbound user events (on an HTTP/2 stream, through the
/// stream's parent channel).
enum RequestProgress: Sendable {
    /// An HTTP/2 stream opened. From the first one on, the connection is HTTP/2: each stream has
    /// its own read deadline (in ``RequestProgressReporter``), and the connection's byte-level
    /// deadline is off, since control frames (SETTINGS, PING, WINDOW_UPDATE) arrive between
    /// requests. The connection is busy while any stream is open.
    case streamOpened
    /// An HTTP/2 stream closed.
    case streamClosed
    /// A request's last byte arrived: the read deadline stops.
    case requestRead
    /// A response's last part was written.
    case responseSent
}

/// Counts one listener's open connections and knows which of them are idle, so that at the limit
/// an idle one can be closed for a newcomer.
final class ConnectionGate: Sendable {
    /// A connection as the gate sees it; its state is written by its own event loop and read by
    /// whichever loop admits a new connection.
    final class Slot: Sendable {
        let channel: any Channel
        /// Uptime in nanoseconds since the connection became idle, or -1 while it is busy.
        let idleSince = Atomic<Int64>(-1)

        init(channel: any Channel) {
            self.channel = channel
        }
    }

    let limits: ConnectionLimits
    private let slots = Mutex<[ObjectIdentifier: Slot]>([:])
    private let refusedCount = Atomic<Int>(0)
    private let evictedCount = Atomic<Int>(0)

    init(limits: ConnectionLimits) {
        self.limits = limits
    }

    var openConnections: Int { slots.withLock { $0.count } }
    /// Connections closed at once because the limit was reached and none was idle.
    var refused: Int { refusedCount.load(ordering: .relaxed) }
    /// Idle connections closed to make room for new ones.
    var evicted: Int { evictedCount.load(ordering: .relaxed) }

    /// Registers a new connection, or returns `false` if it must be refused. At the limit the
    /// connection idle the longest is closed instead, if there is one.
    func admit(_ slot: Slot) -> Bool {
        let victim: Slot? = slots.withLock { slots in
            guard slots.count >= limits.maxConnections else {
                slots[ObjectIdentifier(slot)] = slot
                return nil
            }
            var oldest: (key: ObjectIdentifier, slot: Slot, since: Int64)?
            for (key, candidate) in slots {
                let since = candidate.idleSince.load(ordering: .relaxed)
                if since >= 0 && since < (oldest?.since ?? .max) { oldest = (key, candidate, since) }
            }
            guard let oldest else { return slot }
            slots[oldest.key] = nil
            slots[ObjectIdentifier(slot)] = slot
            return oldest.slot
        }
        switch victim {
        case nil:
            return true
        case let victim? where victim === slot:
            refusedCount.add(1, ordering: .relaxed)
            return false
        case let victim?:
            evictedCount.add(1, ordering: .relaxed)
            victim.channel.close(promise: nil)
            return true
        }
    }

    func remove(_ slot: Slot) {
        slots.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(slot)) }
    }
}

/// The first handler of every connection, below TLS and HTTP: it enforces ``ConnectionLimits``
/// (the connection count, the read deadline of each request, the idle timeout).
///
/// A request's deadline starts with the first byte received while no request is being read, and
/// stops when the HTTP layer reports the request complete (``RequestProgress/requestRead``). A
/// client that trickles headers or a body, one byte a second, is therefore cut off after
/// `readTimeout` however steadily it sends. On HTTP/2 the connection's deadline covers the bytes
/// until the first stream opens (the TLS handshake, the preface, the first HEADERS frame); then
/// each stream has its own, and a connection with no open stream is closed by the idle timeout
/// (Hummingbird's HTTP/2 connection manager counts streams, not bytes, so trickled frames do not
/// keep it open). One timer per connection is rescheduled lazily, so reads only store a
/// timestamp.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias InboundOut = NIOAny
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private let gate: ConnectionGate
    private let logger: Logger
    private var slot: ConnectionGate.Slot?
    private var requestStarted: NIODeadline?
    private var pendingResponses = 0
    /// Set by the first HTTP/2 stream; from then on streams, not bytes, make the connection busy.
    private var isHTTP2 = false
    private var openStreams = 0
    private var lastActivity = NIODeadline.now()
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?

    init(gate: ConnectionGate, logger: Logger) {
        self.gate = gate
        self.logger = logger
    }

    private var readTimeout: TimeAmount { .nanoseconds(Int64(gate.limits.readTimeout.nanoseconds)) }
    private var idleTimeout: TimeAmount { .nanoseconds(Int64(gate.limits.idleTimeout.nanoseconds)) }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard slot == nil else { return }
        let slot = ConnectionGate.Slot(channel: context.channel)
        self.slot = slot
        guard gate.admit(slot) else {
            self.slot = nil
            logger.notice("connection refused: too many open connections", metadata: ["limit": "\(gate.limits.maxConnections)"])
            context.close(promise: nil)
            return
        }
        lastActivity = .now()
        markIdle()
        schedule(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        if let slot { gate.remove(slot) }
        slot = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let now = NIODeadline.now()
        lastActivity = now
        if requestStarted == nil && !isHTTP2 {
            requestStarted = now
            slot?.idleSince.store(-1, ordering: .relaxed)
            schedule(context: context)
        }
        context.fireChannelRead(data)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let progress = event as? RequestProgress else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        switch progress {
        case .streamOpened:
            isHTTP2 = true
            requestStarted = nil
            openStreams += 1
            slot?.idleSince.store(-1, ordering: .relaxed)
        case .streamClosed:
            openStreams = max(0, openStreams - 1)
            lastActivity = .now()
            markIdle()
        case .requestRead:
            requestStarted = nil
            pendingResponses += 1
        case .responseSent:
            pendingResponses = max(0, pendingResponses - 1)
            lastActivity = .now()
            markIdle()
        }
        promise?.succeed()
    }

    private var isIdle: Bool { requestStarted == nil && pendingResponses == 0 && openStreams == 0 }

    private func markIdle() {
        guard isIdle else { return }
        slot?.idleSince.store(Int64(NIODeadline.now().uptimeNanoseconds), ordering: .relaxed)
    }

    /// Makes sure the timer fires no later than the next deadline.
    private func schedule(context: ChannelHandlerContext) {
        guard slot != nil else { return }
        // While a response is pending the connection is not idle: look again an idle time later.
        let due = requestStarted.map { $0 + readTimeout } ?? (isIdle ? lastActivity : NIODeadline.now()) + idleTimeout
        if let timerDeadline, timerDeadline <= due { return }
        timer?.cancel()
        timerDeadline = due
        let boundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: due) {
            handler.value.check(context: boundContext.value)
        }
    }

    private func check(context: ChannelHandlerContext) {
        timer = nil
        timerDeadline = nil
        let now = NIODeadline.now()
        if let requestStarted, now >= requestStarted + readTimeout {
            logger.notice(
                "connection closed: request not complete within the read timeout",
                metadata: ["remote": "\(context.remoteAddress?.ipAddress ?? "?")", "readTimeout": "\(gate.limits.readTimeout)"]
            )
            context.close(promise: nil)
            return
        }
        if isIdle && now >= lastActivity + idleTimeout {
            logger.debug("connection closed: idle", metadata: ["remote": "\(context.remoteAddress?.ipAddress ?? "?")"])
            context.close(promise: nil)
            return
        }
        schedule(context: context)
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
