import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTPTypes

/// After the api refused a body as too large (413), reads and throws away the rest of it, up to
/// `discardLimit`, then lets the connection end; past the limit it closes the connection at once.
/// Without it a client that writes its whole body before reading (no `Expect: 100-continue`, as
/// Python's urllib) blocked in send until its own timeout: the server had answered, half-closed its
/// side and stopped reading.
final class RefusedBodyDrain: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    static let discardLimit = 64 << 20

    private var refusing = false
    private var draining = false
    private var discarded = 0

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch self.unwrapOutboundIn(data) {
        case .head(let response):
            self.refusing = response.status == .contentTooLarge
            context.write(data, promise: promise)
        case .end where self.refusing:
            self.refusing = false
            let written = context.eventLoop.makePromise(of: Void.self)
            written.futureResult.cascade(to: promise)
            context.write(data, promise: written)
            written.futureResult.assumeIsolated().whenSuccess {
                // The answer is out: from now on read whatever the client still sends, and drop it.
                self.draining = true
                context.read()
            }
        default:
            context.write(data, promise: promise)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard self.draining else {
            context.fireChannelRead(data)
            return
        }
        switch self.unwrapInboundIn(data) {
        case .body(let buffer):
            self.discarded += buffer.readableBytes
            if self.discarded > Self.discardLimit { context.close(promise: nil) }
        case .end:
            // The whole refused body has been read: the client now reads the answer and closes.
            self.draining = false
            context.fireChannelRead(data)
        case .head:
            context.fireChannelRead(data)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if self.draining {
            context.read()
        } else {
            context.fireChannelReadComplete()
        }
    }
}
