/// Where an incremental run leaves off, for a platform that asks "from this second on"
/// (Meta's `since`, Shopify's `created_at_min`): the newest record's second and the ids of
/// the records at it, which the next run skips. At most `capacity` ids, each without the
/// bookmark's separators; past that the boundary overflows, and the next run starts after
/// the second instead, so none of its records is counted again (one created at that second
/// after this run is then not read). Keeping the second re-counted every record it could not
/// name, every run.
struct SecondBoundary: Sendable {
  /// A bookmark travels in every task's spec, under the line limit.
  static let capacity = 100
  /// Characters an id may not hold (the bookmark's separators).
  let separators: Set<Character>
  private(set) var seconds: Int64?
  private(set) var ids: [String] = []
  private(set) var overflowed = false

  init(separators: Set<Character>) {
    self.separators = separators
  }

  /// Takes a record at `seconds` (read, or skipped as read before); true when it is the
  /// first of a newer second.
  @discardableResult
  mutating func take(seconds: Int64, id: String) -> Bool {
    var newer = false
    if seconds > self.seconds ?? .min {
      self.seconds = seconds
      ids = []
      overflowed = false
      newer = true
    }
    guard seconds == self.seconds else { return newer }
    if ids.count < Self.capacity, !id.isEmpty, !id.contains(where: separators.contains) {
      ids.append(id)
    } else {
      overflowed = true
    }
    return newer
  }
}
