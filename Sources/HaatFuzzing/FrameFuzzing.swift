import HaatCore
import HaatProtocol
import NIOCore

/// The wire's reading side: bytes from a peer through `LineFrameDecoder`, each line through
/// `WireCodec.decode`.
enum FrameFuzzing {
  /// What the decoder handed over, copied out of the buffer.
  enum Frame: Equatable {
    case line([UInt8])
    case tooLong
  }

  static func run(_ data: UnsafeRawBufferPointer, _ invariants: inout Invariants) {
    // A small limit reaches the overflow edges (a CR at the limit, a line one past it) with
    // short inputs; the larger one lets whole envelopes through to the codec. A control byte
    // 01–08 in front picks the small one (it is part of the first line all the same).
    let limit = (1...8).contains(data.first ?? 0) ? 64 : FuzzLimits.frameBytes
    let (whole, split) = Input.chunkings(data)
    var lines: [ByteBuffer] = []
    let once = frames(whole, limit: limit, &invariants, lines: &lines)
    var ignored: [ByteBuffer] = []
    let twice = frames(split, limit: limit, &invariants, lines: &ignored)
    invariants.check(
      once == twice,
      "cutting the input at byte \(Input.cut(data)) changed the frames (\(once.count) whole, \(twice.count) cut)")
    for line in lines { codec(line, &invariants) }
  }

  /// Feeds `chunks` the way `ByteToMessageHandler` does: append a read, take frames until
  /// the decoder needs more.
  static func frames(
    _ chunks: [UnsafeRawBufferPointer], limit: Int, _ invariants: inout Invariants,
    lines: inout [ByteBuffer]
  ) -> [Frame] {
    var decoder = LineFrameDecoder(maxLineBytes: limit)
    var buffer = ByteBuffer()
    var out: [Frame] = []
    for chunk in chunks {
      buffer.writeBytes(chunk)
      while let frame = decoder.next(&buffer) {
        invariants.check(out.last != .tooLong, "a frame after tooLong")
        switch frame {
        case .line(let line):
          let bytes = Array(line.readableBytesView)
          invariants.check(
            !bytes.isEmpty && bytes.count <= limit,
            "a line of \(bytes.count) bytes handed over (limit \(limit))")
          invariants.check(!bytes.contains(UInt8(ascii: "\n")), "a line with a newline inside")
          out.append(.line(bytes))
          lines.append(line)
        case .tooLong(let reported):
          invariants.check(reported == limit, "tooLong reports limit \(reported), not \(limit)")
          out.append(.tooLong)
        }
      }
      // Memory stays bounded: an open line longer than the limit is reported at once.
      invariants.check(
        buffer.readableBytes <= limit + 1,
        "\(buffer.readableBytes) bytes left buffered (limit \(limit))")
    }
    return out
  }

  /// A line decodes to an envelope whose encoding is one line and stable, or to an error
  /// of bounded size with a protocol code.
  static func codec(_ line: ByteBuffer, _ invariants: inout Invariants) {
    switch WireCodec.decode(line) {
    case .success(let envelope):
      invariants.check(envelope.body != nil, "decoded an envelope without a body")
      let encoded: [UInt8]
      do {
        encoded = try WireCodec.line(envelope)
      } catch {
        invariants.check(false, "a decoded envelope does not encode: \(error)")
        return
      }
      invariants.check(
        encoded.last == UInt8(ascii: "\n") && !encoded.dropLast().contains(UInt8(ascii: "\n")),
        "an envelope encodes to more than one line")
      switch WireCodec.decode(ByteBuffer(bytes: encoded.dropLast())) {
      case .success(let again):
        invariants.check(
          (try? WireCodec.line(again)) == encoded,
          "re-encoding is not stable: \(Input.excerpt(encoded))")
      case .failure(let failure):
        invariants.check(
          false, "an encoded envelope does not decode (\(failure.error)): \(Input.excerpt(encoded))")
      }
    case .failure(let failure):
      invariants.check(
        failure.error.code == .badFrame || failure.error.code == .unsupported,
        "a bad line is \(failure.error.code.rawValue), not bad_frame or unsupported")
      invariants.check(
        failure.error.message.utf8.count <= FuzzLimits.errorMessageBytes,
        "an error message of \(failure.error.message.utf8.count) bytes")
    }
  }
}
