/// Reads the packed forms of analytics.proto (`QuantileSketch.packed`, `BestTimeGroup.cells`)
/// on their bytes in place: unsigned LEB128 varints (7 bits a byte, low bits first, the high
/// bit set on every byte but the last, at most 10 bytes) and runs of bytes.
struct PackedReader {
  private let bytes: UnsafeRawBufferPointer
  private var offset = 0

  init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

  var isAtEnd: Bool { offset >= bytes.count }

  /// The next varint; nil when the bytes end inside one or it runs past 10 bytes.
  mutating func varint() -> UInt64? {
    var value: UInt64 = 0
    var shift: UInt64 = 0
    while shift < 70, offset < bytes.count {
      let byte = bytes[offset]
      offset += 1
      value |= UInt64(byte & 0x7F) << shift
      if byte < 0x80 { return value }
      shift += 7
    }
    return nil
  }

  /// The next `count` bytes; nil when fewer are left.
  mutating func bytes(_ count: UInt64) -> UnsafeRawBufferPointer? {
    guard count <= UInt64(bytes.count - offset) else { return nil }
    let run = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + Int(count))])
    offset += Int(count)
    return run
  }
}

/// Writes varints, as `PackedReader` reads them.
enum PackedWriter {
  /// Writes `value` at `at`, which moves past it; room for 10 bytes is the caller's.
  @inline(__always)
  static func varint(_ value: UInt64, into bytes: UnsafeMutableBufferPointer<UInt8>, at: inout Int) {
    var value = value
    while value >= 0x80 {
      bytes[at] = UInt8(truncatingIfNeeded: value) | 0x80
      at += 1
      value >>= 7
    }
    bytes[at] = UInt8(value)
    at += 1
  }

  /// Appends `value`.
  @inline(__always)
  static func append(_ value: UInt64, to bytes: inout [UInt8]) {
    var value = value
    while value >= 0x80 {
      bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
      value >>= 7
    }
    bytes.append(UInt8(value))
  }
}
