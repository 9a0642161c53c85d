import NIOCore

/// One frame of the NDJSON stream: a line without its terminator, or the news that a line
/// ran past the limit (after which the stream is no longer framed and must be closed).
public enum LineFrame: Sendable, Equatable {
  case line(ByteBuffer)
  case tooLong(limit: Int)
}

/// Splits a byte stream into `\n`-terminated lines (`\r\n` accepted), at most `maxLineBytes`
/// each without the terminator. Empty lines are skipped.
///
/// It never buffers more than the limit plus one read: a line that is still open when the
/// buffer passes the limit is reported as `tooLong` at once, and everything after it dropped.
public struct LineFrameDecoder: ByteToMessageDecoder {
  public typealias InboundOut = LineFrame

  /// The limit, shared with the handler that may lower it (a session's negotiated limit,
  /// once its handshake is done): a line still open past it is refused at once, not when
  /// its newline comes.
  public final class Limit {
    public var bytes: Int
    public init(_ bytes: Int) { self.bytes = bytes }
  }

  private let limit: Limit
  public var maxLineBytes: Int { limit.bytes }
  /// Bytes at the front of the buffer already searched for a newline.
  private var scanned = 0
  private var overflowed = false

  public init(maxLineBytes: Int) {
    limit = Limit(maxLineBytes)
  }

  public init(limit: Limit) {
    self.limit = limit
  }

  public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws
    -> DecodingState
  {
    guard let frame = next(&buffer) else { return .needMoreData }
    context.fireChannelRead(wrapInboundOut(frame))
    return overflowed ? .needMoreData : .continue
  }

  public mutating func decodeLast(
    context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
  ) throws -> DecodingState {
    while let frame = next(&buffer) {
      context.fireChannelRead(wrapInboundOut(frame))
      if overflowed { break }
    }
    // A final line without a terminator is incomplete; it is dropped with the connection.
    buffer.moveReaderIndex(to: buffer.writerIndex)
    return .needMoreData
  }

  /// The next frame in `buffer`, consuming it; nil when more bytes are needed.
  public mutating func next(_ buffer: inout ByteBuffer) -> LineFrame? {
    if overflowed {
      buffer.moveReaderIndex(to: buffer.writerIndex)
      return nil
    }
    let maxLineBytes = limit.bytes
    while true {
      let view = buffer.readableBytesView
      let start = view.startIndex + scanned
      guard let newline = view[start...].firstIndex(of: UInt8(ascii: "\n")) else {
        scanned = view.count
        // "\r" may still turn out to be part of a "\r\n" terminator.
        if view.count > maxLineBytes + 1 || (view.count == maxLineBytes + 1 && view.last != UInt8(ascii: "\r")) {
          overflowed = true
          buffer.moveReaderIndex(to: buffer.writerIndex)
          return .tooLong(limit: maxLineBytes)
        }
        return nil
      }
      scanned = 0
      let length = newline - view.startIndex
      let hasCR = length > 0 && view[newline - 1] == UInt8(ascii: "\r")
      let contentLength = hasCR ? length - 1 : length
      if contentLength > maxLineBytes {
        overflowed = true
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .tooLong(limit: maxLineBytes)
      }
      let line = buffer.readSlice(length: contentLength) ?? ByteBuffer()
      buffer.moveReaderIndex(forwardBy: length - contentLength + 1)
      if contentLength == 0 { continue }
      return .line(line)
    }
  }
}
