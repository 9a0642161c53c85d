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

    /// Adds a group's cell (its sketches as zeros and packed buckets); false when a count
    /// passes UInt64.max or a sketch does not read.
    mutating func merge(
      posts: UInt64, engagements: UInt64, rates: (zeros: UInt64, packed: UnsafeRawBufferPointer),
      perPost: (zeros: UInt64, packed: UnsafeRawBufferPointer)
    ) -> Bool {
      var sum = EngagementKernel.Checked()
      self.posts = sum.add(self.posts, posts)
      self.engagements = sum.add(self.engagements, engagements)
      let read =
        self.rates.merge(zeros: rates.zeros, packed: rates.packed)
        && self.perPost.merge(zeros: perPost.zeros, packed: perPost.packed)
      return read && !sum.overflowed && !self.rates.overflowed && !self.perPost.overflowed
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
    adds.drain(cells: cellMap.count) { position, run in
      let added = cellMap.update(at: position) { cell in
        var added = true
        for post in run where !cell.add(engagements: post.engagements, rate: post.rate.isNaN ? nil : post.rate) {
          added = false
        }
        return added
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

  /// Written as groups (analytics.proto `BestTimeGroup`): an account's cells packed in one
  /// field, where a message per cell cost more to write, and to read on the coordinator,
  /// than the figures.
  public func write(to partial: inout Partial) {
    var message = Haat_V1_BestTimePartial()
    let kernel = flushed
    let (keys, cells) = (kernel.cellMap.keys, kernel.cellMap.values)
    var bytes: [UInt8] = []
    for (group, positions) in Self.ordered(keys) {
      func close() {
        var out = Haat_V1_BestTimeGroup()
        out.platform = group.platform
        out.account = group.account
        out.zone = group.zone
        out.cells = Data(bytes)
        message.groups.append(out)
        bytes.removeAll(keepingCapacity: true)
      }
      for position in positions {
        let cell = cells[position]
        PackedWriter.append(UInt64(keys[position].hour), to: &bytes)
        PackedWriter.append(cell.posts, to: &bytes)
        PackedWriter.append(cell.engagements, to: &bytes)
        cell.rates.appendPacked(to: &bytes)
        cell.perPost.appendPacked(to: &bytes)
        // A group stays far under the smallest line a session may have (64 KiB), so that a
        // result can always be cut into parts: an account's wide sketches go in several.
        if bytes.count >= Self.groupBytes { close() }
      }
      if !bytes.isEmpty { close() }
    }
    message.overflowed = kernel.overflowed
    partial.bestTime = message
  }

  /// The size past which a group's cells go on in another group.
  public static let groupBytes = 16 << 10

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
    if cellMap.isEmpty {
      // A group's cell takes at least 7 bytes: room for its cells, bounded by its bytes.
      let packed = partial.bestTime.groups.reduce(0) { $0 + $1.cells.count } / 7
      cellMap.reserveCapacity(partial.bestTime.cells.count + min(partial.bestTime.groups.count * 168, packed))
    }
    for cell in partial.bestTime.cells {
      // A cell that does not read makes the report unknowable: said, never dropped.
      guard cell.hour < 168 else {
        overflowed = true
        continue
      }
      let key = Key(platform: cell.platform, account: cell.account, zone: cell.zone, hour: cell.hour)
      if !cellMap.update(key, initial: Cell(), { $0.merge(cell) }) { overflowed = true }
    }
    for group in partial.bestTime.groups where !merge(group) { overflowed = true }
    return true
  }

  /// Adds a group's cells; false when one does not read or passes a sum's range (the cells
  /// before it are added; the rest of the group is not read).
  private mutating func merge(_ group: Haat_V1_BestTimeGroup) -> Bool {
    group.cells.withUnsafeBytes { bytes in
      var reader = PackedReader(bytes)
      while !reader.isAtEnd {
        guard let hour = reader.varint(), hour < 168, let posts = reader.varint(),
          let engagements = reader.varint(), let ratesZeros = reader.varint(),
          let rates = reader.varint().flatMap({ reader.bytes($0) }), let perPostZeros = reader.varint(),
          let perPost = reader.varint().flatMap({ reader.bytes($0) })
        else { return false }
        let key = Key(platform: group.platform, account: group.account, zone: group.zone, hour: UInt32(hour))
        let merged = cellMap.update(key, initial: Cell()) {
          $0.merge(
            posts: posts, engagements: engagements, rates: (ratesZeros, rates), perPost: (perPostZeros, perPost))
        }
        guard merged else { return false }
      }
      return true
    }
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

}
