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

  static func write(_ data: Data, into buffer: inout ByteBuffer) {
    var out = [UInt8]()
    out.reserveCapacity((data.count + 2) / 3 * 4)
    data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
      var index = 0
      while index + 3 <= bytes.count {
        let group = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
        out.append(digits[Int(group >> 18 & 63)])
        out.append(digits[Int(group >> 12 & 63)])
        out.append(digits[Int(group >> 6 & 63)])
        out.append(digits[Int(group & 63)])
        index += 3
      }
      let rest = bytes.count - index
      if rest > 0 {
        let group = UInt32(bytes[index]) << 16 | (rest == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
        out.append(digits[Int(group >> 18 & 63)])
        out.append(digits[Int(group >> 12 & 63)])
        out.append(rest == 2 ? digits[Int(group >> 6 & 63)] : UInt8(ascii: "="))
        out.append(UInt8(ascii: "="))
      }
    }
    buffer.writeBytes(out)
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
