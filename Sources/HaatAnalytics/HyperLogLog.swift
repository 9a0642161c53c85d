import Foundation
import HaatProtocol

/// A HyperLogLog (Flajolet et al. 2007) of 2^14 registers, estimated with Ertl's improved
/// estimator (2017): a distinct count within 1.04/√16384 ≈ 0.81 % (one standard error) of
/// the truth, in at most 16 KiB, whatever the count. Merging takes each
/// register's maximum, so the union of any sets, split over any tasks, is exact to the
/// sketch. The hash is part of the protocol (analytics.proto `DistinctSketch`), so a
/// worker in another language sets the very same registers.
public struct HyperLogLog: Sendable, Equatable {
  /// log2 of the register count.
  public static let precision = 14
  static let registerCount = 1 << precision
  /// One standard error of the estimate, relative.
  public static let standardError = 1.04 / Double(1 << (precision / 2))

  /// Register index → its rank (1…51); registers left at 0 are absent.
  public private(set) var registers: [UInt16: UInt8] = [:]

  public init() {}

  /// FNV-1a (64-bit) of the bytes, then MurmurHash3's 64-bit finalizer (fmix64), so that
  /// every bit of the hash depends on every byte.
  public static func hash(_ bytes: some Sequence<UInt8>) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
      hash ^= UInt64(byte)
      hash = hash &* 0x0000_0100_0000_01b3
    }
    hash ^= hash >> 33
    hash = hash &* 0xff51_afd7_ed55_8ccd
    hash ^= hash >> 33
    hash = hash &* 0xc4ce_b9fe_1a85_ec53
    hash ^= hash >> 33
    return hash
  }

  /// Counts one value (its UTF-8 bytes).
  public mutating func add(_ value: String) {
    let hash = Self.hash(value.utf8)
    let index = UInt16(hash >> UInt64(64 - Self.precision))
    // The rank of the first 1 in the remaining 50 bits (51 when they are all 0).
    let rest = hash << UInt64(Self.precision)
    let rank = UInt8(min(rest.leadingZeroBitCount, 64 - Self.precision) + 1)
    if rank > registers[index, default: 0] { registers[index] = rank }
  }

  public mutating func merge(_ other: HyperLogLog) {
    for (index, rank) in other.registers where rank > registers[index, default: 0] { registers[index] = rank }
  }

  /// The estimated number of distinct values: Ertl's improved raw estimator ("New
  /// cardinality estimation algorithms for HyperLogLog sketches", 2017, section 3), nearly
  /// unbiased at every count. The classic one switches from linear counting to the raw
  /// estimate at 2.5 m, where the raw one is still biased: +2 % on average at 41,000
  /// distinct values, past the stated bound more often than not.
  public var estimate: Double {
    guard !registers.isEmpty else { return 0 }
    let q = 64 - Self.precision
    let m = Double(Self.registerCount)
    var histogram = [Double](repeating: 0, count: q + 2)
    histogram[0] = Double(Self.registerCount - registers.count)
    for rank in registers.values { histogram[Int(rank)] += 1 }
    var z = m * Self.tau(1 - histogram[q + 1] / m)
    for k in stride(from: q, through: 1, by: -1) { z = 0.5 * (z + histogram[k]) }
    z += m * Self.sigma(histogram[0] / m)
    return m * m / (2 * log(2.0)) / z
  }

  /// σ(x) = x + Σ_{k≥1} x^(2^k) 2^(k−1), summed until it stops changing (x < 1).
  static func sigma(_ value: Double) -> Double {
    var x = value
    var y = 1.0
    var z = x
    while true {
      x *= x
      let next = z + x * y
      y *= 2
      if next == z { return z }
      z = next
    }
  }

  /// τ(x) = (1 − x − Σ_{k≥1} (1 − x^(2^−k))² 2^−k) / 3, summed until it stops changing.
  static func tau(_ value: Double) -> Double {
    guard value > 0, value < 1 else { return 0 }
    var x = value
    var y = 1.0
    var z = 1 - x
    while true {
      x = x.squareRoot()
      y *= 0.5
      let next = z - (1 - x) * (1 - x) * y
      if next == z { return z / 3 }
      z = next
    }
  }

  /// Its wire form: one number per non-zero register, index × 64 + rank, ascending.
  public var message: Haat_V1_DistinctSketch {
    var message = Haat_V1_DistinctSketch()
    message.registers = registers.keys.sorted().map { UInt32($0) << 6 | UInt32(registers[$0] ?? 0) }
    return message
  }

  /// From its wire form; nil when an index or a rank is out of range.
  public init?(_ message: Haat_V1_DistinctSketch) {
    for entry in message.registers {
      let index = entry >> 6
      let rank = UInt8(entry & 63)
      guard index < Self.registerCount, rank <= 51 else { return nil }
      if rank > registers[UInt16(index), default: 0] { registers[UInt16(index)] = rank }
    }
  }
}
