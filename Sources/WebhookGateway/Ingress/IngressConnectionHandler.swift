import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Connection rules of the ingress port that the HTTP server does not have by itself:
///
/// - Headers larger than the HTTP decoder allows get 431 and the connection is closed, instead of
///   the generic 400.
/// - A response that says `Connection: close` (the 413 for an oversized body does, and so does a
///   401 or 503 given before a large or undeclared body was read) closes the connection once
///   written. Otherwise the server would read, and throw away, the rest of an oversized or unread
///   upload, however large, before the connection could be used again. On an HTTP/2
///   stream the header is dropped (HTTP/2 forbids it) and the stream is reset instead, which
///   stops the upload without touching the connection's other streams.
///
///   The close lingers, as nginx's does: first only the sending side is shut (the client sees the
///   response, then end of stream), and what the client still sends is read and thrown away for
///   at most ``lingerTime`` or ``lingerBytes``, then the connection is closed. Closing at once,
///   with unread upload bytes in the socket, makes the kernel answer with a reset, which can
///   destroy the response before the client has read it.
final class IngressConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    static let lingerTime: TimeAmount = .seconds(2)
    static let lingerBytes = 8 << 20

    private var closeAfterResponse = false
    /// An HTTP/2 stream (its parent is a connection, not the listening socket).
    private var isStream = false
    /// Set once the closing response is written: inbound parts are discarded.
    private var lingering = false
    private var discardedBytes = 0

    func handlerAdded(context: ChannelHandlerContext) {
        isStream = context.channel.parent?.parent != nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard lingering else {
            context.fireChannelRead(data)
            return
        }
        if case .body(let buffer) = unwrapInboundIn(data) {
            discardedBytes += buffer.readableBytes
            if discardedBytes > Self.lingerBytes { context.close(promise: nil) }
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head):
            guard head.headerFields[.connection]?.lowercased() == "close" else {
                context.write(data, promise: promise)
                return
            }
            closeAfterResponse = true
            if isStream {
                head.headerFields[.connection] = nil
                context.write(wrapOutboundOut(.head(head)), promise: promise)
            } else {
                context.write(data, promise: promise)
            }
        case .body:
            context.write(data, promise: promise)
        case .end:
            guard closeAfterResponse else {
                context.write(data, promise: promise)
                return
            }
            lingering = true
            if isStream {
                let boundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.writeAndFlush(data).whenComplete { result in
                    promise?.completeWith(result)
                    boundContext.value.close(promise: nil)
                }
                return
            }
            let boundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(data).whenComplete { result in
                promise?.completeWith(result)
                let context = boundContext.value
                context.close(mode: .output).whenFailure { _ in
                    boundContext.value.close(promise: nil)
                }
                context.eventLoop.scheduleTask(in: Self.lingerTime) {
                    boundContext.value.close(promise: nil)
                }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError, parserError == .headerOverflow else {
            context.fireErrorCaught(error)
            return
        }
        let head = HTTPResponse(
            status: .requestHeaderFieldsTooLarge,
            headerFields: [.connection: "close", .contentLength: "0"]
        )
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        let boundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            boundContext.value.close(promise: nil)
        }
    }
}
