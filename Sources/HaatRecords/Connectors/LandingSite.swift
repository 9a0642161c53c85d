import HaatCore

/// The UTM tags of an order's landing site (docs/formats.md "Orders").
extension OrderRecord {
  /// utm_source, utm_medium and utm_campaign from a landing site's query, percent-decoded;
  /// names matched in any case.
  static func utm(_ landingSite: String, campaign: Bool = true) -> (String, String, String) {
    var site = landingSite
    return site.withUTF8 { bytes -> (String, String, String) in
      let found = utmValues(bytes, campaign: campaign)
      func value(_ range: Range<Int>?) -> String {
        range.map { decoded(UnsafeBufferPointer(rebasing: bytes[$0])) } ?? ""
      }
      return (value(found.source), value(found.medium), value(found.campaign))
    }
  }

  /// Where the first utm_source, utm_medium and (with `campaign`) utm_campaign values lie in
  /// a landing site's bytes, as written (not decoded); a tag with no `=` has an empty value.
  /// One pass, byte by byte, with no String per pair: a store's export has a landing site
  /// per order. The query runs from the first `?` to a fragment's `#`; a `?` after the `#`
  /// begins none.
  public static func utmValues(
    _ bytes: UnsafeBufferPointer<UInt8>, campaign: Bool = true
  ) -> (source: Range<Int>?, medium: Range<Int>?, campaign: Range<Int>?) {
    var found: (source: Range<Int>?, medium: Range<Int>?, campaign: Range<Int>?) = (nil, nil, nil)
    let count = bytes.count
    var index = 0
    while index < count, bytes[index] != UInt8(ascii: "?"), bytes[index] != UInt8(ascii: "#") { index += 1 }
    guard index < count, bytes[index] == UInt8(ascii: "?") else { return found }
    var start = index + 1
    while true {
      // One `name=value` pair: up to `&`, `#` or the end; the name ends at its first `=`.
      var end = start
      var equals = -1
      while end < count {
        let byte = bytes[end]
        if byte == UInt8(ascii: "&") || byte == UInt8(ascii: "#") { break }
        if byte == UInt8(ascii: "="), equals < 0 { equals = end }
        end += 1
      }
      let name = UnsafeBufferPointer(rebasing: bytes[start..<(equals < 0 ? end : equals)])
      // Only a name as long as a tag, starting with `u`, is compared at all.
      if name.count >= 10, name[0] | 0x20 == UInt8(ascii: "u") {
        let value = equals < 0 ? end..<end : (equals + 1)..<end
        if found.source == nil, lowercasedEqual(name, utmNames[0]) {
          found.source = value
        } else if found.medium == nil, lowercasedEqual(name, utmNames[1]) {
          found.medium = value
        } else if campaign, found.campaign == nil, lowercasedEqual(name, utmNames[2]) {
          found.campaign = value
        }
      }
      if end >= count || bytes[end] == UInt8(ascii: "#") { break }
      start = end + 1
    }
    return found
  }

  /// The tags' names as bytes, made once rather than per order.
  private static let utmNames = ["utm_source", "utm_medium", "utm_campaign"].map { Array($0.utf8) }

  private static func lowercasedEqual(_ bytes: UnsafeBufferPointer<UInt8>, _ lower: [UInt8]) -> Bool {
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
    var out: [UInt8] = []
    out.reserveCapacity(plain.count)
    var index = 0
    while index < plain.count {
      if plain[index] == UInt8(ascii: "%") {
        guard index + 2 < plain.count, let high = Hex.value(plain[index + 1]), let low = Hex.value(plain[index + 2])
        else {
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
