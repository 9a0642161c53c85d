import Foundation
import HaatProtocol

/// The count, mean and sum of squared deviations of a sample, kept as Welford adds them and
/// merged by Chan, Golub & LeVeque's pairwise update: stable (no sum of squares that
/// cancels), one pass, and mergeable in any order up to rounding. The update rules are part
/// of the protocol (analytics.proto `Moments`).
public struct Moments: Sendable, Equatable {
  public private(set) var count: UInt64 = 0
  public private(set) var mean: Double = 0
  /// Σ (x − mean)².
  public private(set) var m2: Double = 0
  /// Whether the count passed UInt64.max (a report refuses it).
  public private(set) var overflowed = false

  public init() {}

  /// Adds a finite value; false, and nothing counted, for NaN or an infinity.
  @discardableResult
  public mutating func add(_ value: Double) -> Bool {
    guard value.isFinite else { return false }
    guard count < .max else {
      overflowed = true
      return true
    }
    count += 1
    let delta = value - mean
    mean += delta / Double(count)
    m2 += delta * (value - mean)
    return true
  }

  public mutating func merge(_ other: Moments) {
    if other.overflowed { overflowed = true }
    guard other.count > 0 else { return }
    guard count > 0 else {
      self = other
      return
    }
    let (total, overflow) = count.addingReportingOverflow(other.count)
    guard !overflow else {
      overflowed = true
      return
    }
    let n = Double(total)
    let delta = other.mean - mean
    mean += delta * Double(other.count) / n
    m2 += other.m2 + delta * delta * Double(count) * Double(other.count) / n
    count = total
  }

  /// The sample variance, m2 / (count − 1); nil under two values.
  public var variance: Double? { count > 1 ? m2 / Double(count - 1) : nil }

  public var message: Haat_V1_Moments {
    var message = Haat_V1_Moments()
    message.count = count
    message.mean = mean
    message.m2 = m2
    return message
  }

  /// From its wire form; nil for a mean or m2 that is not finite, a negative m2, or an
  /// empty sample with a non-zero mean or m2.
  public init?(_ message: Haat_V1_Moments) {
    guard message.mean.isFinite, message.m2.isFinite, message.m2 >= 0,
      message.count > 0 || (message.mean == 0 && message.m2 == 0)
    else { return nil }
    count = message.count
    mean = message.mean
    m2 = message.m2
  }
}
