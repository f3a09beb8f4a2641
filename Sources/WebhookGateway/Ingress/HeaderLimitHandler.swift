import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Answers 431 and closes the connection when the request's headers are larger than the HTTP
/// decoder allows (`maxHeaderListSize`), instead of the generic 400 the server would send.
final class HeaderLimitHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

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

extension HTTPServerBuilder {
    /// HTTP/1.1 with the ingress port's own handlers (431 on oversized headers).
    static var ingress: HTTPServerBuilder {
        .http1(configuration: .init(additionalChannelHandlers: [HeaderLimitHandler()]))
    }
}
