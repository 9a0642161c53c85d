import Foundation
import HaatCore
import HaatProtocol

/// A Meta Graph edge of posts (a Page's posts, an Instagram account's media): what to ask
/// for and how one item becomes a canonical post. `MetaGraphConnector` does the rest —
/// paging, the error object, refused metrics, bad items, the bookmark — once for all of
/// them.
public protocol MetaGraphEdge: Sendable {
  static var kind: SourceKind { get }
  static var summary: String { get }
  /// The platform a record names when the source does not.
  static var platform: String { get }
  /// The edge under the account: "posts", "media".
  static var edge: String { get }
  /// The fields asked for, besides the insights.
  static var fields: [String] { get }
  /// The lifetime insight metrics asked for, in the order they are dropped when refused
  /// without a name.
  static var metrics: [String] { get }
  /// What the account must be, for the spec check's message.
  static var accountMeaning: String { get }
  /// One item of a page; a failure names the field.
  static func post(from item: JSONValue, source: Source) -> Result<PostRecord, RowProblem.Field>
}

/// A Meta Graph edge read page by page (https://developers.facebook.com/docs/graph-api/results):
/// `GET {url}/{account}/{edge}?fields=…&limit=100`, with the token in
/// `Authorization: Bearer` (never `access_token` in the URL), following `paging.next` until
/// it is absent — an empty page may still carry `next`.
///
/// One metric the account refuses fails Meta's whole call (error 100): the connector asks
/// again without it and reports that as a row-0 problem. The bookmark is the newest item's
/// time (Unix seconds); a task given one asks only for items `since` then.
public struct MetaGraphConnector<Edge: MetaGraphEdge>: JSONPageConnector {
  public static var kind: SourceKind { Edge.kind }
  public static var summary: String { Edge.summary }
  public static var records: Set<RecordType> { [.post] }
  /// Meta counts calls per app and token over an hour (X-App-Usage) and per Page (business
  /// use case limits); 10 a second stays well inside a typical app's allowance. A spec may
  /// state its own.
  public static var defaultRequestsPerSecond: Double? { 10 }
  /// Meta's Graph API hosts (Facebook Login and Instagram Login).
  public static var hosts: [String] { ["graph.facebook.com", "graph.instagram.com"] }
  /// The bookmark is the newest item's time.
  public static var resumable: Bool { true }
  static var pageSize: Int { 100 }

  public static func check(_ source: inout Source, field: String) throws(HaatError) {
    if source.url.isEmpty { source.url = MetaGraph.defaultBaseURL }
    try SourceChecks.url(source.url, field: "\(field).url", kind: kind)
    guard MetaGraph.isNodeID(source.account) else {
      throw HaatError(
        .badSpec, "must be \(Edge.accountMeaning) (letters, digits, \"_\" or \".\"), not \"\(source.account)\"",
        field: "\(field).account")
    }
    if source.platform.isEmpty { source.platform = Edge.platform }
  }

  private let source: Source
  private let limits: ReadLimits
  /// From the bookmark: items from this time on (Unix seconds) are asked for, and those at
  /// exactly that second the last run already read (`seen`) are skipped.
  private let since: Int64?
  private let seen: Set<String>
  private var metrics = Edge.metrics
  public var pageBuffer: PageBuffer
  private var index: UInt64 = 0
  /// The newest item's second and the ids at it, for the next run.
  private var newest = SecondBoundary(separators: [",", ":"])
  public private(set) var counts = ReadCounts(distinct: true)

  public init(task: TaskSpec, limits: ReadLimits) {
    var source = task.source
    if source.platform.isEmpty { source.platform = Edge.platform }
    self.source = source
    self.limits = limits
    (since, seen) = Self.parse(bookmark: task.bookmark)
    pageBuffer = PageBuffer(limit: limits.maxPageBytes)
  }

  /// `SECONDS` or `SECONDS:ID,ID,…` (the items at that second). Anything else is no
  /// bookmark: the whole edge is read.
  static func parse(bookmark: String) -> (Int64?, Set<String>) {
    let parts = bookmark.split(separator: ":", maxSplits: 1)
    guard let first = parts.first, let seconds = Int64(first), seconds >= 0 else { return (nil, []) }
    let ids = parts.count > 1 ? parts[1].split(separator: ",").map(String.init) : []
    return (seconds, Set(ids))
  }

  /// The newest item's time and the ids at that second; an empty run keeps the old one.
  public var bookmark: String {
    guard let seconds = newest.seconds else {
      guard let since else { return "" }
      return seen.isEmpty ? String(since) : "\(since):\(seen.sorted().joined(separator: ","))"
    }
    // Past the second when it overflowed (SecondBoundary).
    if newest.overflowed { return String(seconds + 1) }
    return newest.ids.isEmpty ? String(seconds) : "\(seconds):\(newest.ids.joined(separator: ","))"
  }

  public mutating func firstRequest() throws(ExportError) -> PageRequest? {
    PageRequest(url: firstURL())
  }

  private func firstURL() -> String {
    var fields = Edge.fields
    if !metrics.isEmpty { fields.append("insights.metric(\(metrics.joined(separator: ",")))") }
    var url = source.url
    while url.hasSuffix("/") { url.removeLast() }
    url += "/\(source.account)/\(Edge.edge)?fields=" + MetaGraph.encode(fields.joined(separator: ","))
    url += "&limit=\(Self.pageSize)"
    if let since { url += "&since=\(since)" }
    return url
  }

  public mutating func pageEnded(_ response: PageResponse, emit: (CanonicalRecord) -> Bool) throws(ExportError)
    -> PageRequest?
  {
    let body = pageBuffer.take()
    guard let page = JSONValue.parse(body) else {
      throw ExportError("a Graph page is not JSON (\(body.count) bytes, HTTP \(response.status))")
    }
    if let error = MetaGraph.classify(response, body: body) { throw error }
    guard let items = page["data"]?.array else {
      throw ExportError("a Graph page has no \"data\" list")
    }
    for item in items {
      index += 1
      switch Edge.post(from: item, source: source) {
      case .success(let post):
        let time = post.createdAt.epochSeconds
        if let since, time < since { continue }
        // One the last run read (`since` includes its own second) is not counted again, but
        // stays in the boundary: a newer post at that second made this run's bookmark hold
        // only the newer one's id, and the next run counted the old one a second time.
        let read = time == since && seen.contains(post.id)
        if read || counts.take(.success(.post(post)), row: index, keep: limits.maxProblems, emit: emit) {
          newest.take(seconds: time, id: post.id)
        }
      case .failure(let problem):
        counts.take(.failure(problem), row: index, keep: limits.maxProblems, emit: emit)
      }
    }
    return MetaGraph.next(page).map { PageRequest(url: $0) }
  }

  public mutating func pageFailed(_ response: PageResponse, body: [UInt8]) throws(ExportError) -> PageRequest? {
    if let metric = MetaGraph.refusedMetric(body, among: metrics) {
      metrics.removeAll { $0 == metric }
      counts.problems.append(
        RowProblem(row: 0, column: "insights.metric(\(metric))", reason: .refusedByPlatform, note: true))
      return PageRequest(url: firstURL())
    }
    if let error = MetaGraph.classify(response, body: body) { throw error }
    return nil
  }
}

/// The id, time and insights every Graph item has; the rest is the edge's.
extension MetaGraph {
  static func item(
    _ item: JSONValue, source: Source, timeField: String, mediaType: MediaType
  ) -> Result<PostRecord, RowProblem.Field> {
    guard item.object != nil else { return .failure(.init("", .notAnObject)) }
    guard let id = item["id"]?.string, !id.isEmpty else { return .failure(.init("id", .missing)) }
    guard !Values.hasControl(id.utf8) else { return .failure(.init("id", .controlCharacter)) }
    guard let written = item[timeField]?.string else { return .failure(.init(timeField, .missing)) }
    guard let createdAt = timestamp(written) else {
      return .failure(.init(timeField, .invalidTimestamp))
    }
    return .success(
      PostRecord(
        platform: source.platform, account: source.account, id: id, createdAt: createdAt,
        mediaType: mediaType))
  }

  /// The lifetime insights of an item, by metric name. An object value (reactions by type)
  /// is not a count: it is left out. A value that is neither is a problem.
  static func insights(_ item: JSONValue) -> Result<[String: UInt64], RowProblem.Field> {
    var values: [String: UInt64] = [:]
    for insight in item["insights"]?["data"]?.array ?? [] {
      guard let name = insight["name"]?.string else { continue }
      // Lifetime values: one value, no end_time.
      guard let value = insight["values"]?.array?.last?["value"] else { continue }
      if value.object != nil { continue }
      guard let count = value.count else { return .failure(.init("insights.\(name)", value.countProblem)) }
      values[name] = count
    }
    return .success(values)
  }
}
