import Foundation
import NIOCore

/// Standard base64 with padding, as protobuf's JSON writes bytes.
enum Base64 {
  private static let digits = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
  private static let values: [Int8] = {
    var table = [Int8](repeating: -1, count: 256)
    for (index, digit) in digits.enumerated() { table[Int(digit)] = Int8(index) }
    return table
  }()

  /// Foundation writes the same digits and padding protobuf does.
  static func write(_ data: Data, into buffer: inout ByteBuffer) {
    buffer.writeString(data.base64EncodedString())
  }

  /// The bytes of canonical base64 (a multiple of 4 digits, `=` only as padding, the bits
  /// the padding leaves over 0); nil for anything else.
  static func decode(_ text: UnsafeRawBufferPointer) -> Data? {
    guard text.count % 4 == 0 else { return nil }
    var padding = 0
    if text.count >= 4, text[text.count - 1] == UInt8(ascii: "=") {
      padding = text[text.count - 2] == UInt8(ascii: "=") ? 2 : 1
    }
    var out = [UInt8]()
    out.reserveCapacity(text.count / 4 * 3)
    var index = 0
    while index < text.count {
      var group: UInt32 = 0
      let last = index + 4 == text.count
      for offset in 0..<4 {
        let byte = text[index + offset]
        if last, offset >= 4 - padding {
          group <<= 6
          continue
        }
        let value = values[Int(byte)]
        guard value >= 0 else { return nil }
        group = group << 6 | UInt32(value)
      }
      out.append(UInt8(group >> 16 & 0xFF))
      if !last || padding < 2 { out.append(UInt8(group >> 8 & 0xFF)) }
      if !last || padding < 1 { out.append(UInt8(group & 0xFF)) }
      if last {
        // The bits under the padding must be 0, as protobuf writes them.
        if padding == 1, group & 0xFF != 0 { return nil }
        if padding == 2, group & 0xFFFF != 0 { return nil }
      }
      index += 4
    }
    return Data(out)
  }
}
