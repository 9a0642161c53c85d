import Foundation
import HaatCore
import HaatProtocol

extension SourceKind {
  /// A Pinterest account's pins with their lifetime metrics, from the API v5.
  public static let pinterestPins = SourceKind("pinterest_pins", PinterestPinsConnector.self)
}

/// A Pinterest account's pins: `GET {url}/pins?page_size=250&pin_metrics=true`
/// (operation `pins/list` of Pinterest's OpenAPI description, `pinterest/api-description`
/// `v5/openapi.yaml`), where `url` is the API base (default `https://api.pinterest.com/v5`)
/// and the token (Bearer) is the account's. Pages follow the answer's `bookmark` until it
/// is null or absent.
///
/// A pin becomes a post: `created_at` (Pinterest writes no offset: UTC), the media type
/// from `media.media_type` (`image`, `video`, `multiple_images` → carousel), and from
/// `pin_metrics.lifetime_metrics`: `impression` → impressions, `pin_click` → clicks,
/// `reaction` → likes, `comment` → comments, `save` → saves. A pin without metrics has them
/// unknown, not zero. An error is `{"code", "message"}`; 401 is a rejected token.
public struct PinterestPinsConnector: JSONPageConnector {
  public static let kind = SourceKind.pinterestPins
  public static let summary = "a Pinterest account's pins and lifetime metrics from the API v5 (account: a label)"
  public static let records: Set<RecordType> = [.post]
  public static let hosts = ["api.pinterest.com"]
  /// Standard access: 100 requests a second per user and app; the org_read category is
  /// lower per minute, so a tenth of that.
  public static let defaultRequestsPerSecond: Double? = 10
  public static let defaultBaseURL = "https://api.pinterest.com/v5"
  static let pageSize = 250

  public static func check(_ source: inout Source, field: String) throws(HaatError) {
    if source.url.isEmpty { source.url = defaultBaseURL }
    try SourceChecks.url(source.url, field: "\(field).url", kind: kind)
    guard !source.account.isEmpty else {
      throw HaatError(.badSpec, "names the account the pins belong to (the token's)", field: "\(field).account")
    }
    if source.platform.isEmpty { source.platform = "pinterest" }
  }

  private let source: Source
  private let limits: ReadLimits
  public var pageBuffer: PageBuffer
  private var index: UInt64 = 0
  public private(set) var counts = ReadCounts(distinct: true)

  public init(task: TaskSpec, limits: ReadLimits) {
    source = task.source
    self.limits = limits
    pageBuffer = PageBuffer(limit: limits.maxPageBytes)
  }

  public mutating func firstRequest() throws(ExportError) -> PageRequest? { request(bookmark: nil) }

  private func request(bookmark: String?) -> PageRequest {
    var url = source.url
    while url.hasSuffix("/") { url.removeLast() }
    url += "/pins?page_size=\(Self.pageSize)&pin_metrics=true"
    if let bookmark {
      url += "&bookmark=" + (bookmark.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
    }
    return PageRequest(url: url)
  }

  public mutating func pageEnded(_ response: PageResponse, emit: (CanonicalRecord) -> Bool) throws(ExportError)
    -> PageRequest?
  {
    let body = pageBuffer.take()
    guard let page = JSONValue.parse(body), let items = page["items"]?.array else {
      throw ExportError("a Pinterest page has no \"items\" list (\(body.count) bytes, HTTP \(response.status))")
    }
    for item in items {
      index += 1
      counts.take(post(from: item).map { .post($0) }, row: index, keep: limits.maxProblems, emit: emit)
    }
    guard let bookmark = page["bookmark"]?.string, !bookmark.isEmpty else { return nil }
    return request(bookmark: bookmark)
  }

  public mutating func pageFailed(_ response: PageResponse, body: [UInt8]) throws(ExportError) -> PageRequest? {
    let said = JSONValue.parse(body).map { "Pinterest error \($0["code"]?.count ?? 0): \($0["message"]?.string ?? "")" }
    if response.status == 401, let said {
      throw ExportError("\(said); renew the credential on the workers", code: "token_rejected")
    }
    if response.status == 403, let said { throw ExportError(said, code: "forbidden") }
    return nil  // the fetcher's error (429, 5xx) stands
  }

  private func post(from item: JSONValue) -> Result<PostRecord, RowProblem.Field> {
    guard item.object != nil else { return .failure(.init("", .notAnObject)) }
    guard let id = item["id"]?.string, !id.isEmpty else { return .failure(.init("id", .missing)) }
    guard let written = item["created_at"]?.string else { return .failure(.init("created_at", .missing)) }
    guard let createdAt = Values.looseTimestamp(written) else {
      return .failure(.init("created_at", .invalidTimestamp))
    }
    let media: MediaType
    switch item["media"]?["media_type"]?.string?.lowercased() {
    case "image"?: media = .image
    case "video"?: media = .video
    case "multiple_images"?, "multiple_videos"?, "multiple_mixed"?: media = .carousel
    case nil: media = .other
    default: media = .other
    }
    var post = PostRecord(
      platform: source.platform.isEmpty ? "pinterest" : source.platform, account: source.account, id: id,
      createdAt: createdAt, mediaType: media)
    if let lifetime = item["pin_metrics"]?["lifetime_metrics"], lifetime.object != nil {
      for (name, keyPath) in [
        ("impression", \PostRecord.impressions), ("pin_click", \.clicks), ("reaction", \.likes),
        ("comment", \.comments), ("save", \.saves),
      ] {
        guard let value = lifetime[name] else { continue }
        guard let count = value.count else {
          return .failure(.init("pin_metrics.lifetime_metrics.\(name)", .notAnInteger))
        }
        post[keyPath: keyPath] = count
      }
    }
    return .success(post)
  }
}
