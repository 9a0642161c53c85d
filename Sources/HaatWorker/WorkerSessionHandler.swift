import HaatProtocol
import NIOCore

/// The worker's end of a session: hands messages to the runtime.
final class WorkerSessionHandler: ChannelInboundHandler {
  typealias InboundIn = Envelope
  let runtime: WorkerRuntime

  init(runtime: WorkerRuntime) { self.runtime = runtime }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    runtime.receive(unwrapInboundIn(data))
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    runtime.readComplete()
  }

  func channelInactive(context: ChannelHandlerContext) {
    runtime.closed(context.channel)
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    context.close(promise: nil)
  }
}
