import Foundation
import HaatCore
import HaatProtocol

extension SourceKind {
  /// A LinkedIn organization's posts with their lifetime share statistics.
  public static let linkedInPosts = SourceKind("linkedin_posts", LinkedInPostsConnector.self)
}

/// A LinkedIn organization's posts with their organic lifetime statistics, from the
/// versioned REST API (`url`: default `https://api.linkedin.com/rest`; `account`: the
/// organization id), alternating two calls per page:
///
/// 1. `GET {url}/posts?q=author&author=urn:li:organization:ID&count=50&start=N` lists posts
///    (Posts API); paging ends on a page shorter than `count` (LinkedIn's pagination
///    guide: `total` and `links` are not to be relied on);
/// 2. `GET {url}/organizationalEntityShareStatistics?q=organizationalEntity&…&shares=List(…)&ugcPosts=List(…)`
///    gives that page's posts' `totalShareStatistics`, matched back by the element's `share`
///    or `ugcPost` key, never by position; a post left out had no activity: zero counts, as
///    LinkedIn's docs say.
///
/// Every request carries `LinkedIn-Version` and `X-Restli-Protocol-Version: 2.0.0`. Only
/// `PUBLISHED` posts count. The media type comes from the content: `media.id`'s URN
/// (`urn:li:image:` → image, `urn:li:video:` → video), `multiImage` → carousel, `article`
/// → link, none → text. `likeCount` can be negative (unlikes of sponsored likes count as
/// organic): such a post's likes are unknown, noted, not a bad post. Times are epoch ms.
public struct LinkedInPostsConnector: JSONPageConnector {
  public static let kind = SourceKind.linkedInPosts
  public static let summary =
    "a LinkedIn organization's posts with lifetime share statistics (account: the organization id)"
  public static let records: Set<RecordType> = [.post]
  public static let hosts = ["api.linkedin.com"]
  /// LinkedIn's limits are daily and unpublished; a slow default spends them evenly.
  public static let defaultRequestsPerSecond: Double? = 2
  public static let defaultBaseURL = "https://api.linkedin.com/rest"
  static let version = "202506"
  static let pageSize = 50

  public static func check(_ source: inout Source, field: String) throws(HaatError) {
    if source.url.isEmpty { source.url = defaultBaseURL }
    try SourceChecks.url(source.url, field: "\(field).url", kind: kind)
    var id = source.account
    if id.hasPrefix("urn:li:organization:") { id.removeFirst("urn:li:organization:".count) }
    guard !id.isEmpty, id.allSatisfy({ $0.isASCII && $0.isNumber }) else {
      throw HaatError(
        .badSpec, "must be the organization id (digits), not \"\(source.account)\"", field: "\(field).account")
    }
    source.account = id
    if source.platform.isEmpty { source.platform = "linkedin" }
  }

  private let source: Source
  private let limits: ReadLimits
  private var start = 0
  /// The listed page's posts, waiting for their statistics.
  private var pending: [(urn: String, post: PostRecord, row: UInt64)] = []
  private var listedFull = false
  /// Whether the page in flight is a page of statistics (else a page of posts).
  private var readingStatistics = false
  private var index: UInt64 = 0
  public var pageBuffer: PageBuffer
  public private(set) var counts = ReadCounts(distinct: true)

  public init(task: TaskSpec, limits: ReadLimits) {
    source = task.source
    self.limits = limits
    pageBuffer = PageBuffer(limit: limits.maxPageBytes)
  }

  private var base: String {
    var url = source.url
    while url.hasSuffix("/") { url.removeLast() }
    return url
  }

  private var organization: String { "urn:li:organization:\(source.account)" }
  private static let headers = ["LinkedIn-Version: \(version)", "X-Restli-Protocol-Version: 2.0.0"]

  static func encode(_ urn: String) -> String {
    urn.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? urn
  }

  private func listRequest() -> PageRequest {
    PageRequest(
      url: "\(base)/posts?q=author&author=\(Self.encode(organization))&count=\(Self.pageSize)&start=\(start)",
      headers: Self.headers + ["X-RestLi-Method: FINDER"])
  }

  public mutating func firstRequest() throws(ExportError) -> PageRequest? { listRequest() }

  public mutating func pageEnded(_ response: PageResponse, emit: (CanonicalRecord) -> Bool) throws(ExportError)
    -> PageRequest?
  {
    let body = pageBuffer.take()
    guard let page = JSONValue.parse(body), let elements = page["elements"]?.array else {
      throw ExportError("a LinkedIn answer has no \"elements\" list (\(body.count) bytes, HTTP \(response.status))")
    }
    guard readingStatistics else { return try listed(elements, emit: emit) }
    readingStatistics = false
    try merge(elements, emit: emit)
    guard listedFull else { return nil }
    start += Self.pageSize
    return listRequest()
  }

  /// A page of posts: kept until their statistics come.
  private mutating func listed(_ elements: [JSONValue], emit: (CanonicalRecord) -> Bool) throws(ExportError)
    -> PageRequest?
  {
    listedFull = elements.count >= Self.pageSize
    for element in elements {
      index += 1
      switch post(from: element) {
      case .success(let item?): pending.append((item.urn, item.post, index))
      case .success(nil): break  // a draft or a post being processed
      case .failure(let problem): counts.take(.failure(problem), row: index, keep: limits.maxProblems, emit: emit)
      }
    }
    guard !pending.isEmpty else {
      guard listedFull else { return nil }
      start += Self.pageSize
      return listRequest()
    }
    let shares = pending.map(\.urn).filter { $0.hasPrefix("urn:li:share:") }
    let ugcPosts = pending.map(\.urn).filter { $0.hasPrefix("urn:li:ugcPost:") }
    var url =
      "\(base)/organizationalEntityShareStatistics?q=organizationalEntity&organizationalEntity=\(Self.encode(organization))"
    if !shares.isEmpty { url += "&shares=List(\(shares.map(Self.encode).joined(separator: ",")))" }
    if !ugcPosts.isEmpty { url += "&ugcPosts=List(\(ugcPosts.map(Self.encode).joined(separator: ",")))" }
    readingStatistics = true
    return PageRequest(url: url, headers: Self.headers)
  }

  /// The statistics of the pending posts: each matched by its URN; those left out had none.
  private mutating func merge(_ elements: [JSONValue], emit: (CanonicalRecord) -> Bool) throws(ExportError) {
    var statistics: [String: JSONValue] = [:]
    for element in elements {
      guard let urn = element["share"]?.string ?? element["ugcPost"]?.string else { continue }
      statistics[urn] = element["totalShareStatistics"]
    }
    let posts = pending
    pending = []
    for item in posts {
      var post = item.post
      let row = item.row
      let stats = statistics[item.urn]
      var bad: RowProblem.Field?
      for (name, keyPath) in [
        ("commentCount", \PostRecord.comments), ("shareCount", \.shares), ("impressionCount", \.impressions),
        ("uniqueImpressionsCount", \.reach), ("clickCount", \.clicks),
      ] {
        guard let stats else {
          // Left out: no activity. (Reach is not in every answer: unknown.)
          if name != "uniqueImpressionsCount" { post[keyPath: keyPath] = 0 }
          continue
        }
        guard let value = stats[name] else { continue }
        guard let count = value.count else {
          bad = .init("totalShareStatistics.\(name)", .notAnInteger)
          break
        }
        post[keyPath: keyPath] = count
      }
      switch stats?["likeCount"] {
      case nil: post.likes = stats == nil ? 0 : nil
      case .count(let likes)?: post.likes = likes
      case .number(let value)? where value < 0:
        // Organic unlikes of sponsored likes: not a count of likes. Kept, noted.
        if counts.problems.count < limits.maxProblems {
          counts.problems.append(
            RowProblem(row: row, column: "totalShareStatistics.likeCount", reason: .negative, note: true))
        }
      default: bad = bad ?? .init("totalShareStatistics.likeCount", .notAnInteger)
      }
      if let bad {
        counts.take(.failure(bad), row: row, keep: limits.maxProblems, emit: emit)
      } else {
        counts.take(.success(.post(post)), row: row, keep: limits.maxProblems, emit: emit)
      }
    }
  }

  public mutating func pageFailed(_ response: PageResponse, body: [UInt8]) throws(ExportError) -> PageRequest? {
    guard let error = JSONValue.parse(body), let message = error["message"]?.string else { return nil }
    let code = error["serviceErrorCode"]?.count.map { " \($0)" } ?? ""
    let said = "LinkedIn error\(code) (HTTP \(response.status)): \(message)"
    switch response.status {
    case 401: throw ExportError("\(said); renew the credential on the workers", code: "token_rejected")
    case 403: throw ExportError(said, code: "forbidden")
    default: return nil  // 429 and 5xx: the fetcher's error stands
    }
  }

  private func post(from element: JSONValue) -> Result<(urn: String, post: PostRecord)?, RowProblem.Field> {
    guard element.object != nil else { return .failure(.init("", .notAnObject)) }
    guard let urn = element["id"]?.string, urn.hasPrefix("urn:li:share:") || urn.hasPrefix("urn:li:ugcPost:") else {
      return .failure(.init("id", .missing))
    }
    if let state = element["lifecycleState"]?.string, state != "PUBLISHED" { return .success(nil) }
    guard let ms = (element["publishedAt"] ?? element["createdAt"])?.count, ms < UInt64(Int64.max) else {
      return .failure(.init("publishedAt", .invalidTimestamp))
    }
    let seconds = Int64(ms / 1000)
    let media: MediaType
    let content = element["content"]
    if let id = content?["media"]?["id"]?.string {
      media = id.hasPrefix("urn:li:image:") ? .image : id.hasPrefix("urn:li:video:") ? .video : .other
    } else if content?["multiImage"] != nil {
      media = .carousel
    } else if content?["article"] != nil {
      media = .link
    } else if content == nil {
      media = .text
    } else {
      media = .other
    }
    let post = PostRecord(
      platform: source.platform.isEmpty ? "linkedin" : source.platform, account: source.account, id: urn,
      createdAt: Values.Timestamp(epochSeconds: seconds, offsetMinutes: 0), mediaType: media)
    return .success((urn, post))
  }
}
