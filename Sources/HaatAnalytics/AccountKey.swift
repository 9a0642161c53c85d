/// One platform account: the key most reports group by. Ordered by UTF-8 bytes, platform
/// first, as every report's rows are (docs/formats.md).
struct AccountKey: Hashable, Comparable, Sendable {
  var platform: String
  var account: String

  static func < (lhs: AccountKey, rhs: AccountKey) -> Bool {
    if lhs.platform != rhs.platform { return lhs.platform.utf8.lexicographicallyPrecedes(rhs.platform.utf8) }
    return lhs.account.utf8.lexicographicallyPrecedes(rhs.account.utf8)
  }
}
