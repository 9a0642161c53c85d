import HaatCore
import HaatProtocol
import NIOCore
import NIOEmbedded
import Testing

@Suite("NDJSON framing")
struct FramingTests {
  /// Feeds `chunks` through a LineFrameDecoder in an embedded channel and collects frames.
  func frames(_ chunks: [String], limit: Int = 64) throws -> [LineFrame] {
    let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineFrameDecoder(maxLineBytes: limit)))
    var out: [LineFrame] = []
    for chunk in chunks {
      try channel.writeInbound(ByteBuffer(string: chunk))
      while let frame = try channel.readInbound(as: LineFrame.self) { out.append(frame) }
    }
    _ = try? channel.finish()
    return out
  }

  func text(_ frame: LineFrame) -> String? {
    if case .line(let buffer) = frame { return String(buffer: buffer) }
    return nil
  }

  @Test func splitsLinesAcrossChunks() throws {
    let out = try frames(["{\"a\":1}\n{\"b\"", ":2}\r", "\n\n\r\n{\"c\":3}\n"])
    #expect(out.compactMap(text) == ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"])
  }

  @Test func lineAtTheLimitPassesOneOverFails() throws {
    let exact = String(repeating: "x", count: 64)
    #expect(try frames([exact + "\r\n"]).compactMap(text) == [exact])
    #expect(try frames([exact + "x\n"]) == [.tooLong(limit: 64)])
    // Caught before the newline arrives, so memory stays bounded.
    #expect(try frames([exact + "xx"]) == [.tooLong(limit: 64)])
  }

  /// A limit lowered after the decoder was made (a session's, agreed in its handshake)
  /// holds from the next bytes on, before any newline.
  @Test func aLoweredLimitHoldsBeforeTheNewline() throws {
    let limit = LineFrameDecoder.Limit(1_024)
    let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineFrameDecoder(limit: limit)))
    try channel.writeInbound(ByteBuffer(string: String(repeating: "a", count: 100) + "\n"))
    #expect(try channel.readInbound(as: LineFrame.self).map(text) == String(repeating: "a", count: 100))
    limit.bytes = 64
    try channel.writeInbound(ByteBuffer(string: String(repeating: "b", count: 70)))
    #expect(try channel.readInbound(as: LineFrame.self) == .tooLong(limit: 64))
    _ = try? channel.finish()
  }

  @Test func nothingAfterAnOverflow() throws {
    let out = try frames([String(repeating: "y", count: 100), "\n{\"ok\":1}\n"])
    #expect(out == [.tooLong(limit: 64)])
  }
}

@Suite("Envelope codec")
struct CodecTests {
  @Test func roundTrip() throws {
    var credit = Haat_V1_Credit()
    credit.pool = "collect"
    credit.free = 4
    let line = try WireCodec.line(Envelope(id: "7", .credit(credit)))
    #expect(String(decoding: line, as: UTF8.self) == "{\"id\":\"7\",\"credit\":{\"pool\":\"collect\",\"free\":4}}\n")
    let decoded = try WireCodec.decode(ByteBuffer(bytes: line.dropLast())).get()
    #expect(decoded.credit == credit)
  }

  static let faults: [(String, ErrorCode, String)] = [
    ("not json", .badFrame, ""),
    ("[1,2]", .badFrame, ""),
    ("{\"id\":\"9\",\"frobnicate\":{}}", .unsupported, "9"),
    ("{\"id\":\"3\"}", .unsupported, "3"),
    ("{\"hello\":5}", .badFrame, ""),
    ("{\"id\":\"x1\",\"hello\":5}", .badFrame, "x1"),
  ]

  @Test(arguments: faults)
  func faultsAreClassified(line: String, code: ErrorCode, replyTo: String) {
    switch WireCodec.decode(ByteBuffer(string: line)) {
    case .success: Issue.record("\(line) decoded")
    case .failure(let failure):
      #expect(failure.error.code == code)
      #expect(failure.replyTo == replyTo)
    }
  }

  /// A body key whose value is null is absent (protocol.md §3), and the error says so
  /// rather than naming the key as an unknown message type.
  @Test func aNullBodyIsNoBody() {
    for line in ["{\"id\":\"13\",\"ping\":null}", "{\"id\":\"14\"}"] {
      guard case .failure(let failure) = WireCodec.decode(ByteBuffer(string: line)) else {
        Issue.record("\(line) decoded")
        continue
      }
      #expect(failure.error.code == .unsupported)
      #expect(failure.error.message == "no message body", "\(line)")
    }
    guard case .failure(let failure) = WireCodec.decode(ByteBuffer(string: "{\"id\":\"15\",\"ping\":null,\"frob\":{}}"))
    else {
      Issue.record("decoded")
      return
    }
    #expect(failure.error.message == "unknown message type frob")
  }

  @Test func unknownFieldsAreIgnored() throws {
    let envelope = try WireCodec.decode(
      ByteBuffer(string: "{\"id\":\"1\",\"future\":true,\"credit\":{\"pool\":\"collect\",\"free\":1,\"later\":[1]}}")
    ).get()
    #expect(envelope.credit.free == 1)
  }
}

@Suite("Bad frames")
struct BadFrameTests {
  @Test func badFrameEchoesAReadableID() {
    guard case .failure(let failure) = WireCodec.decode(ByteBuffer(string: "{\"id\":\"g1\",\"get_job\":{\"job\":1}}"))
    else {
      Issue.record("decoded")
      return
    }
    #expect(failure.error.code == .badFrame)
    #expect(failure.replyTo == "g1")
    #expect(failure.error.message.contains("strings"))
  }

  /// A number past its field's range is not "not a number": the message says which it may be.
  @Test func aNumberOutOfRangeIsSaidToBe() {
    for line in [
      #"{"id":"n1","submit":{"spec":{"sources":[{"requests_per_second":1e400}]}}}"#,
      #"{"id":"n1","credit":{"pool":"collect","free":4294967296}}"#,
    ] {
      guard case .failure(let failure) = WireCodec.decode(ByteBuffer(string: line)) else {
        Issue.record("decoded: \(line)")
        continue
      }
      #expect(failure.error.code == .badFrame)
      #expect(failure.replyTo == "n1")
      #expect(failure.error.message.contains("out of range"), "\(failure.error.message)")
    }
  }

  @Test func notJSONSaysSo() {
    guard case .failure(let failure) = WireCodec.decode(ByteBuffer(string: "this is not json")) else {
      Issue.record("not the result this test expects")
      return
    }
    #expect(failure.error.message.hasPrefix("not JSON"))
    guard case .failure(let array) = WireCodec.decode(ByteBuffer(string: "[1,2]")) else {
      Issue.record("not the result this test expects")
      return
    }
    #expect(array.error.message.contains("JSON object"))
  }

  /// Objects nest at most 32 deep, in known and unknown fields alike; arrays in unknown
  /// fields are skipped, however deep (a 1 MB line of brackets), without a crash.
  @Test func deepNestingIsBounded() {
    func line(_ opener: String, _ closer: String, _ depth: Int) -> ByteBuffer {
      ByteBuffer(
        string: "{\"id\":\"1\",\"ping\":{\"unknown\":" + String(repeating: opener, count: depth) + "1"
          + String(repeating: closer, count: depth) + "}}")
    }
    for depth in [40, 100_000] {
      guard case .failure(let failure) = WireCodec.decode(line("{\"x\":", "}", depth)) else {
        Issue.record("objects nested \(depth) deep were decoded")
        continue
      }
      #expect(failure.error.code == .badFrame)
    }
    if case .failure = WireCodec.decode(line("{\"x\":", "}", 20)) {
      Issue.record("objects nested 20 deep were refused")
    }
    for depth in [40, 500_000] {
      // Decoded (skipped) or refused; either way the decoder returns.
      _ = WireCodec.decode(line("[", "]", depth))
    }
  }
}
