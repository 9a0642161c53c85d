import Foundation
import HaatCore
import HaatProtocol
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
    let tags = order.utmSourceAndMedium
    if let channel = utm(source: tags.source, medium: tags.medium) { return (channel, .utm) }
    if let channel = clickID(in: order.landingSite) { return (channel, .clickID) }
    if let channel = referrer(order.referringSite) { return (channel, .referrer) }
    return ("direct", .none)
  }

  /// Without leading and trailing spaces and tabs; Foundation only when the first or last
  /// byte could be white space (ASCII white space, or any non-ASCII byte): most values
  /// start and end with a plain letter, and looking at a byte costs no Character.
  static func trimmed(_ text: String) -> String {
    func plain(_ byte: UInt8?) -> Bool {
      guard let byte else { return true }
      return byte < 0x80 && byte != 0x20 && !(0x09...0x0D).contains(byte)
    }
    return plain(text.utf8.first) && plain(text.utf8.last) ? text : text.trimmingCharacters(in: .whitespaces)
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

/// The `attribution` report: orders, revenue, AOV and share of revenue by the channel that
/// brought each order (last touch: the order's own landing site and referrer), beside each
/// channel's link clicks from posts (conversion rate) and ad spend from ad insights (ROAS,
/// with the platform's claimed ROAS kept apart). Exact sums; money in each order's currency.
public struct AttributionKernel: Sendable, Equatable {
  struct OrderKey: Hashable, Comparable {
    var channel: String
    var currency: String

    static func < (lhs: OrderKey, rhs: OrderKey) -> Bool {
      if lhs.currency != rhs.currency { return lhs.currency.utf8.lexicographicallyPrecedes(rhs.currency.utf8) }
      return lhs.channel.utf8.lexicographicallyPrecedes(rhs.channel.utf8)
    }
  }

  struct Channel: Equatable {
    var linkClicks: UInt64 = 0
    var postsWithClicks: UInt64 = 0

    mutating func merge(_ other: Channel) -> Bool {
      var sum = EngagementKernel.Checked()
      linkClicks = sum.add(linkClicks, other.linkClicks)
      postsWithClicks = sum.add(postsWithClicks, other.postsWithClicks)
      return !sum.overflowed
    }
  }

  private var orders: [OrderKey: Orders] = [:]
  private var channels: [String: Channel] = [:]
  /// Where each account's clicks go, by the reader's account index: lowercasing and
  /// hashing the platform's name per post took a tenth of reading the posts.
  private var recentChannels = RecentChannels()

  /// A cache, not part of the aggregate: equal whatever it holds. A dictionary index stays
  /// valid until a key is added, so it is emptied then.
  struct RecentChannels: Sendable, Equatable {
    struct Entry: Sendable {
      var platform: String
      var index: Dictionary<String, Channel>.Index
    }
    /// Account indices past this are not cached (no array sized by a hostile index).
    static let limit = 4096
    var entries: [Entry?] = []

    static func == (lhs: Self, rhs: Self) -> Bool { true }
  }
  /// Ad spend by platform × account × day × campaign with the days read in full: the ads
  /// report's own aggregate, so a re-read lookback day replaces its spend (`overlay`).
  private var spend = AdsKernel()
  private var overflowed = false

  public init() {}

  /// The order's cell and how its channel was read.
  static func cell(_ order: OrderRecord) -> (OrderKey, Channels.Evidence) {
    let (channel, evidence) = Channels.classify(order)
    return (OrderKey(channel: channel, currency: Channels.uppercased(order.currency)), evidence)
  }

  mutating func add(_ order: OrderRecord) -> Bool {
    let (key, evidence) = Self.cell(order)
    // One hash per order: the cell found is changed where it lies.
    if let cell = orders.index(forKey: key) { return orders.values[cell].add(order, evidence) }
    // A refused order leaves no empty cell behind.
    var fresh = Orders()
    guard fresh.add(order, evidence) else { return false }
    orders[key] = fresh
    return true
  }

  /// Posts and ad insights feed other reports too: rather than refuse one (and so take it
  /// out of those), a sum past its range marks the kernel overflowed, which its partial
  /// carries and which fails the report.
  mutating func add(clicks: UInt64, platform: String) {
    let keys = channels.count
    if !channels[Channels.lowercased(platform), default: Channel()].merge(
      Channel(linkClicks: clicks, postsWithClicks: 1))
    {
      overflowed = true
    }
    if channels.count != keys { recentChannels = RecentChannels() }  // a new key moves the others
  }

}

extension AttributionKernel: ReportKernel {
  public static let name = "attribution"
  public static let summary =
    "per channel: orders, revenue, AOV and share by the order's last visit (UTM, click id, referrer), conversion rate from link clicks, ROAS from ad spend, the platforms' claimed ROAS apart"
  public static let records: Set<RecordType> = [.order, .post, .adInsight]
  /// Clicks and spend alone attribute nothing: a job gets it by default when it has orders.
  public static let defaultFor: Set<RecordType> = [.order]

  public mutating func add(_ record: CanonicalRecord) -> Bool {
    switch record {
    case .order(let order): return add(order)
    case .post(let post): return add(post: post)
    case .adInsight:
      if !spend.add(record) { overflowed = true }
      return true
    default: return true
    }
  }

  /// A post gives its clicks to its platform's channel; it is never refused.
  public mutating func add(post: PostRecord) -> Bool {
    guard let clicks = post.clicks else { return true }
    let slot = Int(post.accountIndex)
    if slot >= 0, slot < recentChannels.entries.count, let entry = recentChannels.entries[slot],
      entry.platform == post.platform
    {
      if !channels.values[entry.index].merge(Channel(linkClicks: clicks, postsWithClicks: 1)) { overflowed = true }
      return true
    }
    add(clicks: clicks, platform: post.platform)
    guard slot >= 0, slot < RecentChannels.limit,
      let index = channels.index(forKey: Channels.lowercased(post.platform))
    else { return true }
    if recentChannels.entries.count <= slot {
      recentChannels.entries += repeatElement(nil, count: slot + 1 - recentChannels.entries.count)
    }
    recentChannels.entries[slot] = RecentChannels.Entry(platform: post.platform, index: index)
    return true
  }

  public func accepts(post: PostRecord) -> Bool { true }

  /// Only an order can be refused (its channel's sums out of range); asked when another
  /// kernel reads orders too, so that the order is in both or neither.
  public func accepts(_ record: CanonicalRecord) -> Bool {
    guard case .order(let order) = record else { return true }
    let (key, evidence) = Self.cell(order)
    var next = orders[key] ?? Orders()
    return next.add(order, evidence)
  }

  public mutating func cover(_ coverage: DayCoverage) { spend.cover(coverage) }

  public mutating func overlay(_ newer: AttributionKernel) {
    // Orders and clicks are read once and add; spend re-read for a lookback replaces.
    var laid = spend
    laid.overlay(newer.spend)
    var rest = newer
    rest.spend = AdsKernel()
    merge(rest)
    spend = laid
  }

  public mutating func merge(_ other: AttributionKernel) {
    if other.overflowed { overflowed = true }
    recentChannels = RecentChannels()
    for (key, value) in other.orders where !orders[key, default: Orders()].merge(value) { overflowed = true }
    for (key, value) in other.channels where !channels[key, default: Channel()].merge(value) { overflowed = true }
    spend.merge(other.spend)
  }

  public func write(to partial: inout Partial) {
    var message = Haat_V1_AttributionPartial()
    message.orders = orders.keys.sorted().map { key in
      let value = orders[key] ?? Orders()
      var cell = Haat_V1_AttributionOrders()
      cell.channel = key.channel
      cell.currency = key.currency
      cell.orders = value.orders
      cell.revenue = Money.text(value.revenue)
      cell.byUtm = value.byUTM
      cell.byClickID = value.byClickID
      cell.byReferrer = value.byReferrer
      return cell
    }
    message.channels = channels.keys.sorted().map { key in
      let value = channels[key] ?? Channel()
      var cell = Haat_V1_AttributionChannel()
      cell.channel = key
      cell.linkClicks = value.linkClicks
      cell.postsWithClicks = value.postsWithClicks
      return cell
    }
    var spendPartial = Partial()
    spend.write(to: &spendPartial)
    if !spendPartial.ads.cells.isEmpty || !spendPartial.ads.coverage.isEmpty { message.spend = spendPartial.ads }
    message.overflowed = overflowed
    partial.attribution = message
  }

  public init?(reading partial: Partial) {
    guard partial.hasAttribution else { return nil }
    self.init()
    overflowed = partial.attribution.overflowed
    for cell in partial.attribution.orders {
      guard let revenue = Money.decimal(cell.revenue) else {
        overflowed = true
        continue
      }
      let value = Orders(
        orders: cell.orders, revenue: revenue, byUTM: cell.byUtm, byClickID: cell.byClickID,
        byReferrer: cell.byReferrer)
      if !orders[OrderKey(channel: cell.channel, currency: cell.currency), default: Orders()].merge(value) {
        overflowed = true
      }
    }
    for cell in partial.attribution.channels {
      let value = Channel(linkClicks: cell.linkClicks, postsWithClicks: cell.postsWithClicks)
      if !channels[cell.channel, default: Channel()].merge(value) { overflowed = true }
    }
    if partial.attribution.hasSpend, let read = AdsKernel(reading: Partial.with { $0.ads = partial.attribution.spend })
    {
      spend = read
    }
  }

  public func finish(into report: inout Report) throws(HaatError) {
    let overflow = HaatError(
      .overflow,
      "the attribution report's sums pass their range (counts 2^64 - 1, amounts 38 digits) or a partial's amount does not read"
    )
    guard !overflowed, let spendByPlatform = spend.spendByPlatform() else { throw overflow }
    var revenueByCurrency: [String: Decimal] = [:]
    var ordersByChannel: [String: UInt64] = [:]
    var currenciesByChannel: [String: Set<String>] = [:]
    var sum = EngagementKernel.Checked()
    for (key, value) in orders {
      guard let total = Money.exactSum(revenueByCurrency[key.currency, default: .zero], value.revenue) else {
        throw overflow
      }
      revenueByCurrency[key.currency] = total
      ordersByChannel[key.channel] = sum.add(ordersByChannel[key.channel] ?? 0, value.orders)
      currenciesByChannel[key.channel, default: []].insert(key.currency)
    }
    guard !sum.overflowed, !revenueByCurrency.values.contains(where: \.isNaN) else { throw overflow }
    var section = Haat_V1_AttributionReport()
    section.model = "last_touch"
    section.note =
      "orders carry only their last visit (landing site and referrer): first-touch and linear attribution need the customer's earlier visits, which these exports do not have"
    var rows: [Haat_V1_AttributionRow] = []
    var keys = Set(orders.keys)
    // A channel with clicks or spend and no order still gets a row (in no currency).
    for channel in Set(channels.keys).union(spendByPlatform.keys) where currenciesByChannel[channel] == nil {
      keys.insert(OrderKey(channel: channel, currency: ""))
    }
    for key in keys.sorted() {
      let value = orders[key] ?? Orders()
      let channel = channels[key.channel] ?? Channel()
      var row = Haat_V1_AttributionRow()
      row.channel = key.channel
      row.currency = key.currency
      row.orders = value.orders
      row.revenue = Money.text(value.revenue)
      row.byUtm = value.byUTM
      row.byClickID = value.byClickID
      row.byReferrer = value.byReferrer
      if value.orders > 0 { row.aov = Money.double(value.revenue) / Double(value.orders) }
      if let total = revenueByCurrency[key.currency], !total.isZero {
        row.share = Money.double(value.revenue) / Money.double(total)
      }
      row.linkClicks = channel.linkClicks
      if channel.linkClicks > 0 {
        row.conversionRate = Double(ordersByChannel[key.channel] ?? 0) / Double(channel.linkClicks)
      }
      let ads = spendByPlatform[key.channel] ?? (Decimal.zero, Decimal.zero, Decimal.zero)
      row.adSpend = Money.text(ads.spend)
      // Ad spend has no currency of its own: a ROAS is made only where the channel's
      // orders are in one currency, taken as the spend's.
      if !ads.spend.isZero, (currenciesByChannel[key.channel]?.count ?? 0) == 1 {
        row.roas = Money.double(value.revenue) / Money.double(ads.spend)
      }
      if !ads.claimedSpend.isZero {
        row.claimedRoas = Money.double(ads.claimedRevenue) / Money.double(ads.claimedSpend)
      }
      rows.append(row)
    }
    section.rows = rows
    report.attribution = section
  }

  public static func table(of report: Report) -> ReportTable? {
    guard report.hasAttribution else { return nil }
    let group = ReportRendering.group
    let percent = ReportRendering.percent
    func number(_ value: Double) -> String { String(format: "%.2f", value) }
    let rows = report.attribution.rows
    return ReportTable(
      columns: [
        "channel", "cur.", "orders", "revenue", "AOV", "share", "clicks", "conv.", "ad spend", "ROAS",
        "claimed ROAS",
      ],
      rows: rows.map { row in
        [
          row.channel, row.currency.isEmpty ? "–" : row.currency, group(row.orders), Money.display(row.revenue),
          row.hasAov ? number(row.aov) : "–", row.hasShare ? percent(row.share) : "–", group(row.linkClicks),
          row.hasConversionRate ? percent(row.conversionRate) : "–",
          row.adSpend == "0" ? "–" : Money.display(row.adSpend), row.hasRoas ? number(row.roas) : "–",
          row.hasClaimedRoas ? number(row.claimedRoas) : "–",
        ]
      },
      numeric: Set(2...10), totalLast: false,
      csvColumns: [
        "channel", "currency", "orders", "revenue", "aov", "share", "link_clicks", "conversion_rate", "ad_spend",
        "roas", "claimed_roas", "by_utm", "by_click_id", "by_referrer",
      ],
      csvRows: rows.map { row in
        [
          row.channel, row.currency, String(row.orders), row.revenue, row.hasAov ? String(row.aov) : "",
          row.hasShare ? String(row.share) : "", String(row.linkClicks),
          row.hasConversionRate ? String(row.conversionRate) : "", row.adSpend, row.hasRoas ? String(row.roas) : "",
          row.hasClaimedRoas ? String(row.claimedRoas) : "", String(row.byUtm), String(row.byClickID),
          String(row.byReferrer),
        ]
      },
      csvText: [0, 1], notes: [report.attribution.note])
  }
}
