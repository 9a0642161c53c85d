import Foundation
import Synchronization

/// Meta's Graph API as the fixture server plays it, under `/meta/vNN.0/…`. Shapes follow
/// Meta's published references (cited in docs/fixtures.md): `GET /{page-id}/posts` and
/// `GET /{ig-user-id}/media` with
/// field expansion, cursor paging, lifetime insights, the error object and the usage
/// headers. Posts are generated from the page id, so a test knows every value without
/// parsing a response (`MetaGraphFixture.post`).
public final class MetaGraphFixture: Sendable {
  /// What a test may change while the server runs.
  public struct Settings: Sendable {
    /// Posts each Page has.
    public var postsPerPage = 250
    /// Posts published since: newer than post 0, with indexes -1, -2, … (a test adds some
    /// between two runs of an incremental source).
    public var newPosts = 0
    /// Tokens that are accepted (as `Authorization: Bearer` or `access_token`).
    public var tokens: Set<String> = ["fixture-meta-token"]
    /// Tokens answered with error 190 / subcode 463 (expired).
    public var expiredTokens: Set<String> = ["fixture-meta-expired"]
    /// Metrics the Pages refuse with error 100 (besides every `post_impressions*`, which
    /// Meta removed on 2025-11-15).
    public var refusedMetrics: Set<String> = []
    /// Requests per second a token may make; past it, error 80001 with the usage headers.
    public var requestsPerSecond: Int? = nil
    /// Every how many pages an empty page (with `next`) is served first: Meta documents
    /// that a page may be empty and still not be the last.
    public var emptyPageEvery = 2
    /// The last page's `next` leads back to the first page, a paging loop (a hostile or
    /// broken platform): the worker must stop at the repeat, not run to its page bound.
    public var pagingLoops = false

    public init() {}
  }

  public let settings = Mutex(Settings())
  /// When each accepted token's requests arrived (ms since the epoch), and how many were
  /// refused as too many: the server's own log, for rate tests.
  private let arrivals = Mutex<[String: [Int64]]>([:])
  private let throttledCount = Atomic<Int>(0)

  /// The most requests one second (of the wall clock) saw with `token`.
  public func busiestSecond(token: String) -> Int {
    let seconds = arrivals.withLock { $0[token] ?? [] }.map { $0 / 1000 }
    return Dictionary(grouping: seconds, by: { $0 }).values.map(\.count).max() ?? 0
  }

  /// The path and query of every request under `/meta/`, in order (tests read what was
  /// asked, e.g. a `since`).
  public var requestURIs: [String] { uris.withLock { $0 } }
  private let uris = Mutex<[String]>([])

  /// Requests with `token` so far.
  public func requests(token: String) -> Int { arrivals.withLock { $0[token]?.count ?? 0 } }

  /// Requests refused with error 80001 so far.
  public var throttled: Int { throttledCount.load(ordering: .relaxed) }
  /// Requests per token per second, for the throttle.
  private let window = Mutex<[String: (second: Int64, count: Int)]>([:])

  init() {}

  /// The newest post's time; post `i` is `i` × 7 hours older.
  public static let newestEpoch: Int64 = 1_790_000_000  // 2026-09-21T13:33:20Z

  /// Post `index` (0 = the newest of the first `postsPerPage`; negative: published since)
  /// of Page `page`, as generated.
  public struct Post: Sendable, Equatable {
    public var id: String
    public var createdEpoch: Int64
    /// photo, video, album, link, or nil for a text post.
    public var attachment: String?
    public var reactions: UInt64
    public var comments: UInt64
    /// nil: nobody shared it (Meta leaves `shares` out).
    public var shares: UInt64?
    public var mediaView: UInt64
    public var uniqueView: UInt64
    public var clicks: UInt64
    /// Instagram: saves; whether the owner hides the like count; whether Meta has no
    /// insights for it yet (an empty list, not zeros).
    public var saved: UInt64
    public var likesHidden: Bool
    public var insightsMissing: Bool
  }

  public static func post(page: String, index: Int) -> Post {
    let salt = UInt64(page.utf8.reduce(0) { ($0 &* 31 &+ Int($1)) & 0xFFFF })
    let i = UInt64(bitPattern: Int64(index))
    let attachments: [String?] = ["photo", "video", nil, "album", "link"]
    let reactions = (i &* 37 &+ salt) % 500
    let shareCount = (i &* 13 &+ salt) % 9
    let mediaView = reactions * 20 + (i &* 7) % 100
    return Post(
      id: "\(page)_\(1000 + index)", createdEpoch: newestEpoch - Int64(index) * 7 * 3600,
      attachment: attachments[cycle(index, attachments.count)], reactions: reactions, comments: (i &* 11 &+ salt) % 60,
      shares: shareCount == 0 ? nil : shareCount, mediaView: mediaView, uniqueView: mediaView * 3 / 5,
      clicks: (i &+ salt) % 50, saved: (i &* 5 &+ salt) % 40, likesHidden: cycle(index, 7) == 3,
      insightsMissing: cycle(index, 11) == 5)
  }

  /// `index` modulo `count`, never negative (posts newer than the first have negative indexes).
  static func cycle(_ index: Int, _ count: Int) -> Int { ((index % count) + count) % count }

  /// Instagram media types, by index.
  public static func igMediaType(index: Int) -> String {
    ["IMAGE", "VIDEO", "CAROUSEL_ALBUM"][cycle(index, 3)]
  }

  /// Answers a request under `/meta/`: status, headers, body.
  func answer(path: String, query: [String: String], authorization: String, host: String) -> (
    Int, [(String, String)], String
  ) {
    let settings = self.settings.withLock { $0 }
    uris.withLock {
      $0.append(path + "?" + query.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "&"))
    }
    let parts = path.split(separator: "/").map(String.init)  // ["meta", "v21.0", page, "posts"]
    var token = query["access_token"] ?? ""
    for prefix in ["Bearer ", "OAuth "] where authorization.hasPrefix(prefix) {
      token = String(authorization.dropFirst(prefix.count))
    }
    let appUsage = ("X-App-Usage", #"{"call_count":12,"total_cputime":3,"total_time":4}"#)
    if settings.expiredTokens.contains(token) {
      return Self.error(
        400, code: 190, subcode: 463, type: "OAuthException",
        message:
          "Error validating access token: Session has expired on Sunday, 20-Sep-26 10:00:00 PDT. The current time is Monday, 21-Sep-26 10:00:00 PDT.",
        headers: [
          appUsage, ("WWW-Authenticate", #"OAuth "Facebook Platform" "invalid_token" "Error validating access token""#),
        ])
    }
    guard settings.tokens.contains(token) else {
      return Self.error(
        400, code: 190, subcode: 467, type: "OAuthException", message: "Invalid OAuth access token.",
        headers: [appUsage])
    }
    let arrived = Int64(Date().timeIntervalSince1970 * 1000)
    arrivals.withLock { $0[token, default: []].append(arrived) }
    if let limit = settings.requestsPerSecond {
      let second = arrived / 1000
      let count = window.withLock { window -> Int in
        let seen = window[token].flatMap { $0.second == second ? $0.count : nil } ?? 0
        window[token] = (second, seen + 1)
        return seen + 1
      }
      if count > limit {
        throttledCount.add(1, ordering: .relaxed)
        let usage =
          #"{"\#(parts.count > 2 ? parts[2] : "0")":[{"type":"pages","call_count":100,"total_cputime":40,"total_time":45,"estimated_time_to_regain_access":1}]}"#
        return Self.error(
          400, code: 80001, subcode: nil, type: "OAuthException",
          message:
            "(#80001) There have been too many calls to this Page account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
          headers: [appUsage, ("X-Business-Use-Case-Usage", usage)])
      }
    }
    guard parts.count == 4, parts[3] == "posts" || parts[3] == "media" else {
      return Self.error(
        400, code: 100, subcode: 33, type: "GraphMethodException",
        message:
          "Unsupported get request. Object with ID '\(parts.dropFirst(2).joined(separator: "/"))' does not exist, cannot be loaded due to missing permissions, or does not support this operation.",
        headers: [appUsage])
    }
    let page = parts[2]
    let instagram = parts[3] == "media"
    let fields = query["fields"] ?? "id"
    let metrics = Self.metrics(in: fields)
    if !instagram,
      metrics.contains(where: { $0.hasPrefix("post_impressions") || settings.refusedMetrics.contains($0) })
    {
      return Self.error(
        400, code: 100, subcode: nil, type: "OAuthException",
        message: "(#100) The value must be a valid insights metric",
        headers: [appUsage])
    }
    // Instagram deprecated these for all versions on 2025-04-21 (views replaces them).
    if instagram,
      let refused = metrics.first(where: {
        ["impressions", "plays", "video_views"].contains($0) || settings.refusedMetrics.contains($0)
      })
    {
      return Self.error(
        400, code: 100, subcode: nil, type: "OAuthException",
        message:
          "(#100) Starting from version v22.0 and above, the \(refused) metric is no longer supported for the queried media",
        headers: [appUsage])
    }
    let limit = min(100, max(1, Int(query["limit"] ?? "") ?? 25))
    let since = Int64(query["since"] ?? "")
    // Newest first: the posts published since the test began (negative indexes), then the
    // first `postsPerPage`; `since` keeps those from that time on.
    let first = -settings.newPosts
    let total = (first..<settings.postsPerPage).prefix { index in
      since.map { Self.post(page: page, index: index).createdEpoch >= $0 } ?? true
    }.count
    // Cursors: "p<offset>" for a page of posts, "e<offset>" for the empty page before it.
    let after = query["after"] ?? ""
    var offset = 0
    var empty = false
    if !after.isEmpty {
      guard after.hasPrefix("p") || after.hasPrefix("e"), let value = pagingCount(after.dropFirst()) else {
        return Self.error(
          400, code: 100, subcode: nil, type: "OAuthException", message: "(#100) Invalid cursor: after",
          headers: [appUsage])
      }
      offset = value
      empty = after.hasPrefix("e")
    }
    let pageNumber = offset / limit
    if !empty, offset > 0, settings.emptyPageEvery > 0, pageNumber % settings.emptyPageEvery == 1 {
      // The empty page comes first; its `next` leads to the real one.
      return (
        200, [("Content-Type", "application/json; charset=UTF-8"), appUsage],
        Self.page(
          items: [], next: nextURL(host: host, path: path, query: query, after: "e\(offset)"), after: "e\(offset)")
      )
    }
    let end = min(total, offset + limit)
    let items = (offset..<max(offset, end)).map { $0 + first }.map { index in
      instagram
        ? Self.mediaJSON(Self.post(page: page, index: index), index: index, metrics: metrics)
        : Self.postJSON(Self.post(page: page, index: index), metrics: metrics)
    }
    let next =
      end < total
      ? nextURL(host: host, path: path, query: query, after: "p\(end)")
      : settings.pagingLoops ? nextURL(host: host, path: path, query: query, after: "p0") : nil
    return (
      200, [("Content-Type", "application/json; charset=UTF-8"), appUsage],
      Self.page(items: items, next: next, after: "p\(end)")
    )
  }

  private func nextURL(host: String, path: String, query: [String: String], after: String) -> String {
    var next = query
    next["after"] = after
    let encoded = next.sorted { $0.key < $1.key }.map { key, value in
      var allowed = CharacterSet.alphanumerics
      allowed.insert(charactersIn: "-._~")
      return "\(key)=\(value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value)"
    }
    return "http://\(host)" + path + "?" + encoded.joined(separator: "&")
  }

  static func metrics(in fields: String) -> [String] {
    guard let start = fields.range(of: "insights.metric(") else { return [] }
    let rest = fields[start.upperBound...]
    guard let close = rest.firstIndex(of: ")") else { return [] }
    return rest[..<close].split(separator: ",").map { String($0) }
  }

  static func page(items: [String], next: String?, after: String) -> String {
    var paging = #""cursors":{"before":"QVFIUmJlZm9yZQ","after":"\#(after)"}"#
    if let next { paging += #","next":"\#(next)""# }
    return #"{"data":[\#(items.joined(separator: ","))],"paging":{\#(paging)}}"#
  }

  static func postJSON(_ post: Post, metrics: [String]) -> String {
    let created = Self.graphTime(post.createdEpoch)
    var fields = [#""id":"\#(post.id)""#, #""created_time":"\#(created)""#]
    if let attachment = post.attachment {
      fields.append(#""attachments":{"data":[{"media_type":"\#(attachment)"}]}"#)
    } else {
      // A JSON escape (\n) and non-Latin text, as real captions have.
      fields.append(#""message":"Eid sale, 20% off 🎉 আজই\nনতুন""#)
    }
    if let shares = post.shares { fields.append(#""shares":{"count":\#(shares)}"#) }
    fields.append(#""reactions":{"data":[],"summary":{"total_count":\#(post.reactions)}}"#)
    fields.append(
      #""comments":{"data":[],"summary":{"order":"ranked","total_count":\#(post.comments),"can_comment":true}}"#)
    if !metrics.isEmpty {
      var insights: [String] = []
      for metric in metrics {
        let value: String
        switch metric {
        case "post_media_view": value = String(post.mediaView)
        case "post_total_media_view_unique": value = String(post.uniqueView)
        case "post_clicks": value = String(post.clicks)
        case "post_reactions_by_type_total": value = #"{"like":\#(post.reactions)}"#
        default: continue
        }
        insights.append(
          #"{"name":"\#(metric)","period":"lifetime","values":[{"value":\#(value)}],"title":"Lifetime \#(metric)","description":"Lifetime: \#(metric)","id":"\#(post.id)/insights/\#(metric)/lifetime"}"#
        )
      }
      fields.append(#""insights":{"data":[\#(insights.joined(separator: ","))]}"#)
    }
    return "{" + fields.joined(separator: ",") + "}"
  }

  static func mediaJSON(_ post: Post, index: Int, metrics: [String]) -> String {
    let created = Self.graphTime(post.createdEpoch)
    var fields = [
      #""id":"\#(post.id)""#, #""timestamp":"\#(created)""#, #""media_type":"\#(igMediaType(index: index))""#,
      #""media_product_type":"\#(cycle(index, 3) == 1 ? "REELS" : "FEED")""#, #""comments_count":\#(post.comments)"#,
    ]
    // Left out when the owner hides like counts.
    if !post.likesHidden { fields.append(#""like_count":\#(post.reactions)"#) }
    if !metrics.isEmpty {
      var insights: [String] = []
      for metric in metrics where !post.insightsMissing {
        let value: UInt64
        switch metric {
        case "views": value = post.mediaView
        case "reach": value = post.uniqueView
        case "saved": value = post.saved
        case "shares": value = post.shares ?? 0
        default: continue
        }
        insights.append(
          #"{"name":"\#(metric)","period":"lifetime","values":[{"value":\#(value)}],"title":"\#(metric)","description":"\#(metric)","id":"\#(post.id)/insights/\#(metric)/lifetime"}"#
        )
      }
      fields.append(#""insights":{"data":[\#(insights.joined(separator: ","))]}"#)
    }
    return "{" + fields.joined(separator: ",") + "}"
  }

  /// Graph time: `2019-01-02T18:31:28+0000`.
  static func graphTime(_ epoch: Int64) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(epoch)))
      .replacingOccurrences(of: "Z", with: "+0000")
  }

  static func error(
    _ status: Int, code: Int, subcode: Int?, type: String, message: String, headers: [(String, String)]
  ) -> (Int, [(String, String)], String) {
    let escaped = message.replacingOccurrences(of: "\"", with: "\\\"")
    var body = #"{"error":{"message":"\#(escaped)","type":"\#(type)","code":\#(code)"#
    if let subcode { body += #","error_subcode":\#(subcode)"# }
    body += #","fbtrace_id":"AbCdEfGhIjK"}}"#
    return (status, [("Content-Type", "application/json; charset=UTF-8")] + headers, body)
  }
}
