import NIOCore

#if canImport(Glibc)
  import Glibc
#endif

/// JSON writes a character past U+FFFF as an escaped surrogate pair (`\ud83d\ude00`), as
/// Python's `json` does by default. SwiftProtobuf 1.x composes a pair with `0x10000 | high
/// << 10 | low`, which is right only below U+20000: U+E0020 came out as U+D0020 and U+20000
/// as U+10000, so a name could pass the check for invisible characters as an unassigned
/// one, and text above U+1FFFF was changed. A line with such a pair has it replaced by the
/// character's own UTF-8 bytes before it is decoded (lines without a backslash are left as
/// they are, at the cost of one scan).
enum SurrogatePairs {
  /// `line` with every escaped surrogate pair written as UTF-8, or nil when it has none.
  static func decoded(_ line: ByteBuffer) -> ByteBuffer? {
    line.withUnsafeReadableBytes { bytes -> ByteBuffer? in
      // memchr: every line goes through here, and most have no backslash at all.
      guard let base = bytes.baseAddress, memchr(base, Int32(UInt8(ascii: "\\")), bytes.count) != nil else {
        return nil
      }
      var out: [UInt8] = []
      var copied = 0
      var index = 0
      let count = bytes.count
      while index < count {
        guard bytes[index] == UInt8(ascii: "\\") else {
          index += 1
          continue
        }
        // `\uD8xx\uDCxx`: a high surrogate escape followed by a low one.
        if index + 12 <= count, bytes[index + 1] == UInt8(ascii: "u"),
          let high = hex4(bytes, index + 2), (0xD800...0xDBFF).contains(high),
          bytes[index + 6] == UInt8(ascii: "\\"), bytes[index + 7] == UInt8(ascii: "u"),
          let low = hex4(bytes, index + 8), (0xDC00...0xDFFF).contains(low),
          let scalar = Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
        {
          if out.isEmpty { out.reserveCapacity(count) }
          out.append(contentsOf: bytes[copied..<index])
          out.append(contentsOf: String(Character(scalar)).utf8)
          index += 12
          copied = index
          continue
        }
        // Any other escape (`\\` included) is two bytes or more: skip the escaped one.
        index += 2
      }
      guard copied > 0 else { return nil }
      out.append(contentsOf: bytes[copied..<count])
      return ByteBuffer(bytes: out)
    }
  }

  private static func hex4(_ bytes: UnsafeRawBufferPointer, _ start: Int) -> UInt32? {
    var value: UInt32 = 0
    for offset in 0..<4 {
      let byte = bytes[start + offset]
      let digit: UInt8
      switch byte {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
      case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
      case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
      default: return nil
      }
      value = value << 4 | UInt32(digit)
    }
    return value
  }
}
