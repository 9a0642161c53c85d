import Foundation
import HaatProtocol
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
