import NIOCore

/// Writes each outbound Envelope as one JSON line.
public struct EnvelopeEncoder: MessageToByteEncoder {
  public typealias OutboundIn = Envelope

  public init() {}

  public func encode(data: Envelope, out: inout ByteBuffer) throws {
    try WireCodec.encode(data, into: &out)
  }
}
