/// Adds held back, then applied in the order of the cells they go to. A kernel whose cells
/// are too many to stay in cache (best_time keeps tens of thousands, each with two sketches
/// on the heap) otherwise pays several cache misses per record, one after another; applied
/// in order, a cell's adds come together and the cells are walked front to back. Bounded:
/// at `capacity` entries the kernel applies them, so memory does not grow with the export.
struct DeferredAdds<Entry: Sendable>: Sendable {
  /// 2^17 entries: a few MiB, and a flush per 131,072 records.
  static var capacity: Int { 1 << 17 }

  private var positions: [Int32] = []
  private var entries: [Entry] = []

  init() {}

  var isEmpty: Bool { entries.isEmpty }
  var isFull: Bool { entries.count >= Self.capacity }

  /// Holds `entry` for the cell at `position` (≥ 0, below the count `drain` is given).
  mutating func append(_ entry: Entry, at position: Int) {
    if entries.isEmpty {
      positions.reserveCapacity(Self.capacity)
      entries.reserveCapacity(Self.capacity)
    }
    positions.append(Int32(truncatingIfNeeded: position))
    entries.append(entry)
  }

  /// Calls `body` once per position that has entries, by ascending position, with its
  /// entries in the order held, and empties the buffer. `cells` bounds the positions: a
  /// counting sort. A run per cell, not a call per entry: the cell is reached once.
  mutating func drain(cells: Int, _ body: (Int, UnsafeBufferPointer<Entry>) -> Void) {
    guard !entries.isEmpty else { return }
    var starts = [Int](repeating: 0, count: cells + 1)
    for position in positions { starts[Int(position) + 1] += 1 }
    for index in 1..<starts.count { starts[index] += starts[index - 1] }
    // Scattered into order, then read front to back: the stores go anywhere without
    // waiting, where reading through a list of indexes waited on a miss per entry.
    let count = entries.count
    var ends = starts
    let ordered = [Entry](unsafeUninitializedCapacity: count) { buffer, initialized in
      for index in 0..<count {
        let position = Int(positions[index])
        buffer.initializeElement(at: ends[position], to: entries[index])
        ends[position] += 1
      }
      initialized = count
    }
    ordered.withUnsafeBufferPointer { ordered in
      for position in 0..<cells where starts[position] < starts[position + 1] {
        body(position, UnsafeBufferPointer(rebasing: ordered[starts[position]..<starts[position + 1]]))
      }
    }
    positions.removeAll(keepingCapacity: true)
    entries.removeAll(keepingCapacity: true)
  }
}
