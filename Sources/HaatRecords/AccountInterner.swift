import Foundation

/// The platform × account pairs one reader has seen, each kept once as Strings with a small
/// index. A row whose pair is known costs a hash of its bytes and a compare, not two new
/// Strings; its record carries the index (`PostRecord.accountIndex`) so that kernels can
/// find their entry for the pair without hashing Strings again.
///
/// Bounded: past `capacity` pairs a new pair is not kept (the row gets fresh Strings and
/// no index), so an export with millions of accounts costs no more than today's path. The
/// hash is the standard library's seeded one: rows written to collide cannot make it slow.
/// Before it, a small direct-mapped cache indexed by the pair's lengths and end bytes finds
/// the usual few pairs with a compare and no hash; a miss (or rows that share a cache line)
/// only falls through to the hashed table.
struct AccountInterner {
  static let capacity = 4096
  static let cacheSize = 1024

  /// The pairs, by index.
  private var pairs: [(platform: String, account: String)] = []
  /// Each pair's bytes, platform then a NUL then account (a NUL is a control character, which
  /// neither field may hold), back to back; `ends[i]` is where pair i's bytes end.
  private var bytes: [UInt8] = []
  private var ends: [Int] = []
  /// Open addressing over pair indices (−1 empty), twice the capacity: probes stay short.
  private var table = [Int32](repeating: -1, count: 2 * capacity)
  private var hashes: [Int] = []
  /// Pair index by `cacheLine` (−1: none).
  private var cache = [Int32](repeating: -1, count: cacheSize)

  @inline(__always)
  private static func cacheLine(_ platform: UnsafeRawBufferPointer, _ account: UnsafeRawBufferPointer) -> Int {
    var key = UInt32(truncatingIfNeeded: platform.count) &* 31 &+ UInt32(truncatingIfNeeded: account.count)
    if let last = platform.last { key = key &* 31 &+ UInt32(last) }
    if let first = platform.first { key = key &* 31 &+ UInt32(first) }
    if account.count >= 2 { key = key &* 31 &+ UInt32(account[account.count - 2]) }
    if let last = account.last { key = key &* 31 &+ UInt32(last) }
    return Int((key &* 0x9E37_79B1) >> 22) & (cacheSize - 1)
  }

  /// The pair's Strings and its index (−1 when the interner is full and the pair is new).
  mutating func intern(
    platform: UnsafeRawBufferPointer, account: UnsafeRawBufferPointer
  ) -> (platform: String, account: String, index: Int32) {
    let line = Self.cacheLine(platform, account)
    let cached = Int(cache[line])
    if cached >= 0, matches(cached, platform, account) {
      return (pairs[cached].platform, pairs[cached].account, Int32(cached))
    }
    var hasher = Hasher()
    hasher.combine(bytes: platform)
    hasher.combine(0 as UInt8)
    hasher.combine(bytes: account)
    let hash = hasher.finalize()
    let mask = table.count - 1
    var bucket = hash & mask
    while table[bucket] >= 0 {
      let index = Int(table[bucket])
      if hashes[index] == hash, matches(index, platform, account) {
        cache[line] = Int32(index)
        return (pairs[index].platform, pairs[index].account, Int32(index))
      }
      bucket = (bucket + 1) & mask
    }
    let strings = (Values.string(platform), Values.string(account))
    guard pairs.count < Self.capacity else { return (strings.0, strings.1, -1) }
    let index = pairs.count
    pairs.append(strings)
    bytes.append(contentsOf: platform)
    bytes.append(0)
    bytes.append(contentsOf: account)
    ends.append(bytes.count)
    hashes.append(hash)
    table[bucket] = Int32(index)
    cache[line] = Int32(index)
    return (strings.0, strings.1, Int32(index))
  }

  /// Whether the `bytes.count` bytes at `stored` are `bytes`.
  @inline(__always)
  private static func equal(_ stored: UnsafeRawPointer, _ bytes: UnsafeRawBufferPointer) -> Bool {
    guard let base = bytes.baseAddress else { return true }
    return memcmp(stored, base, bytes.count) == 0
  }

  private func matches(_ index: Int, _ platform: UnsafeRawBufferPointer, _ account: UnsafeRawBufferPointer) -> Bool {
    let start = index == 0 ? 0 : ends[index - 1]
    guard ends[index] - start == platform.count + 1 + account.count else { return false }
    return bytes.withUnsafeBytes { stored in
      let pair = UnsafeRawBufferPointer(rebasing: stored[start..<ends[index]])
      guard let base = pair.baseAddress, pair[platform.count] == 0 else { return false }
      return Self.equal(base, platform) && Self.equal(base + platform.count + 1, account)
    }
  }
}
