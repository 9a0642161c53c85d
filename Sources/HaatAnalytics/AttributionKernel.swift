import Foundation
import HaatCore
import HaatProtocol
import HaatRecords

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
  /// Where the last orders' cells are, by channel and currency as written: hashing the key
  /// per order took a tenth of attributing it. A cache as `recentChannels` is, emptied when
  /// a key is added to `orders`.
  private var recentOrders = RecentOrders()

  struct RecentOrders: Sendable, Equatable {
    struct Entry: Sendable {
      var channel: String
      var currency: String
      var index: Dictionary<OrderKey, Orders>.Index
    }
    /// A store sells in a currency or a few, through a dozen channels at most.
    static let limit = 16
    private var entries: [Entry] = []
    private var next = 0

    func index(channel: String, currency: String) -> Dictionary<OrderKey, Orders>.Index? {
      for entry in entries where entry.channel == channel && entry.currency == currency { return entry.index }
      return nil
    }

    mutating func remember(channel: String, currency: String, _ index: Dictionary<OrderKey, Orders>.Index) {
      let entry = Entry(channel: channel, currency: currency, index: index)
      if entries.count < Self.limit {
        entries.append(entry)
      } else {
        entries[next] = entry
        next = (next + 1) % Self.limit
      }
    }

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
    let (channel, evidence) = Channels.classify(order)
    if let cell = recentOrders.index(channel: channel, currency: order.currency) {
      return orders.values[cell].add(order, evidence)
    }
    let key = OrderKey(channel: channel, currency: Channels.uppercased(order.currency))
    // One hash per order at most: the cell found is changed where it lies.
    if let cell = orders.index(forKey: key) {
      recentOrders.remember(channel: channel, currency: order.currency, cell)
      return orders.values[cell].add(order, evidence)
    }
    // A refused order leaves no empty cell behind.
    var fresh = Orders()
    guard fresh.add(order, evidence) else { return false }
    orders[key] = fresh
    recentOrders = RecentOrders()  // a new key moves the others
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
    recentOrders = RecentOrders()
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

  /// The platforms whose posts and ad insights meet the orders' channel of their name
  /// (docs/reports.md "Platform names"); any other platform is a channel of its own.
  static let meetingPlatforms: Set<String> = [
    "facebook", "instagram", "tiktok", "pinterest", "linkedin", "youtube", "x",
  ]

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
    // Each row's key, and whether it is a platform's own row (clicks and spend, no orders).
    var keys = orders.keys.map { (key: $0, own: false) }
    // A platform with clicks or spend gets a row of its own (in no currency) when it meets
    // no orders: it has none, or it is not one of the platforms that meet a channel of
    // orders (an ad insight of `direct` says nothing of the orders that came direct).
    for channel in Set(channels.keys).union(spendByPlatform.keys)
    where currenciesByChannel[channel] == nil || !Self.meetingPlatforms.contains(channel) {
      keys.append((OrderKey(channel: channel, currency: ""), true))
    }
    // An orders row before a platform's own row of the same name and currency.
    keys.sort { $0.key < $1.key || ($0.key == $1.key && !$0.own && $1.own) }
    for (key, own) in keys {
      let value = own ? Orders() : orders[key] ?? Orders()
      // Clicks and spend are on a platform's own row, and on the orders rows of a channel
      // that a platform meets; the figures of the channel's orders are not on a platform's.
      let meets = Self.meetingPlatforms.contains(key.channel)
      let platform = own || meets
      let channelOrders = platform && !meets ? 0 : ordersByChannel[key.channel] ?? 0
      let channelCurrencies = platform && !meets ? 0 : currenciesByChannel[key.channel]?.count ?? 0
      let channel = platform ? channels[key.channel] ?? Channel() : Channel()
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
        row.conversionRate = Double(channelOrders) / Double(channel.linkClicks)
      }
      let none = (spend: Decimal.zero, claimedRevenue: Decimal.zero, claimedSpend: Decimal.zero)
      let ads = platform ? spendByPlatform[key.channel] ?? none : none
      row.adSpend = Money.text(ads.spend)
      // Ad spend has no currency of its own: a ROAS is made only where the channel's
      // orders are in one currency, taken as the spend's.
      if !ads.spend.isZero, channelCurrencies == 1 {
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
