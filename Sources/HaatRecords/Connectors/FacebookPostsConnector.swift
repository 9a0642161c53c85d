import Foundation
import HaatCore
import HaatProtocol

extension SourceKind {
  /// A Facebook Page's posts with their reactions, comments, shares and insights, from the
  /// Graph API.
  public static let facebookPosts = SourceKind("facebook_posts", FacebookPostsConnector.self)
}

/// A Facebook Page's posts, from `GET {url}/{account}/posts` on Meta's Graph API
/// (https://developers.facebook.com/docs/graph-api/reference/page/feed/), cursor-paged.
/// `account` is the Page id; `url` the Graph base (default `https://graph.facebook.com/v21.0`,
/// a fixture server in tests). Each post becomes a canonical `Post`:
///
/// - likes: `reactions.summary.total_count` (all reaction types, as Meta's own "likes" count does);
///   comments: `comments.summary.total_count`; shares: `shares.count` (absent: 0);
/// - impressions: the lifetime `post_media_view` insight — Meta removed `post_impressions*`
///   on 2025-11-15 in its favour; a page still answering `post_impressions` fills the same
///   series; reach: `post_total_media_view_unique` (or the older `post_impressions_unique`);
///   clicks: `post_clicks`;
/// - media type: the first attachment's `media_type` (photo, video, album, link, share);
///   none is text.
///
/// One metric the Page refuses fails Meta's whole call (error 100): the connector asks again
/// without it and reports that as a row-0 problem. The bookmark is the newest post's time
/// (Unix seconds); a task given one asks only for posts `since` then.
public struct FacebookPostsConnector: Connector {
  public static let kind = SourceKind.facebookPosts
  public static let summary = "a Facebook Page's posts and insights from Meta's Graph API (account: the Page id)"
  public static let records: Set<RecordType> = [.post]
  static let metrics = ["post_media_view", "post_total_media_view_unique", "post_clicks"]
  static let pageSize = 100

  public static func check(_ source: inout Source, field: String) throws(HaatError) {
    if source.url.isEmpty { source.url = MetaGraph.defaultBaseURL }
    try SourceChecks.url(source.url, field: "\(field).url", kind: kind)
    guard MetaGraph.isNodeID(source.account) else {
      throw HaatError(
        .badSpec, "must be the Page's id (letters, digits, \"_\" or \".\"), not \"\(source.account)\"",
        field: "\(field).account")
    }
    if source.platform.isEmpty { source.platform = "facebook" }
  }

  private let source: Source
  private let limits: ReadLimits
  private let since: String
  private var metrics = Self.metrics
  private var buffer: PageBuffer
  private var index: UInt64 = 0
  private var newest: Int64?
  public private(set) var counts = ReadCounts()

  public init(task: TaskSpec, limits: ReadLimits) {
    source = task.source
    self.limits = limits
    since = task.bookmark.allSatisfy(\.isNumber) ? task.bookmark : ""
    buffer = PageBuffer(limit: limits.maxPageBytes)
  }

  public var bookmark: String { newest.map(String.init) ?? since }

  public mutating func firstRequest() throws(ExportError) -> PageRequest? {
    PageRequest(url: firstURL())
  }

  private func firstURL() -> String {
    var fields = [
      "id", "created_time", "attachments{media_type}", "shares", "reactions.summary(total_count).limit(0)",
      "comments.summary(total_count).limit(0)",
    ]
    if !metrics.isEmpty { fields.append("insights.metric(\(metrics.joined(separator: ",")))") }
    var url = source.url
    while url.hasSuffix("/") { url.removeLast() }
    url += "/\(source.account)/posts?fields=" + Self.encode(fields.joined(separator: ","))
    url += "&limit=\(Self.pageSize)"
    if !since.isEmpty { url += "&since=\(since)" }
    return url
  }

  static func encode(_ text: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~,()")
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
  }

  public mutating func pageStarted(status: Int, contentType: String?) throws(ExportError) {}

  public mutating func feed(_ chunk: UnsafeRawBufferPointer, emit: (CanonicalRecord) -> Bool) throws(ExportError) {
    try buffer.append(chunk)
  }

  public mutating func pageEnded(_ response: PageResponse, emit: (CanonicalRecord) -> Bool) throws(ExportError)
    -> PageRequest?
  {
    let body = buffer.take()
    guard let page = JSONValue.parse(body) else {
      throw ExportError("a Graph page is not JSON (\(body.count) bytes, HTTP \(response.status))")
    }
    if let error = MetaGraph.classify(response, body: body) { throw error }
    guard let items = page["data"]?.array else {
      throw ExportError("a Graph page has no \"data\" list")
    }
    for item in items {
      index += 1
      switch post(from: item) {
      case .success(let post):
        if emit(.post(post)) {
          counts.records += 1
          newest = max(newest ?? post.createdAt.epochSeconds, post.createdAt.epochSeconds)
        } else {
          counts.bad(RowProblem(row: index, column: "", reason: .outOfRange), keep: limits.maxProblems)
        }
      case .failure(let problem):
        counts.bad(problem, keep: limits.maxProblems)
      }
    }
    return MetaGraph.next(page).map { PageRequest(url: $0) }
  }

  public mutating func pageFailed(_ response: PageResponse, body: [UInt8]) throws(ExportError) -> PageRequest? {
    if let metric = MetaGraph.refusedMetric(body, among: metrics), counts.problems.count < 100 {
      metrics.removeAll { $0 == metric }
      counts.problems.append(
        RowProblem(row: 0, column: "insights.metric(\(metric))", reason: .refusedByPlatform))
      return PageRequest(url: firstURL())
    }
    if let error = MetaGraph.classify(response, body: body) { throw error }
    return nil
  }

  private func post(from item: JSONValue) -> Result<PostRecord, RowProblem> {
    func problem(_ column: String, _ reason: Values.Problem) -> Result<PostRecord, RowProblem> {
      .failure(RowProblem(row: index, column: column, reason: reason))
    }
    guard item.object != nil else { return problem("", .notAnObject) }
    guard let id = item["id"]?.string, !id.isEmpty else { return problem("id", .missing) }
    guard !Values.hasControl(id.utf8) else { return problem("id", .controlCharacter) }
    guard let written = item["created_time"]?.string else { return problem("created_time", .missing) }
    guard let (createdAt, createdAtText) = MetaGraph.timestamp(written) else {
      return problem("created_time", .invalidTimestamp)
    }
    var post = PostRecord(
      platform: source.platform.isEmpty ? "facebook" : source.platform, account: source.account, id: id,
      createdAt: createdAt, createdAtText: createdAtText, mediaType: Self.mediaType(item))
    post.likes = item["reactions"]?["summary"]?["total_count"]?.count
    post.comments = item["comments"]?["summary"]?["total_count"]?.count
    if let shares = item["shares"] {
      guard let count = shares["count"]?.count else { return problem("shares", .notAnInteger) }
      post.shares = count
    } else {
      // Meta leaves `shares` out of a post nobody shared.
      post.shares = 0
    }
    for insight in item["insights"]?["data"]?.array ?? [] {
      guard let name = insight["name"]?.string else { continue }
      // Lifetime values: one value, no end_time. An object value (reactions by type) is
      // not a count this record has.
      let value = insight["values"]?.array?.last?["value"]
      switch name {
      case "post_media_view", "post_impressions":
        guard let count = value?.count else { return problem("insights.\(name)", .notAnInteger) }
        post.impressions = count
      case "post_total_media_view_unique", "post_impressions_unique":
        guard let count = value?.count else { return problem("insights.\(name)", .notAnInteger) }
        post.reach = count
      case "post_clicks":
        guard let count = value?.count else { return problem("insights.\(name)", .notAnInteger) }
        post.clicks = count
      default: continue
      }
    }
    return .success(post)
  }

  static func mediaType(_ item: JSONValue) -> MediaType {
    guard let first = item["attachments"]?["data"]?.array?.first,
      let written = first["media_type"]?.string?.lowercased()
    else { return .text }
    switch written {
    case "photo": return .image
    case "video", "video_inline", "video_autoplay", "animated_image_video": return .video
    case "album": return .carousel
    case "link", "share": return .link
    default: return .other
    }
  }
}
