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
    guard let base = bytes.baseAddress else { return nil }
    let count = bytes.count
    var index = 0
    @inline(__always) func byte(_ at: Int) -> UInt8 { base.load(fromByteOffset: at, as: UInt8.self) }
    while index < count {
      if pending > 0 {
        // A scalar the last chunk left open, or one this chunk ends inside: a byte at a time.
        let next = byte(index)
        guard next >= low, next <= high else { return offset + UInt64(index) }
        pending -= 1
        low = 0x80
        high = 0xBF
        index += 1
        continue
      }
      let lead = byte(index)
      if lead < 0x80 {
        // Runs of ASCII, sixteen bytes at a time while no high bit is set, then eight.
        index &+= 1
        while index &+ 16 <= count,
          (base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            | base.loadUnaligned(fromByteOffset: index &+ 8, as: UInt64.self)) & Self.highBits == 0
        {
          index &+= 16
        }
        if index &+ 8 <= count, base.loadUnaligned(fromByteOffset: index, as: UInt64.self) & Self.highBits == 0 {
          index &+= 8
        }
        continue
      }
      let length: Int
      switch lead {
      case 0xC2...0xDF: length = 2; low = 0x80; high = 0xBF
      case 0xE0: length = 3; low = 0xA0; high = 0xBF
      case 0xE1...0xEC, 0xEE...0xEF: length = 3; low = 0x80; high = 0xBF
      case 0xED: length = 3; low = 0x80; high = 0x9F
      case 0xF0: length = 4; low = 0x90; high = 0xBF
      case 0xF1...0xF3: length = 4; low = 0x80; high = 0xBF
      case 0xF4: length = 4; low = 0x80; high = 0x8F
      default: return offset + UInt64(index)
      }
      guard index + length <= count else {
        // Cut by the chunk's end: the rest is checked as it arrives.
        pending = length - 1
        index += 1
        continue
      }
      // A whole scalar in the chunk (the text of most non-English exports): checked in
      // place, the first invalid byte reported as a byte at a time would.
      let second = byte(index + 1)
      guard second >= low, second <= high else { return offset + UInt64(index + 1) }
      var at = index + 2
      while at < index + length {
        guard byte(at) & 0xC0 == 0x80 else { return offset + UInt64(at) }
        at += 1
      }
      (low, high) = (0x80, 0xBF)
      index += length
    }
    offset += UInt64(count)
    return nil
  }

  /// Whether the input ended on a scalar boundary.
  public var isComplete: Bool { pending == 0 }
}
