import HaatCore
import Logging
import NIOCore

/// First on a TLS port's connections: a TLS client's first byte is a handshake record
/// (0x16). Anything else is a plaintext peer (or a scanner); its first bytes are logged,
/// escaped and cut short, and the connection closed, so the operator sees why a client
/// that forgot `--tls` never got in. Removes itself after the first read.
/// Sent down the pipeline when the probe refused a plaintext peer (its failure is counted).
struct PlaintextPeer {}

final class TLSProbe: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = ByteBuffer

  private let throttle: AuthThrottle

  init(throttle: AuthThrottle) {
    self.throttle = throttle
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let buffer = unwrapInboundIn(data)
    guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self), first != 0x16 else {
      context.fireChannelRead(data)
      context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
      return
    }
    let bytes = buffer.getBytes(at: buffer.readerIndex, length: min(buffer.readableBytes, 48)) ?? []
    // A failed handshake like any other: counted toward the address's refusal, and logged
    // within its share of lines (one line per connection let any peer flood the log).
    throttle.failed(
      // The peer's IP address alone, as every other line about a peer names it.
      address: context.channel.remoteAddress?.ipAddress ?? "?", tokenID: "", subject: "",
      error: HaatError(.badFrame, "the first bytes are not a TLS handshake"),
      event: "a peer sent bytes that are not TLS to the TLS port; closing (a client without --tls?)",
      details: ["first_bytes": "\(Self.escape(bytes))"])
    // The session handler counts no second failure for the TLS error the close causes.
    context.fireUserInboundEventTriggered(PlaintextPeer())
    context.close(promise: nil)
  }

  /// Printable ASCII as is, everything else as \xNN: a log line can hold any bytes safely.
  static func escape(_ bytes: [UInt8]) -> String {
    var text = ""
    for byte in bytes {
      if byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "\\") {
        text.unicodeScalars.append(Unicode.Scalar(byte))
      } else {
        text += "\\x" + String(byte, radix: 16, uppercase: false).leftPadded(to: 2)
      }
    }
    return text
  }
}

extension String {
  fileprivate func leftPadded(to width: Int) -> String {
    count >= width ? self : String(repeating: "0", count: width - count) + self
  }
}
