import Foundation
import HaatRecords

/// Where an order came from, read from what the order itself carries: its landing site's
/// UTM tags, else a platform's click id in the landing site, else its referring site,
/// else direct (docs/reports.md "Channels").
public enum Channels {
  /// How an order's channel was read.
  public enum Evidence: Sendable {
    case utm, clickID, referrer, none
  }

  public static func classify(_ order: OrderRecord) -> (channel: String, evidence: Evidence) {
    var site = order.landingSite
    switch site.withUTF8(utmChannel(in:)) {
    case .channel(let channel): return (channel, .utm)
    case .untagged: break
    case .unsure:
      let tags = order.utmSourceAndMedium
      if let channel = utm(source: tags.source, medium: tags.medium) { return (channel, .utm) }
    }
    if let channel = clickID(in: order.landingSite) { return (channel, .clickID) }
    if let channel = referrer(order.referringSite) { return (channel, .referrer) }
    return ("direct", .none)
  }

  /// Without leading and trailing spaces and tabs, and nothing else (docs/reports.md): a
  /// no-break or zero-width space is part of the value, as formats.md trims text values.
  static func trimmed(_ text: String) -> String {
    func blank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }
    let bytes = text.utf8
    guard let first = bytes.first, let last = bytes.last, blank(first) || blank(last) else { return text }
    guard let start = bytes.firstIndex(where: { !blank($0) }), let end = bytes.lastIndex(where: { !blank($0) }) else {
      return ""
    }
    return String(text[start...end])
  }

  /// `text.lowercased()`, with no new String for plain ASCII that has no capital (most
  /// values are written in lower case already, and this runs per order and per post).
  static func lowercased(_ text: String) -> String { mayChange(text, 0x41...0x5A) ? text.lowercased() : text }

  /// `text.uppercased()`, with no new String for plain ASCII that has no small letter
  /// (currency codes, per order).
  static func uppercased(_ text: String) -> String { mayChange(text, 0x61...0x7A) ? text.uppercased() : text }

  /// Whether `text` has a byte of `letters` or one outside ASCII (whose case may change).
  private static func mayChange(_ text: String, _ letters: ClosedRange<UInt8>) -> Bool {
    var bytes = text
    return bytes.withUTF8 { $0.contains { $0 >= 0x80 || letters.contains($0) } }
  }

  /// A channel from `utm_source` and `utm_medium` (already percent-decoded), in any case.
  /// (`utmChannel(in:)` answers the same on the bytes of plain tags.)
  static func utm(source rawSource: String, medium rawMedium: String) -> String? {
    let source = lowercased(trimmed(rawSource))
    let medium = lowercased(trimmed(rawMedium))
    guard !source.isEmpty || !medium.isEmpty else { return nil }
    if let channel = sourceChannels[source] { return channel }
    if let paid = paidChannels[source] { return paidMedia.contains(medium) ? paid : "search" }
    if medium == "email" || medium == "newsletter" { return "email" }
    if medium == "sms" { return "sms" }
    return socialMedia.contains(medium) ? "other_social" : "other"
  }

  /// What a landing site's UTM tags say, read on its bytes.
  enum TagRead {
    case channel(String)
    /// Neither tag, or both empty.
    case untagged
    /// A value to decode (`%`, `+`), to trim or outside ASCII: the Strings' path decides.
    case unsure
  }

  /// The channel of a landing site's utm_source and utm_medium where both are plain ASCII
  /// with nothing to decode or trim, matched on their bytes in any ASCII case: what `utm`
  /// answers for them, without a String made, trimmed, lowercased and hashed per tag.
  static func utmChannel(in site: UnsafeBufferPointer<UInt8>) -> TagRead {
    let found = OrderRecord.utmValues(site, campaign: false)
    let source = UnsafeBufferPointer(rebasing: site[found.source ?? 0..<0])
    let medium = UnsafeBufferPointer(rebasing: site[found.medium ?? 0..<0])
    guard plain(source), plain(medium) else { return .unsure }
    if source.isEmpty, medium.isEmpty { return .untagged }
    if let channel = sourceKeys[source] { return .channel(channel) }
    if let paid = paidKeys[source] { return .channel(paidMediumKeys[medium] != nil ? paid : "search") }
    if let channel = mediumKeys[medium] { return .channel(channel) }
    return .channel(socialMediumKeys[medium] != nil ? "other_social" : "other")
  }

  /// A tag's value as written reads the same decoded, trimmed and in any ASCII case: ASCII
  /// with no `%` or `+`, and no space at either end.
  private static func plain(_ value: UnsafeBufferPointer<UInt8>) -> Bool {
    guard let first = value.first, let last = value.last else { return true }
    func edge(_ byte: UInt8) -> Bool { byte < 0x80 && byte != 0x20 && !(0x09...0x0D).contains(byte) }
    return edge(first) && edge(last)
      && !value.contains { $0 >= 0x80 || $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }
  }

  /// The tables below, looked up by bytes.
  private static let sourceKeys = ByteKeys(sourceChannels.map { ($0.key, $0.value) })
  private static let paidKeys = ByteKeys(paidChannels.map { ($0.key, $0.value) })
  private static let paidMediumKeys = ByteKeys(paidMedia.map { ($0, $0) })
  private static let socialMediumKeys = ByteKeys(socialMedia.map { ($0, $0) })
  private static let mediumKeys = ByteKeys([("email", "email"), ("newsletter", "email"), ("sms", "sms")])

  /// `utm_source` → channel (docs/reports.md "Channels"): one lookup per order, where a
  /// `switch` compared the source with each name in turn.
  private static let sourceChannels: [String: String] = {
    var channels: [String: String] = [:]
    for (channel, sources) in [
      ("facebook", ["facebook", "fb", "meta", "facebook.com", "m.facebook.com", "l.facebook.com"]),
      ("instagram", ["instagram", "ig", "instagram.com", "l.instagram.com"]),
      ("tiktok", ["tiktok", "tiktok.com"]),
      ("pinterest", ["pinterest", "pinterest.com", "pin"]),
      ("linkedin", ["linkedin", "linkedin.com", "lnkd.in"]),
      ("youtube", ["youtube", "yt", "youtube.com"]),
      ("x", ["twitter", "x", "t.co", "twitter.com", "x.com"]),
      ("search", ["duckduckgo", "yahoo", "yandex", "baidu", "ecosia"]),
      ("email", ["email", "newsletter", "klaviyo", "mailchimp", "omnisend", "brevo"]),
      ("sms", ["sms"]), ("whatsapp", ["whatsapp"]),
    ] {
      for source in sources { channels[source] = channel }
    }
    return channels
  }()

  /// Sources whose ads and search results share a name: their channel with a paid medium.
  private static let paidChannels = [
    "google": "google_ads", "google.com": "google_ads", "bing": "microsoft_ads", "bing.com": "microsoft_ads",
  ]
  private static let paidMedia: Set = ["cpc", "ppc", "paid", "paidsearch", "paid_search", "paid-search", "sem", "cpm"]
  /// Mediums of a social post for a source the table does not name (made once, not per order).
  private static let socialMedia: Set = ["social", "social-media", "social_media", "paid_social", "paid-social"]

  /// A channel from a click id in the landing site's query (`fbclid`, `gclid`, …).
  /// Read on the UTF-8 bytes (the delimiters are ASCII), names matched folding ASCII case.
  static func clickID(in landingSite: String) -> String? {
    var site = landingSite
    return site.withUTF8 { bytes -> String? in
      // The query ends where a fragment starts; a `?` inside the fragment begins none.
      let end = bytes.firstIndex(of: UInt8(ascii: "#")) ?? bytes.endIndex
      guard let question = bytes[..<end].firstIndex(of: UInt8(ascii: "?")) else { return nil }
      var start = question + 1
      while start < end {
        let stop = bytes[start..<end].firstIndex(of: UInt8(ascii: "&")) ?? end
        // A parameter's name ends at its first `=`.
        let name = bytes[start..<(bytes[start..<stop].firstIndex(of: UInt8(ascii: "=")) ?? stop)]
        if let channel = clickChannel(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: name))) {
          return channel
        }
        start = stop + 1
      }
      return nil
    }
  }

  /// The channel a click id's parameter name stands for (any ASCII case), on its bytes: a
  /// landing site's every parameter is one, per order.
  static func clickChannel(_ name: UnsafeRawBufferPointer) -> String? {
    for (id, channel) in clickIDs where id.count == name.count {
      if zip(name, id).allSatisfy({ ($0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0) == $1 }) { return channel }
    }
    return nil
  }

  private static let clickIDs: [(name: [UInt8], channel: String)] = [
    ("fbclid", "facebook"), ("gclid", "google_ads"), ("gbraid", "google_ads"), ("wbraid", "google_ads"),
    ("dclid", "google_ads"), ("msclkid", "microsoft_ads"), ("ttclid", "tiktok"), ("epik", "pinterest"),
    ("li_fat_id", "linkedin"), ("twclid", "x"),
  ].map { (Array($0.utf8), $1) }

  /// Where the host of a URL, or of a bare `host/path`, lies in its bytes: after a scheme's
  /// `://` (or a leading `//`) and any `user@`, up to the first `/`, `?`, `#` or `:`. Read by
  /// hand: a Foundation URL per order costs more than the rest of the order together.
  static func hostBounds(_ bytes: UnsafeBufferPointer<UInt8>) -> Range<Int> {
    // On the UTF-8 bytes: every delimiter is ASCII, and a byte costs no Character.
    var start = 0
    if let colon = bytes.firstIndex(of: UInt8(ascii: ":")), colon + 2 < bytes.count,
      bytes[colon + 1] == UInt8(ascii: "/"), bytes[colon + 2] == UInt8(ascii: "/"),
      bytes[..<colon].allSatisfy({ byte in
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39)
          || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
      })
    {
      start = colon + 3
    } else if bytes.count >= 2, bytes[0] == UInt8(ascii: "/"), bytes[1] == UInt8(ascii: "/") {
      start = 2
    }
    // The authority runs to the first `/`, `?` or `#`; a user (and password: its `:` is
    // not a port's) ends at its last `@`; the port starts at the host's first `:`.
    var end = start
    scan: while end < bytes.count {
      switch bytes[end] {
      case UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: "#"): break scan
      default: end += 1
      }
    }
    if let at = bytes[start..<end].lastIndex(of: UInt8(ascii: "@")) { start = at + 1 }
    return start..<(bytes[start..<end].firstIndex(of: UInt8(ascii: ":")) ?? end)
  }

  /// A channel from the referring site's host; nil when there is none. The host is matched
  /// on its bytes, lower-cased (ASCII: every known domain is) into a buffer on the stack.
  static func referrer(_ site: String) -> String? {
    var text = trimmed(site)
    guard !text.isEmpty else { return nil }
    return text.withUTF8 { bytes in
      let bounds = hostBounds(bytes)
      return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(bounds.count, 1)) { lowered in
        for (offset, byte) in bytes[bounds].enumerated() {
          lowered[offset] = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
        }
        var host = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(lowered)[..<bounds.count])
        for prefix in strippedPrefixes where host.starts(with: prefix) {
          host = UnsafeRawBufferPointer(rebasing: host[prefix.count...])
        }
        for (domains, prefixes, channel) in referrers
        where domains.contains(where: { ends(host, with: $0) }) || prefixes.contains(where: { host.starts(with: $0) }) {
          return channel
        }
        return "referral"
      }
    }
  }

  /// Taken off a host's front, in this order, each when there: `www.m.facebook.com` is
  /// facebook.com.
  private static let strippedPrefixes = ["www.", "m.", "l.", "lm.", "mobile."].map { Array($0.utf8) }

  /// Referring hosts by channel, first match wins: a host is one of the domains or under one
  /// (`x.facebook.com`), or begins with one of the prefixes (`google.` of every country).
  /// As bytes, made once: each order with a referrer is checked against them all.
  private static let referrers: [(domains: [[UInt8]], prefixes: [[UInt8]], channel: String)] = [
    (["facebook.com", "fb.com", "fb.me", "messenger.com"], [], "facebook"),
    (["instagram.com"], [], "instagram"),
    (["tiktok.com"], [], "tiktok"),
    (["pinterest.com", "pin.it"], ["pinterest."], "pinterest"),
    (["linkedin.com", "lnkd.in"], [], "linkedin"),
    (["youtube.com", "youtu.be"], [], "youtube"),
    (["twitter.com", "x.com", "t.co"], [], "x"),
    (["mail.google.com", "outlook.live.com", "mail.yahoo.com"], ["com.google.android.gm"], "email"),
    (
      ["bing.com", "duckduckgo.com", "search.yahoo.com", "ecosia.org", "baidu.com"], ["google.", "yandex."],
      "search"
    ),
  ].map { domains, prefixes, channel in (domains.map { Array($0.utf8) }, prefixes.map { Array($0.utf8) }, channel) }

  /// Whether `host` is `domain` or ends in `.domain`.
  private static func ends(_ host: UnsafeRawBufferPointer, with domain: [UInt8]) -> Bool {
    guard host.count >= domain.count, host.suffix(domain.count).elementsEqual(domain) else { return false }
    return host.count == domain.count || host[host.count - domain.count - 1] == UInt8(ascii: ".")
  }
}

/// Lower-case ASCII keys found by bytes in any ASCII case: no String made per lookup.
struct ByteKeys: Sendable {
  /// The keys by their length.
  private let byLength: [[(key: [UInt8], value: String)]]

  init(_ pairs: [(String, String)]) {
    var byLength = [[(key: [UInt8], value: String)]](
      repeating: [], count: (pairs.map { $0.0.utf8.count }.max() ?? 0) + 1)
    for (key, value) in pairs { byLength[key.utf8.count].append((Array(key.utf8), value)) }
    self.byLength = byLength
  }

  subscript(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
    guard bytes.count < byLength.count else { return nil }
    for entry in byLength[bytes.count]
    where zip(bytes, entry.key).allSatisfy({ ($0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0) == $1 }) {
      return entry.value
    }
    return nil
  }
}
