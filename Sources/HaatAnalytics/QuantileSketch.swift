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
  /// Bucket index → count.
  public private(set) var buckets: [Int32: UInt64] = [:]
  /// Whether a count passed UInt64.max (the sketch is then wrong; a report refuses it).
  public private(set) var overflowed = false

  public init() {}

  /// The values counted.
  public var count: UInt64 {
    var sum = EngagementKernel.Checked()
    var total = zeros
    for value in buckets.values { total = sum.add(total, value) }
    return sum.overflowed ? .max : total
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
    let (sum, overflow) = buckets[bucket, default: 0].addingReportingOverflow(count)
    buckets[bucket] = sum
    if overflow { overflowed = true }
  }

  public mutating func merge(_ other: QuantileSketch) {
    if other.overflowed { overflowed = true }
    add(zeros: other.zeros)
    for (bucket, count) in other.buckets { add(bucket: bucket, count) }
  }

  /// The q-quantile (0 ≤ q ≤ 1): the value at rank ⌊q (n − 1)⌋ of the values in ascending
  /// order, within 1 %; nil for an empty sketch.
  public func quantile(_ q: Double) -> Double? {
    let n = count
    guard n > 0, q >= 0, q <= 1 else { return nil }
    let rank = UInt64((q * Double(n - 1)).rounded(.down))
    if rank < zeros { return 0 }
    var seen = zeros
    for bucket in buckets.keys.sorted() {
      seen &+= buckets[bucket] ?? 0
      if rank < seen { return Self.value(of: bucket) }
    }
    return buckets.keys.max().map(Self.value(of:))
  }

  /// Its wire form.
  public var message: Haat_V1_QuantileSketch {
    var message = Haat_V1_QuantileSketch()
    message.zeros = zeros
    let sorted = buckets.keys.sorted()
    message.buckets = sorted
    message.counts = sorted.map { buckets[$0] ?? 0 }
    return message
  }

  /// From its wire form; nil when the lists do not pair up or an index is out of range.
  public init?(_ message: Haat_V1_QuantileSketch) {
    guard message.buckets.count == message.counts.count else { return nil }
    add(zeros: message.zeros)
    for (bucket, count) in zip(message.buckets, message.counts) {
      guard abs(bucket) <= Self.maxIndex else { return nil }
      if count > 0 { add(bucket: bucket, count) }
    }
  }
}
