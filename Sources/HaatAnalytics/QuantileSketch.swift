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
  /// not a hash (values of one kind span a few hundred buckets). The window grows only while
  /// it stays within `64 + 8 ×` its buckets with a count; a bucket far outside it goes in
  /// `sparse`, so two hostile extremes cannot make a sketch of 8,193 counters.
  private var counts: [UInt64] = []
  private var offset: Int32 = 0
  private var occupied = 0
  private var sparse: [Int32: UInt64] = [:]
  /// Whether a count passed UInt64.max (the sketch is then wrong; a report refuses it).
  public private(set) var overflowed = false

  public init() {}

  /// Bucket index → count, of the buckets with a count.
  public var buckets: [Int32: UInt64] {
    Dictionary(uniqueKeysWithValues: sortedBuckets.map { ($0.index, $0.count) })
  }

  /// The buckets with a count, ascending, with their counts.
  public var sortedBuckets: [(index: Int32, count: UInt64)] {
    let dense = counts.enumerated().compactMap { $0.element > 0 ? (offset + Int32($0.offset), $0.element) : nil }
    guard !sparse.isEmpty else { return dense }
    return (dense + sparse.map { ($0.key, $0.value) }).sorted { $0.0 < $1.0 }
  }

  /// The dense window's counters (for the bound's test).
  var denseCounters: Int { counts.count }

  /// The values counted.
  public var count: UInt64 {
    var sum = EngagementKernel.Checked()
    var total = zeros
    for value in counts where value > 0 { total = sum.add(total, value) }
    for value in sparse.values { total = sum.add(total, value) }
    return sum.overflowed ? .max : total
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
    if counts.isEmpty || bucket < offset || Int(bucket - offset) >= counts.count {
      let low = counts.isEmpty ? bucket : min(offset, bucket)
      let high = counts.isEmpty ? bucket : max(offset + Int32(counts.count) - 1, bucket)
      guard Int(high - low) + 1 <= 64 + 8 * (occupied + 1) else {
        let (sum, overflow) = sparse[bucket, default: 0].addingReportingOverflow(count)
        sparse[bucket] = sum
        if overflow { overflowed = true }
        return
      }
      grow(low: low, high: high)
    }
    let index = Int(bucket - offset)
    if counts[index] == 0 { occupied += 1 }
    let (sum, overflow) = counts[index].addingReportingOverflow(count)
    counts[index] = sum
    if overflow { overflowed = true }
  }

  /// Widens the dense window to [low, high] and moves into it the sparse buckets it covers.
  private mutating func grow(low: Int32, high: Int32) {
    if counts.isEmpty {
      offset = low
      counts = [UInt64](repeating: 0, count: Int(high - low) + 1)
    } else {
      if low < offset {
        counts.insert(contentsOf: repeatElement(0, count: Int(offset - low)), at: 0)
        offset = low
      }
      if Int(high - offset) >= counts.count {
        counts.append(contentsOf: repeatElement(0, count: Int(high - offset) + 1 - counts.count))
      }
    }
    for (bucket, count) in sparse where bucket >= low && bucket <= high {
      sparse[bucket] = nil
      let index = Int(bucket - offset)
      if counts[index] == 0 { occupied += 1 }
      let (sum, overflow) = counts[index].addingReportingOverflow(count)
      counts[index] = sum
      if overflow { overflowed = true }
    }
  }

  public mutating func merge(_ other: QuantileSketch) {
    if other.overflowed { overflowed = true }
    add(zeros: other.zeros)
    if !other.counts.isEmpty {
      // Window onto window: widened once (within the same bound as one add), then added
      // counter by counter, rather than a bounds check and a possible widening per bucket.
      let otherHigh = other.offset + Int32(other.counts.count) - 1
      let low = counts.isEmpty ? other.offset : min(offset, other.offset)
      let high = counts.isEmpty ? otherHigh : max(offset + Int32(counts.count) - 1, otherHigh)
      // The merged sketch has at least as many buckets as the larger one: the bound holds.
      if Int(high - low) + 1 <= 64 + 8 * max(occupied, other.occupied) {
        grow(low: low, high: high)
        let shift = Int(other.offset - offset)
        for (index, count) in other.counts.enumerated() where count > 0 {
          if counts[shift + index] == 0 { occupied += 1 }
          let (sum, overflow) = counts[shift + index].addingReportingOverflow(count)
          counts[shift + index] = sum
          if overflow { overflowed = true }
        }
      } else {
        for (index, count) in other.counts.enumerated() where count > 0 {
          add(bucket: other.offset + Int32(index), count)
        }
      }
    }
    for (bucket, count) in other.sparse { add(bucket: bucket, count) }
  }

  /// The q-quantile (0 ≤ q ≤ 1): the value at rank ⌊q (n − 1)⌋ of the values in ascending
  /// order, within 1 %; nil for an empty sketch.
  public func quantile(_ q: Double) -> Double? {
    let n = count
    guard n > 0, q >= 0, q <= 1 else { return nil }
    let rank = UInt64((q * Double(n - 1)).rounded(.down))
    if rank < zeros { return 0 }
    var seen = zeros
    let sorted = sortedBuckets
    for (bucket, count) in sorted {
      seen &+= count
      if rank < seen { return Self.value(of: bucket) }
    }
    return sorted.last.map { Self.value(of: $0.index) }
  }

  /// Its wire form.
  public var message: Haat_V1_QuantileSketch {
    var message = Haat_V1_QuantileSketch()
    message.zeros = zeros
    let sorted = sortedBuckets
    message.buckets = sorted.map(\.index)
    message.counts = sorted.map(\.count)
    return message
  }

  /// From its wire form; nil when the lists do not pair up or an index is out of range.
  public init?(_ message: Haat_V1_QuantileSketch) {
    guard message.buckets.count == message.counts.count else { return nil }
    add(zeros: message.zeros)
    // Written ascending, as `message` writes them: the window is sized once when the buckets
    // fit it, instead of widened bucket by bucket.
    let buckets = message.buckets
    if let first = buckets.first, let last = buckets.last, first >= -Self.maxIndex, last <= Self.maxIndex,
      zip(buckets, buckets.dropFirst()).allSatisfy({ $0 < $1 }),
      Int(last) - Int(first) + 1 <= 64 + 8 * message.counts.lazy.filter({ $0 > 0 }).count
    {
      offset = first
      counts = [UInt64](repeating: 0, count: Int(last - first) + 1)
      for (bucket, count) in zip(buckets, message.counts) where count > 0 {
        counts[Int(bucket - first)] = count
        occupied += 1
      }
      return
    }
    for (bucket, count) in zip(message.buckets, message.counts) {
      guard abs(bucket) <= Self.maxIndex else { return nil }
      if count > 0 { add(bucket: bucket, count) }
    }
  }
}
