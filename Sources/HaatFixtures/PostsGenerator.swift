/// Deterministic canonical posts CSV of any size, generated row by row (for streaming and
/// load tests: nothing is kept in memory).
public struct PostsGenerator: Sendable {
  public static let header =
    "platform,account,id,created_at,media_type,likes,comments,shares,saves,reach,impressions,video_views,clicks,caption\n"

  static let platforms = ["facebook", "instagram", "tiktok", "youtube", "x", "linkedin", "pinterest"]
  static let accounts = ["dhaka_threads", "karachi_kitchen", "lahore_looms", "chittagong_tea"]
  static let media = ["text", "image", "video", "carousel", "link"]
  static let captions = [
    "নতুন কালেকশন এসেছে", "نیا مجموعہ آ گیا ہے", "Eid sale, 20% off 🎉", "\"Limited\" drop, today only",
    "Chai time ☕", "Order before 2pm 🛵",
  ]

  /// Captions as real exports have them too: over several lines, with commas and quotes
  /// (a byte-range split must not start a record inside one).
  static let multilineCaptions = [
    "New drop 🎉\nSizes S, M, L\nShip today", "\"Best seller\",\nback in stock", "Line one\r\nline two, \"three\"\n",
  ]

  public let seed: UInt64
  /// How many accounts rows spread over (`acct_0` …), or 0 for the four named ones: many
  /// accounts make results of many cells (platform × account × media type).
  public let accounts: UInt64
  /// Whether some captions span lines.
  public let multiline: Bool

  public init(seed: UInt64 = 1, accounts: UInt64 = 0, multiline: Bool = false) {
    self.seed = seed
    self.accounts = accounts
    self.multiline = multiline
  }

  /// Row `index` (from 0), newline included.
  public func row(_ index: UInt64) -> String {
    var state = (index &+ 1) &* 0x9E37_79B9_7F4A_7C15 ^ seed
    func next() -> UInt64 {
      // splitmix64
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    let platform = Self.platforms[Int(next() % UInt64(Self.platforms.count))]
    let account =
      accounts > 0 ? "acct_\(next() % accounts)" : Self.accounts[Int(next() % UInt64(Self.accounts.count))]
    let media = Self.media[Int(next() % UInt64(Self.media.count))]
    let day = 1 + next() % 28
    let hour = next() % 24
    let minute = next() % 60
    let reach = 100 + next() % 50_000
    let impressions = reach + next() % 20_000
    let likes = next() % (reach / 10 + 1)
    let comments = next() % (likes / 5 + 1)
    let shares = next() % (likes / 8 + 1)
    let saves = next() % (likes / 6 + 1)
    let views = media == "video" ? String(reach * 2) : ""
    let clicks = next() % 3 == 0 ? "" : String(next() % (reach / 20 + 1))
    // Some rows leave reach unknown, as X and LinkedIn exports do.
    let reachText = platform == "x" || platform == "linkedin" ? "" : String(reach)
    let captions = multiline ? Self.captions + Self.multilineCaptions : Self.captions
    let caption = captions[Int(next() % UInt64(captions.count))]
    let quoted = "\"" + caption.replacingQuotes() + "\""
    let hh = hour < 10 ? "0\(hour)" : "\(hour)"
    let mm = minute < 10 ? "0\(minute)" : "\(minute)"
    let dd = day < 10 ? "0\(day)" : "\(day)"
    return
      "\(platform),\(account),g\(index),2026-05-\(dd)T\(hh):\(mm):00+06:00,\(media),\(likes),\(comments),\(shares),\(saves),\(reachText),\(impressions),\(views),\(clicks),\(quoted)\n"
  }
}

extension String {
  fileprivate func replacingQuotes() -> String {
    var out = ""
    for character in self {
      if character == "\"" { out += "\"\"" } else { out.append(character) }
    }
    return out
  }
}
