import Foundation
import HaatProtocol

/// A DDSketch (Masson, Rim & Lee, "DDSketch: a fast and fully-mergeable quantile sketch with
/// relative-error guarantees", VLDB 2019) of non-negative values: every quantile it answers
/// is within 1 % of the true value at that rank, whatever the data, and merging two sketches
/// adds the counts of equal buckets, so any split of the values over tasks gives the very
/// same sketch. The layout is part of the protocol (analytics.proto `QuantileSketch`), so a
/// worker in another language builds the same buckets.
public struct QuantileSketch: Sendable, Equatable {
  /// The relative accuracy: an answer is within this fraction of the true value.
  public static let accuracy = 0.01
  /// γ = (1 + α) / (1 − α).
  static let gamma = (1 + accuracy) / (1 - accuracy)
  static let logGamma = log(gamma)
  /// Values at most this count as zero (a bucket index must stay in range).
  public static let smallest = 1e-9
  /// Bucket indexes are clamped to ±this (γ^4096 ≈ 10^35): a hostile value cannot make the
  /// sketch grow without bound.
  static let maxIndex: Int32 = 4_096

  public private(set) var zeros: UInt64 = 0
  /// The counts of buckets `offset`, `offset + 1`, …: dense, so adding a value is an index,
  /// not a search (values of one kind span a few hundred buckets). The window grows only while
  /// it stays within `64 + 8 ×` its buckets with a count; a bucket far outside it goes in
  /// `sparse`, so two hostile extremes cannot make a sketch of 8,193 counters.
  private var counts: [UInt64] = []
  private var offset: Int32 = 0
  private var occupied = 0
  /// The buckets outside the window, ascending by index, each with a count. A sketch of a
  /// few values has no window at all: up to `sparseLimit` buckets live here, 16 bytes each,
  /// where a window would span hundreds of counters (best_time keeps 40,000 sketches of a
  /// dozen values each: their windows were most of a task's memory traffic).
  private var sparse: [Bucket] = []
  /// Whether a count passed UInt64.max (the sketch is then wrong; a report refuses it).
  public private(set) var overflowed = false

  struct Bucket: Sendable {
    var index: Int32
    var count: UInt64
  }

  /// Buckets a sketch with no window keeps in its sorted list before it tries a window.
  static let sparseLimit = 16

  public init() {}

  /// Bucket index → count, of the buckets with a count.
  public var buckets: [Int32: UInt64] {
    var buckets: [Int32: UInt64] = [:]
    forEachBucket { buckets[$0] = $1 }
    return buckets
  }

  /// The buckets with a count, ascending, with their counts.
  public var sortedBuckets: [(index: Int32, count: UInt64)] {
    var sorted: [(index: Int32, count: UInt64)] = []
    sorted.reserveCapacity(occupied + sparse.count)
    forEachBucket { sorted.append(($0, $1)) }
    return sorted
  }

  /// Calls `body` with each bucket that has a count, in ascending index: the window and the
  /// sorted list, interleaved.
  @inline(__always)
  func forEachBucket(_ body: (Int32, UInt64) -> Void) {
    var next = sparse.startIndex
    for (position, count) in counts.enumerated() where count > 0 {
      let index = offset + Int32(position)
      while next < sparse.endIndex, sparse[next].index < index {
        body(sparse[next].index, sparse[next].count)
        next += 1
      }
      body(index, count)
    }
    for bucket in sparse[next...] { body(bucket.index, bucket.count) }
  }

  /// The dense window's counters (for the bound's test).
  var denseCounters: Int { counts.count }

  /// The values counted.
  public var count: UInt64 {
    // Every counter added, empty ones too, with no branch per counter: a report asks each of
    // best_time's tens of thousands of sketches.
    var (total, overflowed) = (zeros, false)
    for value in counts {
      let (sum, overflow) = total.addingReportingOverflow(value)
      (total, overflowed) = (sum, overflowed || overflow)
    }
    for bucket in sparse {
      let (sum, overflow) = total.addingReportingOverflow(bucket.count)
      (total, overflowed) = (sum, overflowed || overflow)
    }
    return overflowed ? .max : total
  }

  public static func == (lhs: QuantileSketch, rhs: QuantileSketch) -> Bool {
    lhs.zeros == rhs.zeros && lhs.overflowed == rhs.overflowed
      && lhs.sortedBuckets.elementsEqual(rhs.sortedBuckets) { $0.index == $1.index && $0.count == $1.count }
  }

  /// The bucket of a value above `smallest`.
  static func index(of value: Double) -> Int32 {
    let raw = (log(value) / logGamma).rounded(.up)
    return Int32(min(max(raw, -Double(maxIndex)), Double(maxIndex)))
  }

  /// `index(of:)` of 1 … 4,095 (0 is a zero, never looked up), worked out once by it.
  static let integerIndexes: [Int32] = (0..<4_096).map { $0 == 0 ? 0 : index(of: Double($0)) }

  /// The value a bucket stands for: within `accuracy` of every value in it.
  static func value(of index: Int32) -> Double {
    2 * pow(gamma, Double(index)) / (gamma + 1)
  }

  /// Counts one value; a negative or NaN value is not counted (false).
  @discardableResult
  public mutating func add(_ value: Double) -> Bool {
    guard value >= 0, !value.isNaN else { return false }
    if value <= Self.smallest {
      add(zeros: 1)
    } else if value < Double(Self.integerIndexes.count), let whole = Int(exactly: value) {
      // Counts (engagements per post) are whole: their buckets are looked up, not logged.
      add(bucket: Self.integerIndexes[whole], 1)
    } else if value.isInfinite {
      add(bucket: Self.maxIndex, 1)
    } else {
      add(bucket: Self.index(of: value), 1)
    }
    return true
  }

  private mutating func add(zeros count: UInt64) {
    let (sum, overflow) = zeros.addingReportingOverflow(count)
    zeros = sum
    if overflow { overflowed = true }
  }

  private mutating func add(bucket: Int32, _ count: UInt64) {
    if !counts.isEmpty {
      if bucket < offset || Int(bucket - offset) >= counts.count {
        let low = min(offset, bucket)
        let high = max(offset + Int32(counts.count) - 1, bucket)
        guard Int(high - low) + 1 <= 64 + 8 * (occupied + 1) else { return addSparse(bucket, count) }
        grow(low: low, high: high)
      }
      return addDense(Int(bucket - offset), count)
    }
    addSparse(bucket, count)
    // A list just past the limit tries a window, and again each time it doubles: a hostile
    // spread that no window may cover stays a list, searched in log time.
    if sparse.count > Self.sparseLimit, sparse.count == Self.sparseLimit + 1 || sparse.count & (sparse.count - 1) == 0 {
      densify()
    }
  }

  private mutating func addDense(_ position: Int, _ count: UInt64) {
    if counts[position] == 0 { occupied += 1 }
    let (sum, overflow) = counts[position].addingReportingOverflow(count)
    counts[position] = sum
    if overflow { overflowed = true }
  }

  private mutating func addSparse(_ bucket: Int32, _ count: UInt64) {
    var low = 0
    var high = sparse.count
    while low < high {
      let middle = (low + high) / 2
      if sparse[middle].index < bucket { low = middle + 1 } else { high = middle }
    }
    if low < sparse.count, sparse[low].index == bucket {
      let (sum, overflow) = sparse[low].count.addingReportingOverflow(count)
      sparse[low].count = sum
      if overflow { overflowed = true }
    } else {
      // Room for the whole list at once: growing it one doubling at a time cost an
      // allocation and a copy each (best_time fills tens of thousands of these).
      if sparse.isEmpty { sparse.reserveCapacity(Self.sparseLimit + 1) }
      sparse.insert(Bucket(index: bucket, count: count), at: low)
    }
  }

  /// A window over every listed bucket, when the bound allows it (a sketch with no window).
  private mutating func densify() {
    guard counts.isEmpty, let first = sparse.first, let last = sparse.last,
      Int(last.index - first.index) + 1 <= 64 + 8 * sparse.count
    else { return }
    offset = first.index
    counts = [UInt64](repeating: 0, count: Int(last.index - first.index) + 1)
    for bucket in sparse { counts[Int(bucket.index - first.index)] = bucket.count }
    occupied = sparse.count
    sparse = []
  }

  /// Widens the dense window to [low, high] and moves into it the listed buckets it covers.
  private mutating func grow(low: Int32, high: Int32) {
    if low < offset {
      counts.insert(contentsOf: repeatElement(0, count: Int(offset - low)), at: 0)
      offset = low
    }
    if Int(high - offset) >= counts.count {
      counts.append(contentsOf: repeatElement(0, count: Int(high - offset) + 1 - counts.count))
    }
    guard sparse.contains(where: { $0.index >= low && $0.index <= high }) else { return }
    let covered = sparse.filter { $0.index >= low && $0.index <= high }
    sparse.removeAll { $0.index >= low && $0.index <= high }
    for bucket in covered { addDense(Int(bucket.index - offset), bucket.count) }
  }

  /// Adds another sketch's counts: exact, in any order.
  public mutating func merge(_ other: QuantileSketch) {
    if counts.isEmpty, sparse.isEmpty {
      // Into an empty sketch (a cell's first partial): the other's buckets as they are.
      let (zeros, overflowed) = (self.zeros, self.overflowed)
      self = other
      self.overflowed = self.overflowed || overflowed
      add(zeros: zeros)
      return
    }
    if other.overflowed { overflowed = true }
    add(zeros: other.zeros)
    if counts.isEmpty, !other.counts.isEmpty {
      // Take the other's window and add this sketch's list onto it.
      let mine = sparse
      (counts, offset, occupied, sparse) = (other.counts, other.offset, other.occupied, other.sparse)
      for bucket in mine { add(bucket: bucket.index, bucket.count) }
      return
    }
    if !other.counts.isEmpty {
      // Window onto window: widened once (within the same bound as one add), then added
      // counter by counter, rather than a bounds check and a possible widening per bucket.
      let otherHigh = other.offset + Int32(other.counts.count) - 1
      let low = min(offset, other.offset)
      let high = max(offset + Int32(counts.count) - 1, otherHigh)
      // The merged sketch has at least as many buckets as the larger one: the bound holds.
      if Int(high - low) + 1 <= 64 + 8 * max(occupied, other.occupied) {
        grow(low: low, high: high)
        let shift = Int(other.offset - offset)
        for (index, count) in other.counts.enumerated() where count > 0 { addDense(shift + index, count) }
      } else {
        for (index, count) in other.counts.enumerated() where count > 0 {
          add(bucket: other.offset + Int32(index), count)
        }
      }
    }
    guard !other.sparse.isEmpty else { return }
    guard counts.isEmpty else {
      for bucket in other.sparse { add(bucket: bucket.index, bucket.count) }
      return
    }
    // List onto list: one pass over both, then a window if the bound allows one.
    var merged: [Bucket] = []
    merged.reserveCapacity(sparse.count + other.sparse.count)
    var (left, right) = (sparse.startIndex, other.sparse.startIndex)
    while left < sparse.endIndex || right < other.sparse.endIndex {
      if right == other.sparse.endIndex || (left < sparse.endIndex && sparse[left].index < other.sparse[right].index) {
        merged.append(sparse[left])
        left += 1
      } else if left == sparse.endIndex || other.sparse[right].index < sparse[left].index {
        merged.append(other.sparse[right])
        right += 1
      } else {
        var bucket = sparse[left]
        let (sum, overflow) = bucket.count.addingReportingOverflow(other.sparse[right].count)
        bucket.count = sum
        if overflow { overflowed = true }
        merged.append(bucket)
        left += 1
        right += 1
      }
    }
    sparse = merged
    if sparse.count > Self.sparseLimit { densify() }
  }

  /// The q-quantile (0 ≤ q ≤ 1): the value at rank ⌊q (n − 1)⌋ of the values in ascending
  /// order, within 1 %; nil for an empty sketch.
  public func quantile(_ q: Double) -> Double? { quantile(q, count: count) }

  /// The q-quantile of a sketch of `n` values (`count`, when the caller has it already).
  func quantile(_ q: Double, count n: UInt64) -> Double? {
    guard n > 0, q >= 0, q <= 1 else { return nil }
    let rank = UInt64((q * Double(n - 1)).rounded(.down))
    if rank < zeros { return 0 }
    // The buckets in ascending index (the window's and the list's interleaved), stopping at
    // the one that holds the rank: the median stops halfway.
    var seen = zeros
    var last: Int32?
    var next = sparse.startIndex
    for (position, count) in counts.enumerated() where count > 0 {
      let index = offset + Int32(position)
      while next < sparse.endIndex, sparse[next].index < index {
        seen &+= sparse[next].count
        if rank < seen { return Self.value(of: sparse[next].index) }
        last = sparse[next].index
        next += 1
      }
      seen &+= count
      if rank < seen { return Self.value(of: index) }
      last = index
    }
    for bucket in sparse[next...] {
      seen &+= bucket.count
      if rank < seen { return Self.value(of: bucket.index) }
      last = bucket.index
    }
    return last.map(Self.value(of:))
  }

  /// Its wire form: the buckets `packed` (a tenth of the lists' JSON, and read without a
  /// JSON number per bucket).
  public var message: Haat_V1_QuantileSketch {
    var message = Haat_V1_QuantileSketch()
    message.zeros = zeros
    message.packed = Data(packed)
    return message
  }

  /// Appends it as a best_time group's cell holds it (analytics.proto `BestTimeGroup`):
  /// `zeros`, the length of its packed buckets, then those.
  func appendPacked(to bytes: inout [UInt8]) {
    PackedWriter.append(zeros, to: &bytes)
    // Written on the stack first (their length comes before them): no array per sketch.
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: packedCapacity) { buffer in
      let written = writePacked(into: buffer)
      PackedWriter.append(UInt64(written), to: &bytes)
      bytes.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[..<written]))
    }
  }

  /// The buckets as `packed` lays them out.
  private var packed: [UInt8] {
    [UInt8](unsafeUninitializedCapacity: packedCapacity) { bytes, written in written = writePacked(into: bytes) }
  }

  /// The most bytes the packed buckets can take: two varints of at most 10 bytes per bucket,
  /// sized by the window's counters, not by the count of the occupied ones, so that no
  /// bookkeeping can make it too small.
  private var packedCapacity: Int { max(1, 20 * (counts.count + sparse.count)) }

  /// Writes the packed buckets in place, returning their length: a best_time partial writes
  /// tens of thousands of sketches, and a checked append per byte cost more than the rest
  /// of their writing.
  private func writePacked(into bytes: UnsafeMutableBufferPointer<UInt8>) -> Int {
    var written = 0
    var previous: Int64 = 0
    forEachBucket { index, count in
      let difference = Int64(index) - previous
      PackedWriter.varint(UInt64(bitPattern: (difference << 1) ^ (difference >> 63)), into: bytes, at: &written)
      PackedWriter.varint(count, into: bytes, at: &written)
      previous = Int64(index)
    }
    return written
  }

  /// The buckets of a `packed` field, in the order written; nil when it is cut short, a
  /// varint runs past 10 bytes or an index leaves ±4096. Read from the bytes in place, into
  /// one array (a best_time partial has tens of thousands of sketches to read).
  static func unpack(_ packed: Data) -> [Bucket]? {
    packed.withUnsafeBytes { unpack($0) }
  }

  static func unpack(_ bytes: UnsafeRawBufferPointer) -> [Bucket]? {
    var buckets: [Bucket] = []
    buckets.reserveCapacity(bytes.count / 2)
    guard forEachPacked(bytes, { buckets.append(Bucket(index: $0, count: $1)) }) else { return nil }
    return buckets
  }

  /// Calls `body` with each bucket of a `packed` field, in the order written; false when it
  /// does not read (`unpack`), after the buckets before the fault.
  @inline(__always)
  static func forEachPacked(_ bytes: UnsafeRawBufferPointer, _ body: (Int32, UInt64) -> Void) -> Bool {
    var reader = PackedReader(bytes)
    var index: Int64 = 0
    while !reader.isAtEnd {
      guard let zigzag = reader.varint(), let count = reader.varint() else { return false }
      let difference = Int64(bitPattern: zigzag >> 1) ^ -Int64(bitPattern: zigzag & 1)
      let (next, overflow) = index.addingReportingOverflow(difference)
      guard !overflow, abs(next) <= Int64(maxIndex) else { return false }
      index = next
      body(Int32(index), count)
    }
    return true
  }

  /// Whether the buckets' indexes strictly rise (as `message` writes them).
  static func ascending(_ buckets: [Bucket]) -> Bool {
    for position in buckets.indices.dropFirst() where buckets[position - 1].index >= buckets[position].index {
      return false
    }
    return true
  }

  /// Adds the counts of another sketch's wire form, as merging `QuantileSketch(message)`
  /// would, without building that sketch (the coordinator merges tens of thousands per
  /// best_time partial); false when it does not read (some of it may be added by then).
  public mutating func merge(_ message: Haat_V1_QuantileSketch) -> Bool {
    guard message.buckets.isEmpty, message.counts.isEmpty, !counts.isEmpty || !sparse.isEmpty else {
      guard let other = QuantileSketch(message) else { return false }
      merge(other)
      return true
    }
    return message.packed.withUnsafeBytes { merge(zeros: message.zeros, packed: $0) }
  }

  /// Adds the counts of a sketch given as its zeros and packed buckets (a best_time group's
  /// cell), as `merge(_:)` of its message would; false when the buckets do not read.
  mutating func merge(zeros: UInt64, packed: UnsafeRawBufferPointer) -> Bool {
    guard !counts.isEmpty || !sparse.isEmpty else {
      guard let other = QuantileSketch(zeros: zeros, packed: packed) else { return false }
      merge(other)
      return true
    }
    add(zeros: zeros)
    // Added as they are read, with no array of them in between.
    return Self.forEachPacked(packed) { index, count in
      if count > 0 { add(bucket: index, count) }
    }
  }

  /// From its wire form (the lists and `packed`, added together); nil when the lists do not
  /// pair up, `packed` does not read or an index is out of range.
  public init?(_ message: Haat_V1_QuantileSketch) {
    guard message.buckets.count == message.counts.count else { return nil }
    var buckets: [Bucket] = []
    if !message.buckets.isEmpty {
      buckets = zip(message.buckets, message.counts).map { Bucket(index: $0, count: $1) }
    }
    if !message.packed.isEmpty {
      guard let unpacked = Self.unpack(message.packed) else { return nil }
      if buckets.isEmpty { buckets = unpacked } else { buckets += unpacked }
    }
    self.init(adding: buckets)
    add(zeros: message.zeros)
  }

  /// From a best_time group's form of it: its zeros and packed buckets; nil when those do
  /// not read.
  init?(zeros: UInt64, packed: UnsafeRawBufferPointer) {
    guard let buckets = Self.unpack(packed) else { return nil }
    self.init(adding: buckets)
    add(zeros: zeros)
  }

  /// Of the buckets read, in any order (an index given twice added up, a zero count
  /// skipped); nil when an index is out of range.
  private init?(adding buckets: [Bucket]) {
    var buckets = buckets
    if buckets.contains(where: { $0.count == 0 }) { buckets.removeAll { $0.count == 0 } }
    // Written ascending, as `message` writes them: a short list is kept as it is, and a
    // window is sized once when the buckets fit it, instead of widened bucket by bucket.
    if let first = buckets.first?.index, let last = buckets.last?.index, first >= -Self.maxIndex,
      last <= Self.maxIndex, Self.ascending(buckets)
    {
      if buckets.count <= Self.sparseLimit {
        sparse = buckets
        return
      }
      if Int(last) - Int(first) + 1 <= 64 + 8 * buckets.count {
        offset = first
        counts = [UInt64](repeating: 0, count: Int(last - first) + 1)
        for bucket in buckets { counts[Int(bucket.index - first)] = bucket.count }
        occupied = buckets.count
        return
      }
    }
    for bucket in buckets {
      guard abs(bucket.index) <= Self.maxIndex else { return nil }
      add(bucket: bucket.index, bucket.count)
    }
  }
}
