/// The UTM tags of an order's landing site (docs/formats.md "Orders").
extension OrderRecord {
  /// utm_source, utm_medium and utm_campaign from a landing site's query, percent-decoded;
  /// names matched in any case.
  static func utm(_ landingSite: String) -> (String, String, String) {
    var site = landingSite
    return site.withUTF8 { all -> (String, String, String) in
      // The query runs from the first `?` to a fragment's `#`; a `?` after the `#` begins none.
      let bytes = UnsafeBufferPointer(rebasing: all[..<(all.firstIndex(of: UInt8(ascii: "#")) ?? all.endIndex)])
      guard let question = bytes.firstIndex(of: UInt8(ascii: "?")) else { return ("", "", "") }
      // Byte by byte, in place, with no String per pair: a store's export has a landing site
      // per order.
      var found: (String?, String?, String?) = (nil, nil, nil)
      var start = question + 1
      while start <= bytes.count {
        let end = bytes[start...].firstIndex(of: UInt8(ascii: "&")) ?? bytes.count
        let equals = bytes[start..<end].firstIndex(of: UInt8(ascii: "="))
        let name = bytes[start..<(equals ?? end)]
        let value = { equals.map { decoded(UnsafeBufferPointer(rebasing: bytes[($0 + 1)..<end])) } ?? "" }
        if lowercasedEqual(name, utmNames[0]) {
          if found.0 == nil { found.0 = value() }
        } else if lowercasedEqual(name, utmNames[1]) {
          if found.1 == nil { found.1 = value() }
        } else if lowercasedEqual(name, utmNames[2]) {
          if found.2 == nil { found.2 = value() }
        }
        start = end + 1
      }
      return (found.0 ?? "", found.1 ?? "", found.2 ?? "")
    }
  }

  /// The tags' names as bytes, made once rather than per order.
  private static let utmNames = ["utm_source", "utm_medium", "utm_campaign"].map { Array($0.utf8) }

  private static func lowercasedEqual(_ bytes: Slice<UnsafeBufferPointer<UInt8>>, _ lower: [UInt8]) -> Bool {
    guard bytes.count == lower.count else { return false }
    return zip(bytes, lower).allSatisfy { ($0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0) == $1 }
  }

  /// A query value: `+` is a space and `%XX` a byte; a value with a malformed escape, or
  /// whose bytes are not UTF-8, is kept as written (its `+` still spaces).
  private static func decoded(_ value: UnsafeBufferPointer<UInt8>) -> String {
    // Most values have neither: no copy.
    guard value.contains(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "%") }) else {
      return String(decoding: value, as: UTF8.self)
    }
    let plain = value.map { $0 == UInt8(ascii: "+") ? UInt8(ascii: " ") : $0 }
    guard plain.contains(UInt8(ascii: "%")) else { return String(decoding: plain, as: UTF8.self) }
    func hex(_ byte: UInt8) -> UInt8? {
      switch byte {
      case 0x30...0x39: return byte - 0x30
      case 0x41...0x46: return byte - 0x41 + 10
      case 0x61...0x66: return byte - 0x61 + 10
      default: return nil
      }
    }
    var out: [UInt8] = []
    out.reserveCapacity(plain.count)
    var index = 0
    while index < plain.count {
      if plain[index] == UInt8(ascii: "%") {
        guard index + 2 < plain.count, let high = hex(plain[index + 1]), let low = hex(plain[index + 2]) else {
          return String(decoding: plain, as: UTF8.self)
        }
        out.append(high << 4 | low)
        index += 3
      } else {
        out.append(plain[index])
        index += 1
      }
    }
    return String(validating: out, as: UTF8.self) ?? String(decoding: plain, as: UTF8.self)
  }
}
