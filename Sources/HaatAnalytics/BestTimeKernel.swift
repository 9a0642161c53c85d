import Foundation
import HaatCore
import HaatProtocol
import HaatRecords

/// The `best_time` report: per platform × account, the posts of each hour of the week in
/// the account's own time zone (the source's `timezone`, else each post's written offset),
/// with the count, the engagements, and quantile sketches of the per-post engagement rate
/// and engagements; finished into the median per slot and up to three recommended slots
/// among those with at least `minPosts` posts (docs/reports.md). Counts add and sketches
/// merge exactly, so any split of the posts over tasks gives the same report.
public struct BestTimeKernel: Sendable {
  /// A slot is recommended only with at least this many posts in it: fewer say too little.
  public static let minPosts: UInt32 = 5
  static let recommended = 3
  /// A terminal shows the heatmaps of at most this many accounts.
  static let maxHeatmaps = 4
  static let days = LocalClock.days

  struct Key: Hashable, Comparable {
    var platform: String
    var account: String
    var zone: String
    var hour: UInt32

    var group: Group { Group(platform: platform, account: account, zone: zone) }

    static func < (lhs: Key, rhs: Key) -> Bool {
      if lhs.platform != rhs.platform || lhs.account != rhs.account || lhs.zone != rhs.zone {
        return lhs.group < rhs.group
      }
      return lhs.hour < rhs.hour
    }
  }

  struct Group: Hashable, Comparable {
    var platform: String
    var account: String
    var zone: String

    static func < (lhs: Group, rhs: Group) -> Bool {
      // Field by field, with no array of pairs per comparison (a sort makes hundreds of
      // thousands of them).
      if lhs.platform != rhs.platform { return lhs.platform.utf8.lexicographicallyPrecedes(rhs.platform.utf8) }
      if lhs.account != rhs.account { return lhs.account.utf8.lexicographicallyPrecedes(rhs.account.utf8) }
      if lhs.zone != rhs.zone { return lhs.zone.utf8.lexicographicallyPrecedes(rhs.zone.utf8) }
      return false
    }
  }

  struct Cell: Equatable {
    var posts: UInt64 = 0
    var engagements: UInt64 = 0
    var rates = QuantileSketch()
    var perPost = QuantileSketch()

    /// Adds one post; false when a count passes UInt64.max.
    mutating func add(engagements: UInt64, rate: Double?) -> Bool {
      var sum = EngagementKernel.Checked()
      posts = sum.add(posts, 1)
      self.engagements = sum.add(self.engagements, engagements)
      perPost.add(Double(engagements))
      if let rate { rates.add(rate) }
      return !sum.overflowed && !rates.overflowed && !perPost.overflowed
    }

    /// Adds a partial's cell; false when a count passes UInt64.max or a sketch does not read.
    mutating func merge(_ other: Haat_V1_BestTimeCell) -> Bool {
      var sum = EngagementKernel.Checked()
      posts = sum.add(posts, other.posts)
      engagements = sum.add(engagements, other.engagements)
      let read = rates.merge(other.rates) && perPost.merge(other.perPost)
      return read && !sum.overflowed && !rates.overflowed && !perPost.overflowed
    }

    /// Adds another's; false when a count passes UInt64.max.
    mutating func merge(_ other: Cell) -> Bool {
      var sum = EngagementKernel.Checked()
      posts = sum.add(posts, other.posts)
      engagements = sum.add(engagements, other.engagements)
      rates.merge(other.rates)
      perPost.merge(other.perPost)
      return !sum.overflowed && !rates.overflowed && !perPost.overflowed
    }
  }

  private var cellMap = SlottedMap<Key, Cell>()
  private var overflowed = false
  /// Posts whose cell is known, waiting to be added to it in the order of the cells.
  private var pending = DeferredAdds<Pending>()
  /// Per reader account index × hour of the week, the cell's position + 1 (0: none yet).
  private var hints: [UInt32] = []
  /// Per reader account index, the account the hints of its 168 hours belong to: checked
  /// per post (in a small array that stays in cache), never trusted on the index alone.
  private var owners: [Owner?] = []

  struct Pending: Sendable {
    var engagements: UInt64
    /// NaN when the post has no rate (no reach, or none above 0).
    var rate: Double
  }

  struct Owner: Sendable {
    var platform: String
    var account: String
  }
  /// The account's clock (the task's source's zone, else each post's own offset).
  private var clock = LocalClock(timezone: "")

  public init() {}

  public init(context: ReportContext) {
    self.init()
    clock = LocalClock(timezone: context.timezone)
  }

  static func label(_ hour: UInt32) -> String { labels[Int(hour % 168)] }

  /// The 168 labels, made once: a report over thousands of accounts has a slot per hour each.
  static let labels: [String] = (0..<168).map { hour in
    "\(days[hour / 24]) \(hour % 24 < 10 ? "0" : "")\(hour % 24):00"
  }

  /// likes + comments + shares + saves; nil past UInt64.max.
  static func engagements(_ post: PostRecord) -> UInt64? {
    EngagementKernel.Checked.total(post.likes ?? 0, post.comments ?? 0, post.shares ?? 0, post.saves ?? 0)
  }

  /// Adds one post; false, and nothing changed, when its own engagements pass UInt64.max. A
  /// cell whose sums would pass it marks the kernel overflowed, which its partial carries:
  /// the report then fails and says why (so `accepts` needs no time zone to answer).
  mutating func add(_ post: PostRecord) -> Bool {
    guard let engagements = Self.engagements(post) else { return false }
    let hour = LocalClock.hourOfWeek(local: clock.local(post.createdAt))
    let rate = post.reach.flatMap { $0 > 0 ? Double(engagements) / Double($0) : nil }
    // The cell is found now, its sums and sketches changed later, with other posts' for the
    // same cells (DeferredAdds): a post costs no walk through the grid's memory.
    pending.append(Pending(engagements: engagements, rate: rate ?? .nan), at: position(of: post, hour: hour))
    if pending.isFull { flush() }
    return true
  }

  /// The position of the post's cell, inserted when new. The reader's account index finds
  /// it without hashing its key, once the index's account is confirmed.
  private mutating func position(of post: PostRecord, hour: UInt32) -> Int {
    let index = Int(post.accountIndex)
    let zone = clock.name
    // A local function, not a closure in a constant: that would copy the post per call.
    func key() -> Key { Key(platform: post.platform, account: post.account, zone: zone, hour: hour) }
    guard index >= 0, (index + 1) * 168 <= SlottedMap<Key, Cell>.maxSlots else {
      return cellMap.position(key(), initial: Cell.init)
    }
    if index >= owners.count {
      owners.append(contentsOf: repeatElement(nil, count: index + 1 - owners.count))
      hints.append(contentsOf: repeatElement(0, count: owners.count * 168 - hints.count))
    }
    let slot = index * 168 + Int(hour)
    if let owner = owners[index], owner.platform == post.platform, owner.account == post.account {
      if hints[slot] > 0 { return Int(hints[slot]) - 1 }
    } else {
      // A new account for this index (or another reader's): none of its hints hold.
      owners[index] = Owner(platform: post.platform, account: post.account)
      for hour in 0..<168 { hints[index * 168 + hour] = 0 }
    }
    let position = cellMap.position(key(), initial: Cell.init)
    hints[slot] = UInt32(position + 1)
    return position
  }

  /// Adds the posts waiting to their cells.
  private mutating func flush() {
    // Taken out while drained (the closure changes the cells), put back for its capacity.
    var adds = DeferredAdds<Pending>()
    swap(&adds, &pending)
    defer { swap(&adds, &pending) }
    adds.drain(cells: cellMap.count) { position, post in
      let added = cellMap.update(at: position) {
        $0.add(engagements: post.engagements, rate: post.rate.isNaN ? nil : post.rate)
      }
      if !added { overflowed = true }
    }
  }

  /// This kernel with every waiting post added (for reading it without changing it).
  private var flushed: BestTimeKernel {
    guard !pending.isEmpty else { return self }
    var copy = self
    copy.flush()
    return copy
  }

  static func slot(_ hour: UInt32, _ cell: Cell) -> Haat_V1_BestTimeSlot {
    var slot = Haat_V1_BestTimeSlot()
    slot.hour = hour
    slot.label = label(hour)
    slot.posts = cell.posts
    let withRate = cell.rates.count
    slot.postsWithRate = withRate
    if let median = cell.rates.quantile(0.5, count: withRate) { slot.medianRate = median }
    if let median = cell.perPost.quantile(0.5) { slot.medianEngagements = median }
    if cell.posts > 0 { slot.meanEngagements = Double(cell.engagements) / Double(cell.posts) }
    return slot
  }

  /// Up to three slots with enough posts, best first (ties: more posts, then earlier).
  static func recommend(_ slots: [Haat_V1_BestTimeSlot]) -> (slots: [Haat_V1_BestTimeSlot], rankedBy: String) {
    let byRate = slots.contains { $0.postsWithRate > 0 }
    // Positions sorted, not slots: a report has a slot per hour of every account, and a
    // slot is a message that costs a copy per move.
    let eligible = slots.indices.filter { (byRate ? slots[$0].postsWithRate : slots[$0].posts) >= UInt64(minPosts) }
    let values = slots.map { byRate ? $0.medianRate : $0.medianEngagements }
    let ranked = eligible.sorted { lhs, rhs in
      if values[lhs] != values[rhs] { return values[lhs] > values[rhs] }
      if slots[lhs].posts != slots[rhs].posts { return slots[lhs].posts > slots[rhs].posts }
      return slots[lhs].hour < slots[rhs].hour
    }
    return (ranked.prefix(recommended).map { slots[$0] }, byRate ? "median_rate" : "median_engagements")
  }

  /// A terminal heatmap of one account's week: a row per day, a column per hour, shaded by
  /// the slot's median (of what the account is ranked by) against the account's best.
  static func heatmap(_ account: Haat_V1_BestTimeAccount) -> [String] {
    let shades = ["░", "▒", "▓", "█"]
    let byRate = account.rankedBy == "median_rate"
    var values = [Double?](repeating: nil, count: 168)
    for slot in account.slots where slot.hour < 168 {
      values[Int(slot.hour)] = byRate ? (slot.hasMedianRate ? slot.medianRate : nil) : slot.medianEngagements
    }
    let best = values.compactMap { $0 }.max() ?? 0
    var lines = [
      "\(account.platform) \(account.account) (\(account.zone), by \(byRate ? "median engagement rate" : "median engagements per post"); · no posts)",
      "     0     6     12    18",
    ]
    for day in 0..<7 {
      var line = days[day] + "  "
      for hour in 0..<24 {
        guard let value = values[day * 24 + hour] else {
          line += "·"
          continue
        }
        let level = best > 0 ? min(shades.count - 1, Int(value / best * Double(shades.count))) : 0
        line += shades[level]
      }
      lines.append(line)
    }
    return lines
  }
}

extension BestTimeKernel: ReportKernel {
  public static let name = "best_time"
  public static let summary =
    "per platform × account: posts, median engagement rate and engagements per hour of the week in the account's time zone; the best slots with enough posts"
  public static let records: Set<RecordType> = [.post]
  /// A grid of 168 sketches per account costs far more than engagement's sums: a job gets
  /// it when it names it.
  public static let defaultFor: Set<RecordType> = []

  public mutating func add(_ record: CanonicalRecord) -> Bool {
    guard case .post(let post) = record else { return true }
    return add(post)
  }

  public func accepts(_ record: CanonicalRecord) -> Bool {
    guard case .post(let post) = record else { return true }
    return accepts(post: post)
  }

  public mutating func add(post: PostRecord) -> Bool { add(post) }
  public mutating func settle() { flush() }
  public func accepts(post: PostRecord) -> Bool { Self.engagements(post) != nil }

  public mutating func merge(_ other: BestTimeKernel) {
    flush()
    let other = other.flushed
    if other.overflowed { overflowed = true }
    for (key, cell) in other.cellMap.entries where !cellMap.merge(key, cell, { $0.merge($1) }) { overflowed = true }
  }

  public func write(to partial: inout Partial) {
    var message = Haat_V1_BestTimePartial()
    let kernel = flushed
    let (keys, cells) = (kernel.cellMap.keys, kernel.cellMap.values)
    message.cells = Self.ordered(keys).flatMap(\.positions).map { position in
      let (key, cell) = (keys[position], cells[position])
      var out = Haat_V1_BestTimeCell()
      out.platform = key.platform
      out.account = key.account
      out.zone = key.zone
      out.hour = key.hour
      out.posts = cell.posts
      out.engagements = cell.engagements
      out.rates = cell.rates.message
      out.perPost = cell.perPost.message
      return out
    }
    message.overflowed = kernel.overflowed
    partial.bestTime = message
  }

  public init?(reading partial: Partial) {
    self.init()
    guard merge(reading: partial) else { return nil }
  }

  /// Merges a partial's cells in place: the coordinator merges each range's grid of tens of
  /// thousands of cells, and reading it into a kernel of its own first cost a second map.
  public mutating func merge(reading partial: Partial) -> Bool {
    guard partial.hasBestTime else { return false }
    flush()
    if partial.bestTime.overflowed { overflowed = true }
    if cellMap.isEmpty { cellMap.reserveCapacity(partial.bestTime.cells.count) }
    for cell in partial.bestTime.cells {
      // A cell that does not read makes the report unknowable: said, never dropped.
      guard cell.hour < 168 else {
        overflowed = true
        continue
      }
      let key = Key(platform: cell.platform, account: cell.account, zone: cell.zone, hour: cell.hour)
      if !cellMap.update(key, initial: Cell(), { $0.merge(cell) }) { overflowed = true }
    }
    return true
  }

  /// The positions of `keys` in key order, by account: each key's account hashed once,
  /// the accounts sorted, then each account's hours. The order sorting every key gives,
  /// without comparing an account's strings per cell; positions, not cells, are moved (a
  /// cell is two sketches).
  static func ordered(_ keys: [Key]) -> [(group: Group, positions: [Int])] {
    var hours: [Group: [Int]] = [:]
    for (position, key) in keys.enumerated() { hours[key.group, default: []].append(position) }
    return hours.keys.sorted().map { group in
      (group, (hours[group] ?? []).sorted { keys[$0].hour < keys[$1].hour })
    }
  }

  public func finish(into report: inout Report) throws(HaatError) {
    let kernel = flushed
    guard !kernel.overflowed else {
      throw HaatError(
        .overflow,
        "the best_time report's counts pass 18446744073709551615 (2^64 - 1) or a partial's cell does not read")
    }
    let (keys, cells) = (kernel.cellMap.keys, kernel.cellMap.values)
    var section = Haat_V1_BestTimeReport()
    section.minPosts = Self.minPosts
    section.accounts = Self.ordered(keys).map { group, positions in
      var account = Haat_V1_BestTimeAccount()
      account.platform = group.platform
      account.account = group.account
      account.zone = group.zone
      account.slots = positions.map { Self.slot(keys[$0].hour, cells[$0]) }
      let (recommended, rankedBy) = Self.recommend(account.slots)
      account.recommended = recommended
      account.rankedBy = rankedBy
      return account
    }
    report.bestTime = section
  }

  /// Every account's week as a heatmap (a row per day, a column per hour), shaded as the
  /// terminal's, with each slot's posts and median in its tooltip.
  /// With `limit`, the busiest `limit` accounts, and a line saying how many are left out.
  public static func svg(of report: Report, limit: Int?) -> String? {
    guard report.hasBestTime else { return nil }
    let cell = 22
    let left = 44
    let blockHeight = 40 + 7 * cell + 24
    let all = report.bestTime.accounts
    let accounts = limit.map { limit in busiest(all).prefix(limit).map { all[$0] } } ?? all
    let leftOut = all.count - accounts.count
    let width = left + 24 * cell + 20
    let height = max(1, accounts.count) * blockHeight + 10 + (leftOut > 0 ? 24 : 0)
    var svg = [
      #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(width)" height="\#(height)" font-family="sans-serif" font-size="11">"#
    ]
    if accounts.isEmpty { svg.append(#"<text x="10" y="20">no posts</text>"#) }
    if leftOut > 0 {
      svg.append(
        #"<text x="4" y="\#(accounts.count * blockHeight + 24)">the \#(accounts.count) accounts with the most posts; \#(leftOut) more left out (haat result --svg draws them all)</text>"#
      )
    }
    for (index, account) in accounts.enumerated() {
      let top = index * blockHeight
      let byRate = account.rankedBy == "median_rate"
      var values = [Double?](repeating: nil, count: 168)
      var slots = [Haat_V1_BestTimeSlot?](repeating: nil, count: 168)
      for slot in account.slots where slot.hour < 168 {
        values[Int(slot.hour)] = byRate ? (slot.hasMedianRate ? slot.medianRate : nil) : slot.medianEngagements
        slots[Int(slot.hour)] = slot
      }
      let best = values.compactMap { $0 }.max() ?? 0
      let title =
        "\(account.platform) \(account.account) (\(account.zone), by \(byRate ? "median engagement rate" : "median engagements per post"))"
      svg.append(#"<text x="4" y="\#(top + 20)" font-size="13">\#(ReportRendering.xmlEscaped(title))</text>"#)
      for hour in stride(from: 0, to: 24, by: 3) {
        svg.append(#"<text x="\#(left + hour * cell + 2)" y="\#(top + 36)">\#(hour)</text>"#)
      }
      for day in 0..<7 {
        let y = top + 40 + day * cell
        svg.append(#"<text x="4" y="\#(y + 15)">\#(days[day])</text>"#)
        for hour in 0..<24 {
          let x = left + hour * cell
          let at = day * 24 + hour
          guard let value = values[at], let slot = slots[at] else {
            // A slot with posts but no rate (none stated its reach) is unshaded, and says so.
            let tip = slots[at].map {
              "<title>\(ReportRendering.xmlEscaped("\($0.label): \($0.posts) posts, no rate"))</title>"
            }
            svg.append(
              #"<rect x="\#(x)" y="\#(y)" width="\#(cell - 2)" height="\#(cell - 2)" fill="rgb(238,238,238)""#
                + (tip.map { ">\($0)</rect>" } ?? "/>"))
            continue
          }
          let share = best > 0 ? value / best : 0
          let median = byRate ? ReportRendering.percent(value) : String(format: "%.0f", value)
          let tip = "\(slot.label): \(slot.posts) posts, median \(median)"
          svg.append(
            #"<rect x="\#(x)" y="\#(y)" width="\#(cell - 2)" height="\#(cell - 2)" fill="rgb(31,111,235)" fill-opacity="\#(String(format: "%.3f", 0.12 + 0.88 * share))"><title>\#(ReportRendering.xmlEscaped(tip))</title></rect>"#
          )
        }
      }
    }
    svg.append("</svg>")
    return svg.joined(separator: "\n") + "\n"
  }

  /// The accounts' indices, most posts first (ties in the report's order).
  static func busiest(_ accounts: [Haat_V1_BestTimeAccount]) -> [Int] {
    let posts = accounts.map { $0.slots.reduce(UInt64(0)) { $0 &+ $1.posts } }
    return accounts.indices.sorted { posts[$0] != posts[$1] ? posts[$0] > posts[$1] : $0 < $1 }
  }

  public static func table(of report: Report) -> ReportTable? {
    guard report.hasBestTime else { return nil }
    let group = ReportRendering.group
    let percent = ReportRendering.percent
    var rows: [[String]] = []
    var csvRows: [[String]] = []
    var notes: [String] = []
    for account in report.bestTime.accounts {
      if account.recommended.isEmpty {
        rows.append([
          account.platform, account.account, account.zone, "–",
          "no slot has \(report.bestTime.minPosts) posts", "", "", "",
        ])
      }
      for (rank, slot) in account.recommended.enumerated() {
        rows.append([
          account.platform, account.account, account.zone, String(rank + 1), slot.label, group(slot.posts),
          slot.hasMedianRate ? percent(slot.medianRate) : "–",
          // A sketch's median is within 1 %: whole engagements, no false decimals.
          slot.hasMedianEngagements ? group(UInt64(slot.medianEngagements.rounded())) : "–",
        ])
      }
      let ranks = Dictionary(
        account.recommended.enumerated().map { ($0.element.hour, $0.offset + 1) },
        uniquingKeysWith: { first, _ in first })
      for slot in account.slots {
        csvRows.append([
          account.platform, account.account, account.zone, String(slot.hour), slot.label, String(slot.posts),
          String(slot.postsWithRate), slot.hasMedianRate ? String(slot.medianRate) : "",
          slot.hasMedianEngagements ? String(slot.medianEngagements) : "", String(slot.meanEngagements),
          ranks[slot.hour].map(String.init) ?? "",
        ])
      }
    }
    // Heatmaps of the accounts with the most posts; the rest would bury the table. Every
    // slot of every account is in the CSV and JSON.
    let accounts = report.bestTime.accounts
    for index in busiest(accounts).prefix(maxHeatmaps) { notes += [""] + heatmap(accounts[index]) }
    if accounts.count > maxHeatmaps {
      notes += [
        "",
        "(heatmaps of the \(maxHeatmaps) accounts with the most posts; \(accounts.count - maxHeatmaps) more left out; every slot of all \(accounts.count) is in --format csv or json)",
      ]
    }
    return ReportTable(
      columns: ["platform", "account", "zone", "#", "slot", "posts", "median rate", "median eng."],
      rows: rows, numeric: [3, 5, 6, 7], totalLast: false,
      csvColumns: [
        "platform", "account", "zone", "hour", "slot", "posts", "posts_with_rate", "median_rate",
        "median_engagements", "mean_engagements", "recommended",
      ],
      csvRows: csvRows, csvText: [0, 1, 2, 4], notes: notes)
  }
}
