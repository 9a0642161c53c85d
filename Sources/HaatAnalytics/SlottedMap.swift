/// A map that remembers where its entries live by a caller's small integer slot (a reader's
/// account index × a sub-key, e.g. the media type or the hour of the week), so that a
/// kernel's hot path finds a record's entry without hashing its String key.
///
/// Entries sit in arrays, found by key through a dictionary of positions. A position stays
/// put when others are inserted (a best_time partial grows to tens of thousands of cells,
/// one at a time, while posts keep arriving), so a remembered one stays good; a removal
/// moves the last entry into the gap. A slot's position is a hint, never trusted on its
/// own: it is used only once `matches` has confirmed the key at that position.
struct SlottedMap<Key: Hashable, Value> {
  /// Remembered positions stop at this many slots (1 MiB at most); past it, keys hash.
  static var maxSlots: Int { 1 << 18 }

  private(set) var keys: [Key] = []
  private(set) var values: [Value] = []
  private var positions: [Key: Int] = [:]
  /// Slot → position + 1 (0: none remembered).
  private var hints: [UInt32] = []

  init() {}

  var count: Int { keys.count }
  var isEmpty: Bool { keys.isEmpty }

  subscript(key: Key) -> Value? { positions[key].map { values[$0] } }

  /// The entries, in insertion order (an order that means nothing: sort for one).
  var entries: Zip2Sequence<[Key], [Value]> { zip(keys, values) }

  /// The entries as a dictionary (built on each call: for tests and reading, not per record).
  var dictionary: [Key: Value] { Dictionary(uniqueKeysWithValues: zip(keys, values)) }

  /// Runs `body` on the entry of the key `slot` remembers, if `matches` confirms it; else on
  /// the entry of `key()` (inserted as `initial()` when absent), remembered for `slot`.
  @inline(__always)
  mutating func update<R>(
    slot: Int, matches: (Key) -> Bool, key: () -> Key, initial: () -> Value, _ body: (inout Value) -> R
  ) -> R {
    body(&values[position(slot: slot, matches: matches, key: key, initial: initial)])
  }

  /// The position of the entry `update(slot:…)` would run its body on.
  @inline(__always)
  mutating func position(slot: Int, matches: (Key) -> Bool, key: () -> Key, initial: () -> Value) -> Int {
    if slot >= 0, slot < hints.count {
      let position = Int(hints[slot]) - 1
      if position >= 0, position < keys.count, matches(keys[position]) { return position }
    }
    let position = self.position(key(), initial: initial)
    if slot >= 0, slot < Self.maxSlots {
      if slot >= hints.count { hints.append(contentsOf: repeatElement(0, count: slot + 1 - hints.count)) }
      hints[slot] = UInt32(position + 1)
    }
    return position
  }

  /// Runs `body` on the entry of `key`, inserted as `initial()` when absent.
  mutating func update<R>(_ key: Key, initial: @autoclosure () -> Value, _ body: (inout Value) -> R) -> R {
    body(&values[position(key, initial: initial)])
  }

  /// Takes `value` as `key`'s entry when there is none (no empty entry built to merge it
  /// into), else `combine`s it into the entry there; `combine`'s answer, or true.
  mutating func merge(_ key: Key, _ value: Value, _ combine: (inout Value, Value) -> Bool) -> Bool {
    if let position = positions[key] { return combine(&values[position], value) }
    keys.append(key)
    values.append(value)
    positions[key] = keys.count - 1
    return true
  }

  /// Room for `count` entries in all, so that filling it does not rehash as it grows.
  mutating func reserveCapacity(_ count: Int) {
    keys.reserveCapacity(count)
    values.reserveCapacity(count)
    positions.reserveCapacity(count)
  }

  mutating func removeValue(forKey key: Key) {
    guard let position = positions.removeValue(forKey: key) else { return }
    let last = keys.count - 1
    if position != last {
      keys.swapAt(position, last)
      values.swapAt(position, last)
      positions[keys[position]] = position
    }
    keys.removeLast()
    values.removeLast()
  }

  /// Runs `body` on the entry at `position` (one `position(_:initial:)` gave).
  mutating func update<R>(at position: Int, _ body: (inout Value) -> R) -> R {
    body(&values[position])
  }

  /// Where `key`'s entry is, inserting it as `initial()` when absent. Positions stay put
  /// while nothing is removed.
  mutating func position(_ key: Key, initial: () -> Value) -> Int {
    if let position = positions[key] { return position }
    keys.append(key)
    values.append(initial())
    positions[key] = keys.count - 1
    return keys.count - 1
  }
}

extension SlottedMap: Equatable where Value: Equatable {
  /// Equal entries, in any order; remembered positions are not part of the value.
  static func == (lhs: SlottedMap, rhs: SlottedMap) -> Bool {
    lhs.count == rhs.count && zip(lhs.keys, lhs.values).allSatisfy { rhs[$0] == $1 }
  }
}

extension SlottedMap: Sendable where Key: Sendable, Value: Sendable {}
