import Foundation
import NIOCore
import SwiftProtobuf
import Testing

@testable import HaatProtocol

/// The hand-written reading and writing of `assign`, `ack` and `complete` lines must be
/// indistinguishable from protobuf's JSON codec: the same bytes out, the same messages in,
/// and every line it does not take left to protobuf, which decides.
@Suite struct WireFastPathTests {
  /// Texts that need every kind of escape protobuf writes, and plain ones.
  static let texts = [
    "", "7", "18446744073709551615", "r12.3.1", "café ☕", "emoji 😀 U+1F600", "quote \" back \\ slash",
    "tab\tnew\nline\r\u{8}\u{c}", "nul \u{0} unit \u{1f} del \u{7f}", "c1 \u{80}\u{85}\u{9f} then \u{a0}é",
    "\u{E0020} tag", String(repeating: "x", count: 300),
  ]

  struct Random: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return state ^ (state >> 29)
    }
  }

  static func complete(_ random: inout Random) -> Envelope {
    var complete = Haat_V1_Complete()
    complete.task = texts.randomElement(using: &random) ?? ""
    complete.attempt = [0, 1, 2, UInt32.max].randomElement(using: &random) ?? 1
    switch random.next() % 3 {
    case 0: break
    case 1: complete.partial = Partial()
    default:
      var cell = Haat_V1_EngagementCell()
      cell.platform = texts.randomElement(using: &random) ?? ""
      cell.account = "acct-\(random.next() % 100)"
      cell.likes = random.next()
      cell.posts = random.next() % 1000
      complete.partial.engagement.cells = [cell, cell]
    }
    if random.next() % 2 == 0 { complete.bookmark = texts.randomElement(using: &random) ?? "" }
    switch random.next() % 3 {
    case 0: break
    case 1: complete.stats = TaskStats()
    default:
      complete.stats.rows = random.next()
      complete.stats.bytes = random.next() % 1_000_000
      complete.stats.pages = UInt32(random.next() % 10)
      complete.stats.httpStatuses = ["200": 3]
      complete.stats.durationMs = random.next() % 10_000
    }
    if random.next() % 4 == 0 {
      complete.part = UInt32(random.next() % 5)
      complete.parts = UInt32(random.next() % 5)
    }
    if random.next() % 5 == 0 {
      complete.split.size = random.next()
      complete.split.header = texts.randomElement(using: &random) ?? ""
      complete.split.bounds = [1, 2, random.next()]
    }
    if random.next() % 2 == 0 {
      complete.partialBinary = Data((0..<Int(random.next() % 12)).map { _ in UInt8(truncatingIfNeeded: random.next()) })
    }
    var envelope = Envelope()
    if random.next() % 2 == 0 { envelope.id = texts.randomElement(using: &random) ?? "" }
    if random.next() % 4 == 0 { envelope.replyTo = texts.randomElement(using: &random) ?? "" }
    envelope.body = .complete(complete)
    return envelope
  }

  static func others(_ random: inout Random) -> Envelope {
    var envelope = Envelope()
    if random.next() % 2 == 0 { envelope.replyTo = texts.randomElement(using: &random) ?? "" }
    if random.next() % 2 == 0 {
      var ack = Haat_V1_Ack()
      ack.task = texts.randomElement(using: &random) ?? ""
      ack.attempt = UInt32(truncatingIfNeeded: random.next() % 3)
      ack.accepted = random.next() % 2 == 0
      if random.next() % 2 == 0 { ack.reason = "stale_attempt" }
      envelope.body = .ack(ack)
    } else {
      var assign = Haat_V1_Assign()
      assign.task = texts.randomElement(using: &random) ?? ""
      assign.attempt = UInt32(truncatingIfNeeded: random.next() % 3)
      assign.leaseExpiresMs = Int64(random.next() % (1 << 45))
      if random.next() % 4 != 0 { assign.spec = Self.spec(&random) }
      assign.pool = "collect"
      assign.job = "\(random.next() % 1000)"
      envelope.body = .assign(assign)
    }
    return envelope
  }

  static let rates: [Double] = [0, 2.5, 0.1, 1e-3, 100, 1.7976931348623157e308, 5e-324, 123456789.125]

  static func spec(_ random: inout Random) -> TaskSpec {
    var spec = TaskSpec()
    func text() -> String { texts.randomElement(using: &random) ?? "" }
    func maybe() -> Bool { random.next() % 2 == 0 }
    if maybe() {
      spec.source.kind = ["noop", "canonical_posts", "meta_page_posts"].randomElement(using: &random) ?? ""
      if maybe() { spec.source.url = "https://example.com/\(text())" }
      if maybe() { spec.source.name = text() }
      if maybe() { spec.source.platform = "instagram" }
      if maybe() { spec.source.account = text() }
      if maybe() { spec.source.format = "csv" }
      if maybe() { spec.source.credential = "meta" }
      if maybe() { spec.source.pool = "collect" }
      if maybe() { spec.source.tasks = UInt32(random.next() % 10_000) }
      if maybe() { spec.source.requestsPerSecond = rates.randomElement(using: &random) ?? 0 }
      if maybe() { spec.source.incremental = true }
      if maybe() { spec.source.splitBytes = random.next() }
      if maybe() { spec.source.since = "2026-01-01" }
      if maybe() { spec.source.until = "2026-02-01" }
      if maybe() { spec.source.timezone = "Europe/Paris" }
      if maybe() { spec.source.businessHours = "Sat-Thu 10:00-20:00" }
    }
    if maybe() { spec.reports = Array(["engagement", "best_time", text()].prefix(Int(random.next() % 4))) }
    if maybe() { spec.index = UInt32(random.next() % 100_000) }
    if maybe() { spec.bookmark = text() }
    if maybe() { spec.rateKey = "credential:meta" }
    if maybe() { spec.requestsPerSecond = rates.randomElement(using: &random) ?? 0 }
    if maybe() { spec.splitPlan = true }
    if random.next() % 4 == 0 {
      spec.range.start = random.next() % 1_000
      spec.range.end = random.next()
      if maybe() { spec.range.size = random.next() }
      if maybe() { spec.range.header = text() }
    }
    if random.next() % 4 == 0 { spec.window.start = "2026-03-01" }
    return spec
  }

  static func protobufLine(_ envelope: Envelope) throws -> [UInt8] {
    try envelope.jsonUTF8Bytes(options: WireCodec.encodingOptions) + [UInt8(ascii: "\n")]
  }

  static func protobufDecode(_ line: [UInt8]) -> Envelope? {
    try? Envelope(jsonUTF8Bytes: line, options: WireCodec.decodingOptions)
  }

  /// The fast path writes `envelope`, byte for byte as protobuf does; what it wrote.
  static func expectWrittenAsProtobufWritesIt(_ envelope: Envelope) throws -> ByteBuffer {
    var buffer = ByteBuffer()
    #expect(try WireFastPath.encode(envelope, into: &buffer))
    let expected = try protobufLine(envelope)
    #expect(
      Array(buffer.readableBytesView) == expected,
      "\(String(buffer: buffer)) against \(String(decoding: expected, as: UTF8.self))")
    return buffer
  }

  @Test func aCompleteIsWrittenByteForByteAsProtobufWritesIt() throws {
    var random = Random(state: 42)
    for _ in 0..<2_000 {
      let envelope = Self.complete(&random)
      let buffer = try Self.expectWrittenAsProtobufWritesIt(envelope)
      // And WireCodec writes it so.
      var viaCodec = ByteBuffer()
      try WireCodec.encode(envelope, into: &viaCodec)
      #expect(viaCodec == buffer)
    }
    // Other bodies, and a complete with unknown fields, are protobuf's to write.
    var other = ByteBuffer()
    #expect(!(try WireFastPath.encode(Self.others(&random), into: &other)))
    var withUnknown = Self.complete(&random)
    try withUnknown.merge(serializedBytes: [0xF8, 0x07, 0x01] as [UInt8])
    #expect(!(try WireFastPath.encode(withUnknown, into: &other)))
    #expect(other.readableBytes == 0)
  }

  /// `accepted` (a submit's answer, one per 1-task job) is written by hand too.
  @Test func anAcceptedIsWrittenByteForByteAsProtobufWritesIt() throws {
    var random = Random(state: 7)
    for _ in 0..<1_000 {
      var accepted = Haat_V1_Accepted()
      if random.next() % 4 != 0 { accepted.job = Self.texts.randomElement(using: &random) ?? "" }
      accepted.tasks = [0, 1, 5_000, UInt32.max].randomElement(using: &random) ?? 1
      if random.next() % 3 == 0 { accepted.part = UInt32(random.next() % 4) }
      if random.next() % 3 == 0 { accepted.schedule = Self.texts.randomElement(using: &random) ?? "" }
      var envelope = Envelope(replyTo: Self.texts.randomElement(using: &random) ?? "", .accepted(accepted))
      if random.next() % 5 == 0 { envelope.id = "c\(random.next() % 100)" }
      _ = try Self.expectWrittenAsProtobufWritesIt(envelope)
    }
    var withUnknown = Envelope(replyTo: "s1", .accepted(Haat_V1_Accepted()))
    try withUnknown.merge(serializedBytes: [0xF8, 0x07, 0x01] as [UInt8])
    var other = ByteBuffer()
    #expect(!(try WireFastPath.encode(withUnknown, into: &other)))
  }

  @Test func linesProtobufWritesAreReadAsProtobufReadsThem() throws {
    var random = Random(state: 7)
    var taken = 0
    for round in 0..<3_000 {
      let envelope = round % 2 == 0 ? Self.complete(&random) : Self.others(&random)
      var line = try Self.protobufLine(envelope)
      line.removeLast()
      let fast = WireFastPath.decode(ByteBuffer(bytes: line))
      if let fast {
        taken += 1
        #expect(fast == Self.protobufDecode(line), "\(String(decoding: line, as: UTF8.self))")
        #expect(fast == envelope)
      } else {
        // Only a line with an escape is left to protobuf.
        #expect(line.contains(UInt8(ascii: "\\")), "\(String(decoding: line, as: UTF8.self))")
      }
      guard case .success(let decoded) = WireCodec.decode(ByteBuffer(bytes: line)) else {
        Issue.record("not decoded: \(String(decoding: line, as: UTF8.self))")
        continue
      }
      #expect(decoded == envelope)
    }
    #expect(taken > 1_000)
  }

  /// A spec in protobuf's plain form is read by hand, not handed back to protobuf.
  @Test func plainSpecsAreReadByHand() throws {
    var random = Random(state: 99)
    var read = 0
    for _ in 0..<2_000 {
      let spec = Self.spec(&random)
      let bytes: [UInt8] = try spec.jsonUTF8Bytes(options: WireCodec.encodingOptions)
      guard !bytes.contains(UInt8(ascii: "\\")) else { continue }
      let buffer = ByteBuffer(bytes: bytes)
      let plain = buffer.withUnsafeReadableBytes { raw in
        var reader = PlainJSON(raw, line: buffer)
        return reader.plainTaskSpec()
      }
      #expect(plain == spec, "\(String(decoding: bytes, as: UTF8.self))")
      read += 1
    }
    #expect(read > 1_000)
  }

  /// Lines in any other form go to protobuf, which decides, as it did before.
  @Test(arguments: [
    #"{"ack":{"task":"1","attempt":1,"accepted":true}}"#,
    #"{ "ack":{"task":"1"}}"#,
    #"{"ack":{"task":"1","task":"2"}}"#,
    #"{"ack":{"task":"1","attempt":"1"}}"#,
    #"{"ack":{"task":"1","attempt":01}}"#,
    #"{"ack":{"task":"1","attempt":4294967296}}"#,
    #"{"ack":{"task":"1","attempt":1.0}}"#,
    #"{"ack":{"task":"1","attempt":-1}}"#,
    #"{"ack":{"task":"1","accepted":null}}"#,
    #"{"ack":{"task":"1","extra":true}}"#,
    #"{"replyTo":"9","ack":{"task":"1"}}"#,
    #"{"reply_to":"9","ack":{"task":"1"},"assign":{"task":"1"}}"#,
    #"{"ack":{"task":"\u0031"}}"#,
    #"{"ack":{"task":"1"}}  "#,
    #"{"ack":{"task":"1"}}x"#,
    #"{"id":"x"}"#,
    #"{"assign":{"task":"1","lease_expires_ms":"-5","spec":{"source":{"kind":"noop"}}}}"#,
    #"{"assign":{"task":"1","lease_expires_ms":5,"spec":{"source":{"kind":"noop","url":"a\/b"}}}}"#,
    #"{"assign":{"task":"1","spec":{"source":{"kind":"noop"}},"job":"2"}}"#,
    #"{"assign":{"task":"1","spec":null}}"#,
    #"{"assign":{"task":"1","spec":{"index":"x"}}}"#,
    #"{"assign":{"task":"1","spec":{"source":{"kind":"noop"}}"#,
    #"{"assign":{"task":"1","spec":{"requests_per_second":"2.5"}}}"#,
    #"{"assign":{"task":"1","spec":{"requests_per_second":1e400}}}"#,
    #"{"assign":{"task":"1","spec":{"requests_per_second":01.5}}}"#,
    #"{"assign":{"task":"1","spec":{"requests_per_second":.5}}}"#,
    #"{"assign":{"task":"1","spec":{"requests_per_second":-0.5e-3}}}"#,
    #"{"assign":{"task":"1","spec":{"requests_per_second":2E+2}}}"#,
    #"{"assign":{"task":"1","spec":{"requests_per_second":1.}}}"#,
    #"{"assign":{"task":"1","spec":{"reports":null}}}"#,
    #"{"assign":{"task":"1","spec":{"reports":["a",1]}}}"#,
    #"{"assign":{"task":"1","spec":{"reports":[]}}}"#,
    #"{"assign":{"task":"1","spec":{"index":3,"index":4}}}"#,
    #"{"assign":{"task":"1","spec":{"source":{"kind":"noop","shape":"x"}}}}"#,
    #"{"assign":{"task":"1","spec":{"source":{"split_bytes":"18446744073709551615"}}}}"#,
    #"{"assign":{"task":"1","spec":{"source":{"split_bytes":18446744073709551616}}}}"#,
    #"{"assign":{"task":"1","spec":{"source":{"tasks":5,"kind":"noop","tasks":6}}}}"#,
    #"{"assign":{"task":"1","spec":{"range":{"start":"1","end":"9"},"window":{}}}}"#,
    #"{"complete":{"task":"1","partial_binary":"QQ=="}}"#,
    #"{"complete":{"task":"1","partial_binary":"QR=="}}"#,
    #"{"complete":{"task":"1","partial_binary":"QQ"}}"#,
    #"{"complete":{"task":"1","partial_binary":"-_8="}}"#,
    #"{"complete":{"task":"1","partial_binary":"Q=Q="}}"#,
    #"{"complete":{"task":"1","partial_binary":"AAEC"}}"#,
    #"{"complete":{"task":"1","stats":{"rows":"5","http_statuses":{"200":2}},"parts":2}}"#,
    #"{"complete":{"task":"1","stats":{"rows":-5}}}"#,
    #"{"complete":{"task":"1","partial":{"engagement":{"cells":[{"platform":"x","likes":"3"}]}}}}"#,
  ])
  func everyOtherFormIsLeftToProtobuf(_ text: String) {
    let line = Array(text.utf8)
    let slow = Self.protobufDecode(line)
    if let fast = WireFastPath.decode(ByteBuffer(bytes: line)) {
      #expect(fast == slow, "\(text)")
    }
    switch WireCodec.decode(ByteBuffer(bytes: line)) {
    case .success(let envelope): #expect(slow == envelope, "\(text)")
    case .failure: #expect(slow?.body == nil, "\(text)")
    }
  }

  /// Nesting counts from the line, not from the nested message: a spec too deep for the
  /// whole line is refused, as before, and one that is not is taken.
  @Test func aNestedMessageIsNoDeeperThanTheLineAllows() {
    var refused = 0
    for depth in 20...40 {
      let value = String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth)
      let line = Array(#"{"assign":{"task":"1","spec":{"x":\#(value)}}}"#.utf8)
      let slow = Self.protobufDecode(line)
      #expect(WireFastPath.decode(ByteBuffer(bytes: line)) == slow, "depth \(depth)")
      if slow == nil { refused += 1 }
    }
    #expect(refused > 0 && refused < 21)
  }
}
