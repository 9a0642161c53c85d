import HaatCore
import HaatProtocol
import HaatRecords

/// The `engagement` report's mergeable aggregate: exact sums per platform × account ×
/// media type. `add` is one pass over posts; `merge` is associative and commutative with
/// `EngagementKernel()` as identity, so partials can be combined in any order and grouping.
public struct EngagementKernel: Sendable, Equatable {
  public struct Key: Hashable, Sendable, Comparable {
    public var platform: String
    public var account: String
    public var mediaType: String

    public static func < (lhs: Key, rhs: Key) -> Bool {
      // Unicode scalar order, which is UTF-8 byte order (docs/formats.md).
      if lhs.platform != rhs.platform { return lhs.platform.utf8.lexicographicallyPrecedes(rhs.platform.utf8) }
      if lhs.account != rhs.account { return lhs.account.utf8.lexicographicallyPrecedes(rhs.account.utf8) }
      return lhs.mediaType.utf8.lexicographicallyPrecedes(rhs.mediaType.utf8)
    }
  }

  private var cellMap = SlottedMap<Key, Cell>()
  /// The cells by key: a dictionary built on each call (for reading a kernel, never per post).
  public var cells: [Key: Cell] { cellMap.dictionary }
  /// Per-post rates by reach and by impressions, per key: apart from the sums, so that
  /// adding a post never copies a sketch.
  private var rateMap = SlottedMap<Key, PostRates>()
  /// The rates by key, built on each call as `cells` is.
  public var rates: [Key: PostRates] { settledRates.dictionary }
  /// Per-post rates whose key is known, waiting to be added to its sketches in key order
  /// (DeferredAdds: the sketches' windows are more than a cache holds).
  private var pendingRates = DeferredAdds<PendingRates>()

  struct PendingRates: Sendable {
    /// NaN where the post has no such rate.
    var reach: Double
    var impressions: Double
  }

  /// The rate sketches with every waiting rate added (for reading without changing them).
  private var settledRates: SlottedMap<Key, PostRates> {
    var (map, adds) = (rateMap, pendingRates)
    Self.drain(&adds, into: &map)
    return map
  }

  private static func drain(_ adds: inout DeferredAdds<PendingRates>, into map: inout SlottedMap<Key, PostRates>) {
    adds.drain(cells: map.count) { position, run in
      map.update(at: position) { sketches in
        for rates in run {
          sketches.add(
            reach: rates.reach.isNaN ? nil : rates.reach,
            impressions: rates.impressions.isNaN ? nil : rates.impressions)
        }
      }
    }
  }

  /// Adds the waiting rates to their sketches.
  private mutating func flushRates() {
    Self.drain(&pendingRates, into: &rateMap)
  }
  /// A bound on every sum of every cell: the saturating total of every count of every post
  /// added (and of each post itself). While adding a post's counts to it stays below
  /// UInt64.max, no cell's sum can pass it, so `accepts` need not look the cell up. A
  /// kernel read from a partial or merged has no bound (`.max`).
  private var bound: UInt64 = 0

  /// Equal aggregates, whatever the bound (a speed-up, not part of the figures).
  public static func == (lhs: EngagementKernel, rhs: EngagementKernel) -> Bool {
    lhs.cellMap == rhs.cellMap && lhs.settledRates == rhs.settledRates && lhs.overflowed == rhs.overflowed
  }

  /// The post's counts summed, or nil past UInt64.max.
  private static func weight(_ post: PostRecord) -> UInt64? {
    // Added one by one: no array per post on this hot path.
    var sum = Checked()
    var total = sum.add(1, post.likes ?? 0)
    total = sum.add(total, post.comments ?? 0)
    total = sum.add(total, post.shares ?? 0)
    total = sum.add(total, post.saves ?? 0)
    total = sum.add(total, post.reach ?? 0)
    total = sum.add(total, post.impressions ?? 0)
    total = sum.add(total, post.clicks ?? 0)
    total = sum.add(total, post.videoViews ?? 0)
    return sum.overflowed ? nil : total
  }

  /// The sketches of one key's per-post engagement rates.
  public struct PostRates: Sendable, Equatable {
    public var reach = QuantileSketch()
    public var impressions = QuantileSketch()

    mutating func merge(_ other: PostRates) {
      reach.merge(other.reach)
      impressions.merge(other.impressions)
    }

    mutating func add(reach byReach: Double?, impressions byImpressions: Double?) {
      if let byReach { reach.add(byReach) }
      if let byImpressions { impressions.add(byImpressions) }
    }

    var overflowed: Bool { reach.overflowed || impressions.overflowed }
  }

  public init() {}

  /// Whether a merge took a sum past UInt64.max: the sums are then wrong, and a report
  /// must not be made of them.
  public private(set) var overflowed = false

  /// Adds one post; false (and the post left out) when it would take a sum of its cell past
  /// UInt64.max: the reader counts it as a bad row.
  @discardableResult
  public mutating func add(_ post: PostRecord) -> Bool {
    // The reader's account index finds the cell without hashing its key (SlottedMap).
    let slot = post.accountIndex < 0 ? -1 : Int(post.accountIndex) * MediaType.allCases.count + post.mediaType.index
    // Local functions, not closures in constants: those would copy the post per call.
    func matches(_ key: Key) -> Bool {
      key.platform == post.platform && key.account == post.account && key.mediaType == post.mediaType.rawValue
    }
    func key() -> Key { Key(platform: post.platform, account: post.account, mediaType: post.mediaType.rawValue) }
    let (bound, overflow) = Self.weight(post).map { self.bound.addingReportingOverflow($0) } ?? (.max, true)
    if !overflow {
      // No sum of any cell can pass the bound: added as they are, with no check per sum.
      cellMap.update(slot: slot, matches: matches, key: key, initial: Cell.init) { $0.addInRange(post) }
    } else {
      let added = cellMap.update(slot: slot, matches: matches, key: key, initial: Cell.init) { $0.add(post) }
      guard added else {
        if cellMap[key()]?.posts == 0 { cellMap.removeValue(forKey: key()) }
        return false
      }
    }
    self.bound = overflow ? .max : bound
    // The cell's sums took the post, so its engagements are in range.
    let engagements = Double((post.likes ?? 0) &+ (post.comments ?? 0) &+ (post.shares ?? 0) &+ (post.saves ?? 0))
    let byReach = post.reach.flatMap { $0 > 0 ? engagements / Double($0) : nil }
    let byImpressions = post.impressions.flatMap { $0 > 0 ? engagements / Double($0) : nil }
    if byReach != nil || byImpressions != nil {
      let position = rateMap.position(slot: slot, matches: matches, key: key, initial: PostRates.init)
      pendingRates.append(PendingRates(reach: byReach ?? .nan, impressions: byImpressions ?? .nan), at: position)
      if pendingRates.isFull { flushRates() }
    }
    return true
  }

  /// Whether `add` would take the post (its cell's sums stay in range), adding nothing.
  public func accepts(_ post: PostRecord) -> Bool {
    if bound < .max, let weight = Self.weight(post), !bound.addingReportingOverflow(weight).overflow { return true }
    var cell =
      cellMap[Key(platform: post.platform, account: post.account, mediaType: post.mediaType.rawValue)] ?? Cell()
    return cell.add(post)
  }

  /// Merges another partial into this one.
  public mutating func merge(_ other: EngagementKernel) {
    if other.overflowed { overflowed = true }
    bound = .max
    for (key, cell) in other.cellMap.entries where !cellMap.update(key, initial: Cell(), { $0.merge(cell) }) {
      overflowed = true
    }
    flushRates()
    for (key, sketches) in other.settledRates.entries {
      rateMap.update(key, initial: PostRates()) { $0.merge(sketches) }
    }
  }

  // MARK: Wire form

  /// The partial as its protocol message, cells in key order (so equal partials encode
  /// to equal bytes).
  public var partial: Haat_V1_EngagementPartial {
    var message = Haat_V1_EngagementPartial()
    let rateMap = settledRates
    message.cells = cellMap.keys.sorted().map { key in
      let cell = cellMap[key] ?? Cell()
      var out = Haat_V1_EngagementCell()
      out.platform = key.platform
      out.account = key.account
      out.mediaType = key.mediaType
      out.posts = cell.posts
      out.likes = cell.likes
      out.comments = cell.comments
      out.shares = cell.shares
      out.saves = cell.saves
      out.reach = cell.reach
      out.impressions = cell.impressions
      out.clicks = cell.clicks
      out.videoViews = cell.videoViews
      out.engagementsWithReach = cell.engagementsWithReach
      out.engagementsWithImpressions = cell.engagementsWithImpressions
      out.ctrClicks = cell.ctrClicks
      out.ctrImpressions = cell.ctrImpressions
      out.postsWithReach = cell.postsWithReach
      out.postsWithImpressions = cell.postsWithImpressions
      out.unstated = UInt32(cell.unstated.rawValue)
      if let sketches = rateMap[key] {
        if sketches.reach.count > 0 { out.ratesReach = sketches.reach.message }
        if sketches.impressions.count > 0 { out.ratesImpressions = sketches.impressions.message }
      }
      return out
    }
    return message
  }

  /// The kernel a partial message describes (repeated keys are merged).
  public init(partial message: Haat_V1_EngagementPartial) {
    bound = .max
    for cell in message.cells {
      var sums = Cell()
      sums.posts = cell.posts
      sums.likes = cell.likes
      sums.comments = cell.comments
      sums.shares = cell.shares
      sums.saves = cell.saves
      sums.reach = cell.reach
      sums.impressions = cell.impressions
      sums.clicks = cell.clicks
      sums.videoViews = cell.videoViews
      sums.engagementsWithReach = cell.engagementsWithReach
      sums.engagementsWithImpressions = cell.engagementsWithImpressions
      sums.ctrClicks = cell.ctrClicks
      sums.ctrImpressions = cell.ctrImpressions
      sums.postsWithReach = cell.postsWithReach
      sums.postsWithImpressions = cell.postsWithImpressions
      // A partial from a worker that predates the field says 0: every count stated, as
      // reports then took it.
      sums.unstated = Counts(rawValue: UInt8(truncatingIfNeeded: cell.unstated))
      let key = Key(platform: cell.platform, account: cell.account, mediaType: cell.mediaType)
      if !cellMap.update(key, initial: Cell(), { $0.merge(sums) }) { overflowed = true }
      if cell.hasRatesReach || cell.hasRatesImpressions {
        // A sketch that does not read makes the medians unknowable: the report fails.
        guard let reach = QuantileSketch(cell.ratesReach), let impressions = QuantileSketch(cell.ratesImpressions)
        else {
          overflowed = true
          continue
        }
        rateMap.update(key, initial: PostRates()) { $0.merge(PostRates(reach: reach, impressions: impressions)) }
      }
    }
  }

  // MARK: Finish

  /// The report: a row per key in key order, and a total over everything.
  public func finish() -> Haat_V1_EngagementReport {
    checkedFinish() ?? Haat_V1_EngagementReport()
  }

  /// The report, or nil when a sum (a merge, the total, a cell's engagements) passes
  /// UInt64.max: a report of wrapped sums would be silently wrong.
  public func checkedFinish() -> Haat_V1_EngagementReport? {
    let rateMap = settledRates
    guard !overflowed, !rateMap.values.contains(where: \.overflowed) else { return nil }
    var report = Haat_V1_EngagementReport()
    var total = Cell()
    var totalRates = PostRates()
    // Rows gather in a local array: appending through the message's accessor copies the
    // whole list each time (a message with storage), quadratic in rows.
    var rows: [Haat_V1_EngagementRow] = []
    rows.reserveCapacity(cellMap.count)
    for key in cellMap.keys.sorted() {
      let cell = cellMap[key] ?? Cell()
      guard total.merge(cell), cell.engagements != nil else { return nil }
      let sketches = rateMap[key] ?? PostRates()
      totalRates.merge(sketches)
      rows.append(Self.row(key, cell, sketches))
    }
    guard !totalRates.overflowed else { return nil }
    report.rows = rows
    report.total = Self.row(Key(platform: "all", account: "all", mediaType: "all"), total, totalRates)
    return report
  }

  static func row(_ key: Key, _ cell: Cell, _ sketches: PostRates = PostRates()) -> Haat_V1_EngagementRow {
    var row = Haat_V1_EngagementRow()
    row.platform = key.platform
    row.account = key.account
    row.mediaType = key.mediaType
    row.posts = cell.posts
    row.likes = cell.likes
    row.comments = cell.comments
    row.shares = cell.shares
    row.saves = cell.saves
    row.reach = cell.reach
    row.impressions = cell.impressions
    row.clicks = cell.clicks
    row.videoViews = cell.videoViews
    row.engagements = cell.engagements ?? 0
    // Ratios of sums; absent (not 0) when the denominator is unknown everywhere.
    if cell.reach > 0 { row.engagementRateReach = Double(cell.engagementsWithReach) / Double(cell.reach) }
    if cell.impressions > 0 {
      row.engagementRateImpressions = Double(cell.engagementsWithImpressions) / Double(cell.impressions)
    }
    if cell.ctrImpressions > 0 { row.ctr = Double(cell.ctrClicks) / Double(cell.ctrImpressions) }
    if let median = sketches.reach.quantile(0.5) { row.medianRateReach = median }
    if let median = sketches.impressions.quantile(0.5) { row.medianRateImpressions = median }
    row.unstated = Counts.named.filter { cell.unstated.contains($0.0) }.map(\.1)
    return row
  }
}

extension EngagementKernel: ReportKernel {
  public static let name = "engagement"
  public static let summary =
    "per platform × account × media type: posts, likes, comments, shares, saves, reach, impressions, clicks; engagement rates and CTR as ratios of sums, and the median of per-post rates"
  public static let records: Set<RecordType> = [.post]

  public mutating func add(_ record: CanonicalRecord) -> Bool {
    guard case .post(let post) = record else { return true }
    return add(post)
  }

  public func accepts(_ record: CanonicalRecord) -> Bool {
    guard case .post(let post) = record else { return true }
    return accepts(post)
  }

  public mutating func add(post: PostRecord) -> Bool { add(post) }
  public func accepts(post: PostRecord) -> Bool { accepts(post) }
  public mutating func settle() { flushRates() }

  public func write(to partial: inout Partial) { partial.engagement = self.partial }

  public init?(reading partial: Partial) {
    guard partial.hasEngagement else { return nil }
    self.init(partial: partial.engagement)
  }

  public func finish(into report: inout Report) throws(HaatError) {
    guard let engagement = checkedFinish() else {
      throw HaatError(
        .overflow,
        "the engagement report's sums pass 18446744073709551615 (2^64 - 1), or a partial's sketch does not read; no report is made of them"
      )
    }
    report.engagement = engagement
  }
}
