import GatewayConfiguration
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOHTTPTypes
import NIOSSL

/// A server child channel with a ``ConnectionGuard`` as the first handler of every connection,
/// below TLS and HTTP, so the connection limits hold whatever protocol the client speaks.
struct GuardedChildChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value

    let inner: Inner
    let gate: ConnectionGate

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        do {
            try channel.pipeline.syncOperations.addHandler(ConnectionGuard(gate: gate, logger: logger))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return inner.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// Reports each request's progress (``RequestProgress``) to the connection's ``ConnectionGuard``:
/// on HTTP/1, when a request's last part has been read and when a response's last part has been
/// written; on HTTP/2, when a stream opens and closes.
///
/// On HTTP/1 the event travels down this channel's own pipeline; on an HTTP/2 stream it is sent
/// into the parent (connection) channel's pipeline, where the guard sits. A stream is told apart
/// by its parent having a parent: an HTTP/1 connection's parent is the listening socket.
///
/// An HTTP/2 stream also gets its own read deadline here: its request must be complete within
/// `readTimeout` of the stream opening, or the stream is reset.
final class RequestProgressReporter: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let readTimeout: TimeAmount
    private var isStream = false
    private var streamDeadline: Scheduled<Void>?

    init(readTimeout: Duration) {
        self.readTimeout = .nanoseconds(readTimeout.nanoseconds)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        isStream = context.channel.parent?.parent != nil
        guard isStream else { return }
        report(.streamOpened, context: context)
        let boundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        streamDeadline = context.eventLoop.scheduleTask(in: readTimeout) {
            boundContext.value.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        streamDeadline?.cancel()
        streamDeadline = nil
        if isStream { report(.streamClosed, context: context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .end = unwrapInboundIn(data) {
            if isStream {
                streamDeadline?.cancel()
                streamDeadline = nil
            } else {
                report(.requestRead, context: context)
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if !isStream, case .end = unwrapOutboundIn(data) { report(.responseSent, context: context) }
        context.write(data, promise: promise)
    }

    private func report(_ progress: RequestProgress, context: ChannelHandlerContext) {
        if isStream, let parent = context.channel.parent {
            parent.pipeline.triggerUserOutboundEvent(progress, promise: nil)
        } else {
            context.triggerUserOutboundEvent(progress, promise: nil)
        }
    }
}

/// How one listener serves: plain HTTP/1.1, or TLS with HTTP/2 by ALPN and HTTP/1.1 as fallback;
/// always behind a ``ConnectionGuard``.
struct ListenerProtocol: Sendable {
    var limits: ConnectionLimits
    var certificate: ReloadableCertificate?
    /// Handlers of the ingress port's own rules, added to each HTTP/1 connection and HTTP/2 stream.
    var extraHandlers: @Sendable () -> [any RemovableChannelHandler] = { [] }

    func serverBuilder(gate: ConnectionGate) -> HTTPServerBuilder {
        let limits = limits
        let extraHandlers = extraHandlers
        let decoder = HTTP1Channel.Configuration.DecoderConfiguration(
            maxHeaderFieldSize: limits.maxHeaderBytes,
            maxHeaderListSize: limits.maxHeaderBytes
        )
        // Used for HTTP/1 connections and, with TLS, for HTTP/2 streams too.
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: extraHandlers() + [RequestProgressReporter(readTimeout: limits.readTimeout)],
            httpDecoderConfiguration: decoder
        )
        guard let certificate else {
            return HTTPServerBuilder { responder in
                GuardedChildChannel(inner: HTTP1Channel(responder: responder, configuration: http1), gate: gate)
            }
        }
        let tls = certificate.serverConfiguration()
        return HTTPServerBuilder { responder in
            let configuration = HTTP2UpgradeChannel.Configuration(idleTimeout: limits.idleTimeout, streamConfiguration: http1)
            return GuardedChildChannel(
                inner: try HTTP2UpgradeChannel(tlsConfiguration: tls, configuration: configuration, responder: responder),
                gate: gate
            )
        }
    }
}
