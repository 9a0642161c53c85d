/// Validates UTF-8 across arbitrary chunk boundaries (the Unicode "well-formed" table:
/// no overlongs, no surrogates, nothing past U+10FFFF).
public struct UTF8Validator: Sendable {
  /// Continuation bytes still expected for the current scalar.
  private var pending = 0
  /// The range the next continuation byte must fall in (narrower after E0, ED, F0, F4).
  private var low: UInt8 = 0x80
  private var high: UInt8 = 0xBF
  /// Bytes validated so far.
  public private(set) var offset: UInt64 = 0

  public init() {}

  private static let highBits: UInt64 = 0x8080_8080_8080_8080

  /// Feeds bytes; returns the offset of the first invalid byte, or nil if all is well.
  public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
    // The state lives in locals while the loop runs (kept in registers, not in `self`).
    var pending = self.pending
    var low = self.low
    var high = self.high
    defer { (self.pending, self.low, self.high) = (pending, low, high) }
    var index = 0
    let count = bytes.count
    while index < count {
      let byte = bytes[index]
      if pending == 0 {
        // Fast path: runs of ASCII, eight bytes at a time while no high bit is set.
        if byte < 0x80 {
          index += 1
          while index + 8 <= count, bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) & Self.highBits == 0 {
            index += 8
          }
          continue
        }
        switch byte {
        case 0xC2...0xDF: pending = 1; low = 0x80; high = 0xBF
        case 0xE0: pending = 2; low = 0xA0; high = 0xBF
        case 0xE1...0xEC, 0xEE...0xEF: pending = 2; low = 0x80; high = 0xBF
        case 0xED: pending = 2; low = 0x80; high = 0x9F
        case 0xF0: pending = 3; low = 0x90; high = 0xBF
        case 0xF1...0xF3: pending = 3; low = 0x80; high = 0xBF
        case 0xF4: pending = 3; low = 0x80; high = 0x8F
        default: return offset + UInt64(index)
        }
      } else {
        guard byte >= low, byte <= high else { return offset + UInt64(index) }
        pending -= 1
        low = 0x80
        high = 0xBF
      }
      index += 1
    }
    offset += UInt64(count)
    return nil
  }

  /// Whether the input ended on a scalar boundary.
  public var isComplete: Bool { pending == 0 }
}
