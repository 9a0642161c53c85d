/// A dictionary that remembers where its entries live by a caller's small integer slot
/// (a reader's account index × a sub-key, e.g. the media type), so that a kernel's hot path
/// finds a record's entry without hashing its String key. A remembered position is used only
/// while the dictionary has not changed shape since it was remembered (every insertion or
/// removal goes through this type and bumps `shape`), and only once `matches` has confirmed
/// the entry's key: a slot is a hint, never trusted on its own.
struct SlottedMap<Key: Hashable, Value> {
  /// Remembered positions stop at this many slots (a few MB at most); past it, keys hash.
  static var maxSlots: Int { 1 << 18 }

  private(set) var dictionary: [Key: Value] = [:]
  private var positions: [Position] = []
  private var shape: UInt32 = 1

  /// A bucket number and the table's age: plain values, safe to send.
  private struct Position: @unchecked Sendable {
    var shape: UInt32 = 0
    var index: Dictionary<Key, Value>.Index?
  }

  init() {}

  subscript(key: Key) -> Value? { dictionary[key] }

  /// Runs `body` on the entry of the key `slot` remembers, if `matches` confirms it; else on
  /// the entry of `key()` (inserted as `initial()` when absent), remembered for `slot`.
  @inline(__always)
  mutating func update<R>(
    slot: Int, matches: (Key) -> Bool, key: () -> Key, initial: () -> Value, _ body: (inout Value) -> R
  ) -> R {
    if slot >= 0, slot < positions.count, positions[slot].shape == shape, let index = positions[slot].index,
      matches(dictionary.keys[index])
    {
      return body(&dictionary.values[index])
    }
    let key = key()
    if dictionary.index(forKey: key) == nil {
      dictionary[key] = initial()
      shape &+= 1
    }
    guard let index = dictionary.index(forKey: key) else {
      return body(&dictionary[key, default: initial()])  // not reached: the key is in
    }
    if slot >= 0, slot < Self.maxSlots {
      if slot >= positions.count {
        positions.append(contentsOf: repeatElement(Position(), count: slot + 1 - positions.count))
      }
      positions[slot] = Position(shape: shape, index: index)
    }
    return body(&dictionary.values[index])
  }

  /// Runs `body` on the entry of `key`, inserted as `initial()` when absent.
  mutating func update<R>(_ key: Key, initial: @autoclosure () -> Value, _ body: (inout Value) -> R) -> R {
    if dictionary.index(forKey: key) == nil { shape &+= 1 }
    return body(&dictionary[key, default: initial()])
  }

  mutating func removeValue(forKey key: Key) {
    if dictionary.removeValue(forKey: key) != nil { shape &+= 1 }
  }
}

extension SlottedMap: Equatable where Value: Equatable {
  /// Equal entries; remembered positions are not part of the value.
  static func == (lhs: SlottedMap, rhs: SlottedMap) -> Bool { lhs.dictionary == rhs.dictionary }
}

extension SlottedMap: Sendable where Key: Sendable, Value: Sendable {}
