import Foundation
import HaatCore
import HaatProtocol

extension SourceKind {
  /// A YouTube channel's videos with their lifetime views, likes, comments and shares.
  public static let youtubeVideos = SourceKind("youtube_videos", YouTubeVideosConnector.self)
}

/// A YouTube channel's uploads with their metrics, from the Data API v3 and the Analytics
/// API v2 (Google's discovery documents for both):
///
/// 1. `GET {url}/channels?part=contentDetails&id={channel}`: the uploads playlist
///    (`relatedPlaylists.uploads`; the `UC`→`UU` shortcut is not documented);
/// 2. `GET {url}/playlistItems?part=contentDetails&playlistId=…&maxResults=50[&pageToken=…]`:
///    a page of video ids with `videoPublishedAt` (not `snippet.publishedAt`, which is
///    when the item joined the playlist); the end is a page without `nextPageToken`;
/// 3. `GET {analytics}/reports?ids=channel=={channel}&dimensions=video&metrics=views,likes,comments,shares&filters=video==ID,…&startDate=2005-04-23&endDate={today}`:
///    that page's lifetime metrics, a table (`columnHeaders` + `rows`) read by column name;
///    a video without a row had no views (Google leaves out rows without data), so zero.
///
/// `url` is the Data API base (default `https://www.googleapis.com/youtube/v3`); the
/// Analytics API is asked at `https://youtubeanalytics.googleapis.com/v2`, or, when `url`
/// names another host (a proxy, the fixture server), at `/youtubeanalytics/v2` on it.
/// Metrics may be numbers or integral floats (`18552.0`). Every video is `video`: the APIs
/// tell no Short apart. Google's error envelope is classified: 403 `quotaExceeded` (the
/// daily quota) retried after the quota's reset at midnight Pacific, 429 throttling, 401 a
/// rejected token, other 403s forbidden.
public struct YouTubeVideosConnector: JSONPageConnector {
  public static let kind = SourceKind.youtubeVideos
  public static let summary =
    "a YouTube channel's videos with lifetime views, likes, comments and shares (account: the channel id)"
  public static let records: Set<RecordType> = [.post]
  public static let hosts = ["www.googleapis.com", "youtubeanalytics.googleapis.com"]
  /// 10,000 quota units a day per project; a list call costs one.
  public static let defaultRequestsPerSecond: Double? = 5
  public static let defaultBaseURL = "https://www.googleapis.com/youtube/v3"
  static let analyticsBaseURL = "https://youtubeanalytics.googleapis.com/v2"
  /// The day YouTube's first video went up: the start of a lifetime report.
  static let firstDay = "2005-04-23"
  static let pageSize = 50

  public static func check(_ source: inout Source, field: String) throws(HaatError) {
    if source.url.isEmpty { source.url = defaultBaseURL }
    try SourceChecks.url(source.url, field: "\(field).url", kind: kind)
    guard source.account.hasPrefix("UC"), source.account.count == 24,
      source.account.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
    else {
      throw HaatError(
        .badSpec, "must be the channel id (UC and 22 more characters), not \"\(source.account)\"",
        field: "\(field).account")
    }
    if source.platform.isEmpty { source.platform = "youtube" }
  }

  private enum Phase {
    case channel
    case list
    case metrics(next: String?)
  }

  private let source: Source
  private let limits: ReadLimits
  private let today: String
  private var phase = Phase.channel
  private var playlist = ""
  private var pending: [(id: String, post: PostRecord, row: UInt64)] = []
  private var index: UInt64 = 0
  public var pageBuffer: PageBuffer
  public private(set) var counts = ReadCounts(distinct: true)

  public init(task: TaskSpec, limits: ReadLimits) {
    source = task.source
    self.limits = limits
    today = Days.text(Int(Date().timeIntervalSince1970 / 86_400))
    pageBuffer = PageBuffer(limit: limits.maxPageBytes)
  }

  private var base: String {
    var url = source.url
    while url.hasSuffix("/") { url.removeLast() }
    return url
  }

  private var analytics: String {
    guard let url = URL(string: base), let host = url.host, !host.hasSuffix("googleapis.com") else {
      return Self.analyticsBaseURL
    }
    let port = url.port.map { ":\($0)" } ?? ""
    return "\(url.scheme ?? "https")://\(host)\(port)/youtubeanalytics/v2"
  }

  public mutating func firstRequest() throws(ExportError) -> PageRequest? {
    PageRequest(url: "\(base)/channels?part=contentDetails&id=\(source.account)")
  }

  private func listRequest(_ token: String?) -> PageRequest {
    var url = "\(base)/playlistItems?part=contentDetails&playlistId=\(playlist)&maxResults=\(Self.pageSize)"
    if let token { url += "&pageToken=" + (token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "") }
    return PageRequest(url: url)
  }

  public mutating func pageEnded(_ response: PageResponse, emit: (CanonicalRecord) -> Bool) throws(ExportError)
    -> PageRequest?
  {
    let body = pageBuffer.take()
    guard let page = JSONValue.parse(body) else {
      throw ExportError("a YouTube answer is not JSON (\(body.count) bytes, HTTP \(response.status))")
    }
    switch phase {
    case .channel:
      guard let uploads = page["items"]?.array?.first?["contentDetails"]?["relatedPlaylists"]?["uploads"]?.string,
        MetaGraph.isNodeID(uploads.replacingOccurrences(of: "-", with: "_"))
      else { throw ExportError("YouTube knows no channel \(source.account), or it has no uploads playlist") }
      playlist = uploads
      phase = .list
      return listRequest(nil)
    case .list:
      for item in page["items"]?.array ?? [] {
        index += 1
        switch video(from: item) {
        case .success(let post): pending.append((post.id, post, index))
        case .failure(let problem): counts.take(.failure(problem), row: index, keep: limits.maxProblems, emit: emit)
        }
      }
      let next = page["nextPageToken"]?.string.flatMap { $0.isEmpty ? nil : $0 }
      guard !pending.isEmpty else { return next.map(listRequest) }
      phase = .metrics(next: next)
      let ids = pending.map(\.id).joined(separator: ",")
      return PageRequest(
        url: "\(analytics)/reports?ids=channel==\(source.account)&dimensions=video"
          + "&metrics=views,likes,comments,shares&filters=video==\(ids)&startDate=\(Self.firstDay)&endDate=\(today)"
          + "&maxResults=\(Self.pageSize)")
    case .metrics(let next):
      try merge(page, emit: emit)
      phase = .list
      return next.map(listRequest)
    }
  }

  /// The report's rows, by column name, onto the pending videos; a video without a row had
  /// no views.
  private mutating func merge(_ page: JSONValue, emit: (CanonicalRecord) -> Bool) throws(ExportError) {
    let headers = page["columnHeaders"]?.array?.compactMap { $0["name"]?.string } ?? []
    guard let videoColumn = headers.firstIndex(of: "video") else {
      throw ExportError("a YouTube Analytics report has no video column")
    }
    var rows: [String: [JSONValue]] = [:]
    // A video whose row has more or fewer cells than the header names is bad, not read as
    // a video without a row (zeros; a tester).
    var misshapen: Set<String> = []
    for row in page["rows"]?.array ?? [] {
      guard let cells = row.array, videoColumn < cells.count, let id = cells[videoColumn].string else { continue }
      if cells.count == headers.count { rows[id] = cells } else { misshapen.insert(id) }
    }
    let videos = pending
    pending = []
    for item in videos {
      var post = item.post
      var problem: RowProblem.Field?
      if misshapen.contains(item.id) { problem = .init("rows", .wrongFieldCount) }
      for (name, keyPath) in [
        ("views", \PostRecord.videoViews), ("likes", \.likes), ("comments", \.comments), ("shares", \.shares),
      ] {
        // A metric the report has no column for is unknown, for every video (it read as
        // 0 for those without a row: a tester).
        guard let column = headers.firstIndex(of: name) else { continue }
        guard let cells = rows[item.id] else {
          post[keyPath: keyPath] = 0
          continue
        }
        switch Self.count(cells[column]) {
        case .success(let value): post[keyPath: keyPath] = value
        case .failure(let reason): problem = problem ?? .init("rows.\(name)", reason)
        }
      }
      let result: Result<CanonicalRecord, RowProblem.Field> = problem.map { .failure($0) } ?? .success(.post(post))
      counts.take(result, row: item.row, keep: limits.maxProblems, emit: emit)
    }
  }

  /// A report cell: `41203` or `18552.0`.
  static func count(_ value: JSONValue) -> Result<UInt64?, Values.Problem> {
    switch value {
    case .count(let number): return .success(number)
    case .number(let number):
      guard number >= 0 else { return .failure(.negative) }
      guard number == number.rounded(), number < 1.8e19 else { return .failure(.notAnInteger) }
      return .success(UInt64(number))
    case .null: return .success(nil)
    default: return APIValues.count(value)
    }
  }

  private func video(from item: JSONValue) -> Result<PostRecord, RowProblem.Field> {
    guard let details = item["contentDetails"], details.object != nil else {
      return .failure(.init("contentDetails", .missing))
    }
    guard let id = details["videoId"]?.string, !id.isEmpty, id.allSatisfy({ $0.isASCII && $0 != "," && $0 != "&" })
    else { return .failure(.init("contentDetails.videoId", .missing)) }
    // A private or deleted upload has no publish time.
    guard let written = details["videoPublishedAt"]?.string else {
      return .failure(.init("contentDetails.videoPublishedAt", .missing))
    }
    guard let at = Values.looseTimestamp(written) else {
      return .failure(.init("contentDetails.videoPublishedAt", .invalidTimestamp))
    }
    return .success(
      PostRecord(
        platform: source.platform.isEmpty ? "youtube" : source.platform, account: source.account, id: id,
        createdAt: at, mediaType: .video))
  }

  public mutating func pageFailed(_ response: PageResponse, body: [UInt8]) throws(ExportError) -> PageRequest? {
    guard let error = JSONValue.parse(body)?["error"] else { return nil }
    let reason = error["errors"]?.array?.first?["reason"]?.string ?? ""
    let said = "YouTube error \(response.status) \(reason): \(error["message"]?.string ?? "")"
    switch (response.status, reason) {
    case (403, "quotaExceeded"), (403, "dailyLimitExceeded"):
      // The daily quota resets at midnight Pacific time: 08:00 UTC at the latest.
      let now = Int64(Date().timeIntervalSince1970)
      let reset = (now - 8 * 3600) / 86_400 * 86_400 + 86_400 + 8 * 3600
      throw ExportError(
        said, code: "quota_exceeded", retryable: true, retryAfterMs: UInt64(max(60, reset - now)) * 1000)
    case (429, _), (403, "rateLimitExceeded"), (403, "userRateLimitExceeded"):
      throw ExportError(said, code: "throttled", retryable: true, retryAfterMs: 1_000)
    case (401, _):
      throw ExportError("\(said); renew the credential on the workers", code: "token_rejected")
    case (403, _):
      throw ExportError(said, code: "forbidden")
    default:
      return nil
    }
  }
}
