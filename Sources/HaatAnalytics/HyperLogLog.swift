import Foundation
import HaatProtocol

/// A HyperLogLog (Flajolet et al. 2007, with the small-range correction of linear
/// counting) of 2^14 registers: a distinct count within 1.04/√16384 ≈ 0.81 % (one standard
/// error) of the truth, in at most 16 KiB, whatever the count. Merging takes each
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

  /// The estimated number of distinct values.
  public var estimate: Double {
    let m = Double(Self.registerCount)
    var sum = Double(Self.registerCount - registers.count)  // 2^-0 for every zero register
    for rank in registers.values { sum += pow(2, -Double(rank)) }
    let raw = 0.7213 / (1 + 1.079 / m) * m * m / sum
    let zeros = Self.registerCount - registers.count
    if raw <= 2.5 * m, zeros > 0 { return m * log(m / Double(zeros)) }
    return raw
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
