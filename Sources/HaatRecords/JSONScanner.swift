import HaatCore

/// A value of a flat JSON object as the posts connector needs it.
public enum JSONScalar: Equatable, Sendable {
  case string(String)
  /// An integer that fits in 64 bits: its sign and magnitude.
  case integer(negative: Bool, magnitude: UInt64)
  /// An integer past 2^64 − 1 in magnitude, as written (its sign included): an id or an
  /// amount keeps its digits, and a count is `out of range`.
  case largeInteger(text: String)
  /// A number with a fraction or an exponent, as written (a Double would round an amount
  /// past 15 significant digits).
  case nonInteger(text: String)
  case bool(Bool)
  case null
  /// An array or an object (validated, not kept).
  case composite
}

/// A strict JSON reader for one NDJSON line that is expected to hold an object.
/// It follows RFC 8259 (no NaN, no leading zeros, no control characters in strings) and
/// hands each member of the top-level object to a callback, so no dictionary is built.
public struct JSONScanner {
  public enum Failure: Error, Equatable {
    /// The line is not JSON.
    case invalid
    /// The line is JSON, but not an object.
    case notAnObject
  }

  private let bytes: UnsafeRawBufferPointer
  private var index = 0
  private static let maxDepth = 64

  /// Reads `line` and calls `member(key, value)` for each member of its top-level object.
  public static func scanObject(
    _ line: UnsafeRawBufferPointer, member: (String, JSONScalar) -> Void
  ) -> Failure? {
    var scanner = JSONScanner(bytes: line)
    scanner.skipWhitespace()
    guard scanner.index < line.count else { return .invalid }
    if line[scanner.index] != UInt8(ascii: "{") {
      // Valid JSON that is not an object is a different problem from garbage.
      guard (try? scanner.value(depth: 0)) != nil else { return .invalid }
      scanner.skipWhitespace()
      return scanner.index == line.count ? .notAnObject : .invalid
    }
    do {
      scanner.index += 1
      scanner.skipWhitespace()
      if scanner.peek() == UInt8(ascii: "}") {
        scanner.index += 1
      } else {
        while true {
          scanner.skipWhitespace()
          guard scanner.peek() == UInt8(ascii: "\"") else { return .invalid }
          let key = try scanner.string()
          scanner.skipWhitespace()
          guard scanner.peek() == UInt8(ascii: ":") else { return .invalid }
          scanner.index += 1
          scanner.skipWhitespace()
          member(key, try scanner.value(depth: 1))
          scanner.skipWhitespace()
          guard let next = scanner.peek() else { return .invalid }
          scanner.index += 1
          if next == UInt8(ascii: "}") { break }
          guard next == UInt8(ascii: ",") else { return .invalid }
        }
      }
      scanner.skipWhitespace()
      return scanner.index == line.count ? nil : .invalid
    } catch {
      return .invalid
    }
  }

  private init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

  @inline(__always)
  private func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

  @inline(__always)
  private mutating func skipWhitespace() {
    while index < bytes.count {
      switch bytes[index] {
      case 0x20, 0x09, 0x0A, 0x0D: index += 1
      default: return
      }
    }
  }

  private mutating func value(depth: Int) throws(Failure) -> JSONScalar {
    guard depth <= Self.maxDepth, let byte = peek() else { throw .invalid }
    switch byte {
    case UInt8(ascii: "\""): return .string(try string())
    case UInt8(ascii: "{"):
      index += 1
      skipWhitespace()
      if peek() == UInt8(ascii: "}") {
        index += 1
        return .composite
      }
      while true {
        skipWhitespace()
        guard peek() == UInt8(ascii: "\"") else { throw .invalid }
        _ = try string()
        skipWhitespace()
        guard peek() == UInt8(ascii: ":") else { throw .invalid }
        index += 1
        skipWhitespace()
        _ = try value(depth: depth + 1)
        skipWhitespace()
        guard let next = peek() else { throw .invalid }
        index += 1
        if next == UInt8(ascii: "}") { return .composite }
        guard next == UInt8(ascii: ",") else { throw .invalid }
      }
    case UInt8(ascii: "["):
      index += 1
      skipWhitespace()
      if peek() == UInt8(ascii: "]") {
        index += 1
        return .composite
      }
      while true {
        skipWhitespace()
        _ = try value(depth: depth + 1)
        skipWhitespace()
        guard let next = peek() else { throw .invalid }
        index += 1
        if next == UInt8(ascii: "]") { return .composite }
        guard next == UInt8(ascii: ",") else { throw .invalid }
      }
    case UInt8(ascii: "t"): try literal("true"); return .bool(true)
    case UInt8(ascii: "f"): try literal("false"); return .bool(false)
    case UInt8(ascii: "n"): try literal("null"); return .null
    default: return try number()
    }
  }

  private mutating func literal(_ word: StaticString) throws(Failure) {
    let length = word.utf8CodeUnitCount
    guard index + length <= bytes.count else { throw .invalid }
    for offset in 0..<length where bytes[index + offset] != word.utf8Start[offset] {
      throw .invalid
    }
    index += length
  }

  private mutating func number() throws(Failure) -> JSONScalar {
    let start = index
    var negative = false
    if peek() == UInt8(ascii: "-") {
      negative = true
      index += 1
    }
    guard let first = peek(), isDigit(first) else { throw .invalid }
    var magnitude: UInt64? = 0
    if first == UInt8(ascii: "0") {
      index += 1
      if let next = peek(), isDigit(next) { throw .invalid }  // no leading zeros
    } else {
      while let digit = peek(), isDigit(digit) {
        if let current = magnitude {
          let (times, o1) = current.multipliedReportingOverflow(by: 10)
          let (plus, o2) = times.addingReportingOverflow(UInt64(digit - UInt8(ascii: "0")))
          magnitude = (o1 || o2) ? nil : plus
        }
        index += 1
      }
    }
    var integral = true
    if peek() == UInt8(ascii: ".") {
      index += 1
      guard let digit = peek(), isDigit(digit) else { throw .invalid }
      while let digit = peek(), isDigit(digit) { index += 1 }
      integral = false
    }
    if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
      index += 1
      if let sign = peek(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { index += 1 }
      guard let digit = peek(), isDigit(digit) else { throw .invalid }
      while let digit = peek(), isDigit(digit) { index += 1 }
      integral = false
    }
    if integral, let magnitude { return .integer(negative: negative, magnitude: magnitude) }
    let text = Values.string(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
    return integral ? .largeInteger(text: text) : .nonInteger(text: text)
  }

  @inline(__always)
  private func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

  private mutating func string() throws(Failure) -> String {
    index += 1  // the opening quote
    let start = index
    // Fast path: no escapes.
    while index < bytes.count {
      let byte = bytes[index]
      if byte == UInt8(ascii: "\"") {
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        index += 1
        return text
      }
      if byte == UInt8(ascii: "\\") { break }
      if byte < 0x20 { throw .invalid }
      index += 1
    }
    var scalars: [UInt8] = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
    while index < bytes.count {
      let byte = bytes[index]
      index += 1
      switch byte {
      case UInt8(ascii: "\""):
        return String(decoding: scalars, as: UTF8.self)
      case UInt8(ascii: "\\"):
        guard let escape = peek() else { throw .invalid }
        index += 1
        switch escape {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scalars.append(escape)
        case UInt8(ascii: "b"): scalars.append(0x08)
        case UInt8(ascii: "f"): scalars.append(0x0C)
        case UInt8(ascii: "n"): scalars.append(0x0A)
        case UInt8(ascii: "r"): scalars.append(0x0D)
        case UInt8(ascii: "t"): scalars.append(0x09)
        case UInt8(ascii: "u"):
          var code = try hex4()
          if (0xD800...0xDBFF).contains(code), index + 1 < bytes.count,
            bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
          {
            let save = index
            index += 2
            let low = try hex4()
            if (0xDC00...0xDFFF).contains(low) {
              code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            } else {
              index = save
            }
          }
          let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
          scalars.append(contentsOf: Array(String(Character(scalar)).utf8))
        default:
          throw .invalid
        }
      default:
        if byte < 0x20 { throw .invalid }
        scalars.append(byte)
      }
    }
    throw .invalid
  }

  private mutating func hex4() throws(Failure) -> UInt32 {
    guard index + 4 <= bytes.count else { throw .invalid }
    var value: UInt32 = 0
    for _ in 0..<4 {
      let byte = bytes[index]
      guard let digit = Hex.value(byte) else { throw .invalid }
      value = value << 4 | UInt32(digit)
      index += 1
    }
    return value
  }
}
