import Foundation
import HaatCore
import HaatProtocol
import NIOCore
import Testing

@Suite("JSON string literals")
struct JSONStringTests {
  @Test(arguments: ["", "plain", "q\"b\\c", "\u{0}\u{1}\u{1F}\n\t", "é 🙂 \u{2028}", "/slash/"])
  func aLiteralReadsBackAsItsText(_ text: String) throws {
    let literal = WireCodec.jsonString(text)
    #expect(literal.hasPrefix("\"") && literal.hasSuffix("\""))
    let decoded = try JSONSerialization.jsonObject(with: Data("[\(literal)]".utf8)) as? [String]
    #expect(decoded == [text])
  }
}

/// A character past U+FFFF written as an escaped surrogate pair (Python's `json` writes
/// them so) decodes to that character: SwiftProtobuf composed U+E0020 as U+D0020 and
/// U+20000 as U+10000, so an invisible tag character passed the check for names as an
/// unassigned one.
@Suite struct SurrogatePairTests {
  static func name(_ escaped: String) -> String? {
    let line = #"{"id":"1","submit":{"spec":{"name":"\#(escaped)","sources":[{"kind":"noop"}]}}}"#
    guard case .success(let envelope) = WireCodec.decode(ByteBuffer(string: line)),
      case .submit(let submit)? = envelope.body
    else { return nil }
    return submit.spec.name
  }

  @Test(arguments: [
    (#"a\udb40\udc20b"#, "a\u{E0020}b"), (#"\ud840\udc00"#, "\u{20000}"), (#"\ud83d\ude00"#, "\u{1F600}"),
    (#"\uDBFF\uDFFF"#, "\u{10FFFF}"), (#"x\\ud83d\\ude00"#, #"x\ud83d\ude00"#), (#"plain \u00e9"#, "plain é"),
  ])
  func pairsDecodeToTheirCharacter(escaped: String, decoded: String) {
    #expect(Self.name(escaped) == decoded)
  }

  @Test func aLoneSurrogateIsABadFrame() {
    for escaped in [#"\ud83d"#, #"\ude00x"#, #"\ud83d\u0041"#] {
      #expect(Self.name(escaped) == nil, "\(escaped)")
      // Refused with the line's id echoed, and said what it is.
      let line = #"{"id":"a14b","submit":{"spec":{"name":"\#(escaped)","sources":[{"kind":"noop"}]}}}"#
      guard case .failure(let failure) = WireCodec.decode(ByteBuffer(string: line)) else {
        Issue.record("\(escaped) decoded")
        continue
      }
      #expect(failure.error.code == .badFrame && failure.replyTo == "a14b", "\(failure)")
      #expect(failure.error.message.contains("lone surrogate"), "\(failure.error.message)")
    }
  }

  /// Found by a tester: a line led by a byte-order mark was said to have a value of the
  /// wrong type; the mark is named, and the id still echoed.
  @Test func aByteOrderMarkIsNamed() {
    guard case .failure(let failure) = WireCodec.decode(ByteBuffer(string: "\u{FEFF}{\"id\":\"bom\",\"ping\":{}}"))
    else {
      Issue.record("a line led by a byte-order mark decoded")
      return
    }
    #expect(failure.error.code == .badFrame && failure.replyTo == "bom", "\(failure)")
    #expect(failure.error.message.contains("byte-order mark"), "\(failure.error.message)")
  }

  @Test func aTagCharacterIsCaughtByTheNameCheck() {
    let name = Self.name(#"cf\udb40\udc20"#) ?? ""
    #expect(DisplayText.firstUnsafe(name) == "U+E0020")
  }
}
