import Foundation
import HaatCore
import HaatProtocol

/// What a source holds, and so which connector reads it. A value exists only for a kind some
/// connector serves: `SourceKind(named:)` is nil for anything else, so code past the spec
/// check never meets an unknown kind.
public struct SourceKind: Hashable, Sendable, CustomStringConvertible {
  /// The name specs and the protocol use, e.g. "posts".
  public let name: String
  /// The connector that reads it.
  public let connector: any Connector.Type

  /// Declared by connectors (in this module) only.
  init(_ name: String, _ connector: any Connector.Type) {
    self.name = name
    self.connector = connector
  }

  /// The kind a spec names ("" is the default, `posts`), if a connector serves it.
  public init?(named name: String) {
    guard let connector = Connectors.connector(named: name.isEmpty ? Self.posts.name : name) else { return nil }
    self = connector.kind
  }

  public var description: String { name }
  public static func == (lhs: SourceKind, rhs: SourceKind) -> Bool { lhs.name == rhs.name }
  public func hash(into hasher: inout Hasher) { hasher.combine(name) }
}

/// The canonical record types connectors produce and reports consume (records.proto).
public enum RecordType: String, Sendable, CaseIterable {
  case post, order, review, message, adInsight = "ad_insight"

  /// The type's place in `allCases`, without a search.
  public var index: Int {
    switch self {
    case .post: return 0
    case .order: return 1
    case .review: return 2
    case .message: return 3
    case .adInsight: return 4
    }
  }
}

/// How a platform wants its credential: the header it goes in and what precedes the secret.
/// Never a query parameter: a secret in a URL ends up in logs and proxies.
public struct AuthScheme: Sendable, Equatable {
  public var header: String
  public var prefix: String

  /// `Authorization: Bearer <secret>`.
  public static let bearer = AuthScheme(header: "Authorization", prefix: "Bearer ")

  public init(header: String, prefix: String = "") {
    self.header = header
    self.prefix = prefix
  }
}

/// One request a connector wants made: the first page, or the next.
public struct PageRequest: Sendable, Equatable {
  public var url: String
  /// Extra "Name: value" lines (never the credential: the worker adds that).
  public var headers: [String]
  /// Only these bytes of the resource (a Range request).
  public var range: ClosedRange<UInt64>?
  /// POST with an empty body (starting a platform's job; the parameters in the query).
  public var post: Bool
  /// Wait this long before making it: the next poll of a job the platform is still running.
  public var waitMs: UInt64

  public init(
    url: String, headers: [String] = [], range: ClosedRange<UInt64>? = nil, post: Bool = false, waitMs: UInt64 = 0
  ) {
    self.url = url
    self.headers = headers
    self.range = range
    self.post = post
    self.waitMs = waitMs
  }
}

/// A page's response as a connector sees it once its body has been read.
public struct PageResponse: Sendable, Equatable {
  public var status: Int
  public var contentType: String?
  /// The response's headers, names lowercased, in order.
  public var headers: [(name: String, value: String)]

  public init(status: Int, contentType: String?, headers: [(name: String, value: String)] = []) {
    self.status = status
    self.contentType = contentType
    self.headers = headers
  }

  /// The first value of a header, by lowercased name.
  public func header(_ name: String) -> String? { headers.first { $0.name == name }?.value }

  /// Every value of a list header sent on several lines, joined with ", " as one line
  /// (RFC 9110 §5.3: a proxy may split a `Link` header, or join one), by lowercased name.
  public func combinedHeader(_ name: String) -> String? {
    let values = headers.filter { $0.name == name }.map(\.value)
    return values.isEmpty ? nil : values.joined(separator: ", ")
  }

  public static func == (lhs: PageResponse, rhs: PageResponse) -> Bool {
    lhs.status == rhs.status && lhs.contentType == rhs.contentType
      && lhs.headers.elementsEqual(rhs.headers) { $0.name == $1.name && $0.value == $1.value }
  }
}

/// What a task has read so far: good records, bad ones, and the first bad ones with where
/// and why. Bad records are counted and reported, never fatal and never silently lost.
public struct ReadCounts: Sendable, Equatable {
  public var records: UInt64 = 0
  public var badRecords: UInt64 = 0
  public var problems: [RowProblem] = []
  /// The identities (64-bit hashes) of the posts and ad rows read, for an API connector: a
  /// platform paging over data that moves may hand an object twice in one read, and it was
  /// counted twice without a word (found by a tester). nil for exports, whose rows are
  /// what they are (docs/connectors.md: no deduplication). Bounded by the task's pages.
  var identities: Set<UInt64>?

  /// `distinct`: a record whose identity was read before in this task is bad (`duplicate`).
  public init(distinct: Bool = false) {
    identities = distinct ? [] : nil
  }

  /// Counts a bad record, keeping its reason while there is room.
  public mutating func bad(_ problem: RowProblem, keep limit: Int) {
    badRecords += 1
    if problems.count < limit { problems.append(problem) }
  }

  /// Item `row` of a page: read if `emit` takes its record (a report may refuse one whose
  /// counts are out of range: then bad), or bad with its problem. Whether it was read.
  @discardableResult
  public mutating func take(
    _ item: Result<CanonicalRecord, RowProblem.Field>, row: UInt64, keep limit: Int,
    emit: (CanonicalRecord) -> Bool
  ) -> Bool {
    switch item {
    case .success(let record):
      return take(record, row: row, keep: limit, emit: emit)
    case .failure(let problem):
      bad(RowProblem(row: row, column: problem.column, reason: problem.reason), keep: limit)
      return false
    }
  }

  /// Record `row` of a page: read if `emit` takes it, else bad (`take(_:row:keep:emit:)`),
  /// for a reader that has the record itself (no `Result` made for it, no copy).
  @discardableResult
  public mutating func take(
    _ record: CanonicalRecord, row: UInt64, keep limit: Int, emit: (CanonicalRecord) -> Bool
  ) -> Bool {
    if identities != nil, let identity = Self.identity(of: record), identities?.insert(identity).inserted == false {
      bad(RowProblem(row: row, column: "id", reason: .duplicate), keep: limit)
      return false
    }
    guard emit(record) else {
      bad(RowProblem(row: row, column: "", reason: .outOfRange), keep: limit)
      return false
    }
    records += 1
    return true
  }
}

extension ReadCounts {
  /// A post by its id, an ad row by its ad and day, an order by its id (FNV-1a of their
  /// fields); nil for a
  /// record with no identity to check (a post without an id, other types).
  static func identity(of record: CanonicalRecord) -> UInt64? {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    func add(_ text: String) {
      for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0100_0000_01b3 }
      hash = (hash ^ 0xFF) &* 0x0100_0000_01b3  // a separator no UTF-8 text holds
    }
    switch record {
    case .post(let post) where !post.id.isEmpty:
      for field in ["post", post.platform, post.account, post.id] { add(field) }
    case .adInsight(let row):
      for field in ["ad", row.platform, row.account, row.date, row.campaign, row.ad] { add(field) }
    case .order(let order) where !order.id.isEmpty:
      for field in ["order", order.platform, order.account, order.id] { add(field) }
    default:
      return nil
    }
    return hash
  }
}

extension RowProblem {
  /// A problem before its row number is known.
  public struct Field: Error, Sendable, Equatable {
    public var column: String
    public var reason: Values.Problem
    public init(_ column: String, _ reason: Values.Problem) {
      self.column = column
      self.reason = reason
    }
  }
}

/// An API connector whose pages are JSON documents, each held whole until it ends (a page
/// is bounded by `ReadLimits.maxPageBytes`) and read in `pageEnded`.
public protocol JSONPageConnector: Connector {
  var pageBuffer: PageBuffer { get set }
}

extension JSONPageConnector {
  public mutating func pageStarted(status: Int, contentType: String?) throws(ExportError) {}

  public mutating func feed(_ chunk: UnsafeRawBufferPointer, emit: (CanonicalRecord) -> Bool) throws(ExportError) {
    try pageBuffer.append(chunk)
  }
}

/// The limits a connector reads under.
public struct ReadLimits: Sendable {
  /// The longest record (CSV record, NDJSON line, JSON object) in bytes.
  public var maxRecordBytes: Int
  /// How many bad records are kept with their reason (all are counted).
  public var maxProblems: Int
  /// The most pages one task may fetch: a platform that always answers with a next page
  /// cannot keep a task running forever.
  public var maxPages: Int
  /// The largest page an API connector holds to decode (an export file is streamed, never
  /// held).
  /// An API page is read whole, then parsed into a tree that costs up to about 20 times
  /// its size: 16 MiB holds any platform's page many times over and bounds a slot's peak
  /// near 300 MB (a tester's 49.5 MiB page took a worker to 930 MB at the old 64 MiB).
  public var maxPageBytes: Int

  public init(
    maxRecordBytes: Int = 1 << 20, maxProblems: Int = 20, maxPages: Int = 10_000, maxPageBytes: Int = 16 << 20
  ) {
    self.maxRecordBytes = maxRecordBytes
    self.maxProblems = maxProblems
    self.maxPages = maxPages
    self.maxPageBytes = maxPageBytes
  }
}

/// The seam every platform plugs into (DESIGN.md §2 "Extension points"). The coordinator
/// calls the static side to check a source and plan it into tasks; the worker makes one
/// value per task attempt and drives it the same way for every platform:
///
///     var request = connector.firstRequest()
///     while let page = request {
///       fetch page; connector.pageStarted(…); connector.feed(chunk…)…
///       request = connector.pageEnded(response)
///     }
///
/// A connector never does I/O itself: it says what to fetch and turns bytes into canonical
/// records, so it is tested on fixture bytes alone, and the worker's fetcher (its address
/// guard, credential binding, timeouts and limits) is the only way out. Adding a platform
/// is one new connector file, its fixtures, and one line in `Connectors.all`.
public protocol Connector: SendableMetatype {
  /// The kind a spec names to use this connector.
  static var kind: SourceKind { get }
  /// One line for people: what the kind reads.
  static var summary: String { get }
  /// The record types its tasks produce (reports that want none of them are not run).
  static var records: Set<RecordType> { get }
  /// How the credential a source names is sent.
  static var auth: AuthScheme { get }
  /// Whether the kind's tasks report a bookmark a later run can start from (so a source
  /// may be `incremental`).
  static var resumable: Bool { get }
  /// The hosts the platform serves (`host`, `*.domain`), which every request of the kind
  /// must go to, besides hosts the worker's operator allows (`--allow-host`); empty for kinds
  /// that read an export wherever it is.
  static var hosts: [String] { get }
  /// Whether a source of the kind names days to collect (`since`/`until`), planned as
  /// date windows.
  static var reportsByDay: Bool { get }
  /// The budget, in requests per second for the whole cluster, of a source's credential
  /// when the source does not state one; nil for kinds whose requests are not governed
  /// (an export file is one request).
  static var defaultRequestsPerSecond: Double? { get }

  /// Checks a source's fields at submit and fills the defaults; a refusal names the field
  /// (`field` is the source's path, e.g. "sources[3]").
  static func check(_ source: inout Source, field: String) throws(HaatError)
  /// How many tasks the source plans into.
  static func taskCount(for source: Source) -> Int
  /// Shapes task `part` (0 ..< taskCount) of the source; most connectors plan one task and
  /// leave it as it is.
  static func plan(_ task: inout TaskSpec, part: Int, of source: Source)

  /// Starts one task attempt.
  init(task: TaskSpec, limits: ReadLimits)
  /// The first page to fetch, or nil when the task fetches nothing.
  mutating func firstRequest() throws(ExportError) -> PageRequest?
  /// A page's response began (a success status); before its first body byte.
  mutating func pageStarted(status: Int, contentType: String?) throws(ExportError)
  /// A chunk of the page's body, of any size. `emit` may refuse a record (false) when it
  /// would take a report's sums out of range: the record is then bad, `out of range`.
  mutating func feed(_ chunk: UnsafeRawBufferPointer, emit: (CanonicalRecord) -> Bool) throws(ExportError)
  /// The page's body ended; returns the next page to fetch, or nil when the task is done.
  mutating func pageEnded(_ response: PageResponse, emit: (CanonicalRecord) -> Bool) throws(ExportError)
    -> PageRequest?
  /// `feed(_:emit:)`, with posts handed to `post` as read, not wrapped in a record: a post is
  /// larger than the compiler copies inline, and wrapping and unwrapping it cost two calls
  /// to `memmove` per post. The default wraps them.
  mutating func feed(
    _ chunk: UnsafeRawBufferPointer, post: (PostRecord) -> Bool, emit: (CanonicalRecord) -> Bool
  ) throws(ExportError)
  /// `pageEnded(_:emit:)`, with posts handed to `post` (see `feed(_:post:emit:)`).
  mutating func pageEnded(
    _ response: PageResponse, post: (PostRecord) -> Bool, emit: (CanonicalRecord) -> Bool
  ) throws(ExportError) -> PageRequest?
  /// A page's request was answered with an HTTP error status (`body` is its start). The
  /// connector may read the platform's error object: throw it classified (an expired
  /// token is not retryable; throttling is, after the wait the platform names), or return
  /// a request to make instead (the same page without a metric the platform refuses).
  /// Returning nil leaves the fetcher's own error standing.
  mutating func pageFailed(_ response: PageResponse, body: [UInt8]) throws(ExportError) -> PageRequest?
  /// What has been read so far.
  var counts: ReadCounts { get }
  /// Where the next run of this source may start (a cursor or a high-water mark); "" if none.
  var bookmark: String { get }
  /// For a plan task (`TaskSpec.split_plan`): the byte ranges to add to the job as tasks.
  var split: Split? { get }
  /// For a byte-range task of a CSV export: the quote state it took and saw.
  var rangeQuotes: RangeQuotes? { get }
  /// For a by-day kind: the days of its account the task read in full (given to the
  /// reports once the task succeeds).
  var coverage: DayCoverage? { get }
}

extension Connector {
  public static var auth: AuthScheme { .bearer }
  public static var defaultRequestsPerSecond: Double? { nil }
  public static var hosts: [String] { [] }
  public static var resumable: Bool { false }
  public static var reportsByDay: Bool { false }
  public static func taskCount(for source: Source) -> Int { 1 }
  public static func plan(_ task: inout TaskSpec, part: Int, of source: Source) {}
  public var bookmark: String { "" }
  public var split: Split? { nil }
  public var rangeQuotes: RangeQuotes? { nil }
  public var coverage: DayCoverage? { nil }
  public mutating func pageFailed(_ response: PageResponse, body: [UInt8]) throws(ExportError) -> PageRequest? { nil }
  public mutating func feed(
    _ chunk: UnsafeRawBufferPointer, post: (PostRecord) -> Bool, emit: (CanonicalRecord) -> Bool
  ) throws(ExportError) {
    try feed(chunk, emit: emit)
  }
  public mutating func pageEnded(
    _ response: PageResponse, post: (PostRecord) -> Bool, emit: (CanonicalRecord) -> Bool
  ) throws(ExportError) -> PageRequest? {
    try pageEnded(response, emit: emit)
  }
}

/// Checks connectors share.
public enum SourceChecks {
  /// An export's or API's URL: http, https or file, with a host or a path, and no secret in it.
  public static func url(_ text: String, field: String, kind: SourceKind) throws(HaatError) {
    guard !text.isEmpty else { throw HaatError(.badSpec, "is required for a source of kind \(kind)", field: field) }
    if let refusal = URLSecrets.refusal(of: text, field: field) { throw refusal }
    // Checked here what a worker would refuse only when the task runs (and the task die),
    // and before the parse, which refuses a space in the host as not a URL.
    if let odd = text.unicodeScalars.first(where: { $0 == " " || DisplayText.isUnsafe($0) }) {
      throw HaatError(
        .badSpec,
        "holds \(odd == " " ? "a space" : "a control character (\(DisplayText.codePoint(odd)))"); percent-encode it (a space is %20)",
        field: field)
    }
    // Quoted only when it holds no `@`: what a malformed URL holds before one may be a
    // password the checks above could not tell as one (a tester).
    let quoted = text.contains("@") ? "(not quoted: it holds an @)" : "\"\(text)\""
    guard let url = URL(string: text), let scheme = url.scheme?.lowercased() else {
      throw HaatError(.badSpec, "is not a URL: \(quoted)", field: field)
    }
    switch scheme {
    case "http", "https":
      guard let host = url.host, !host.isEmpty else {
        throw HaatError(.badSpec, "has no host: \(quoted)", field: field)
      }
      if let port = url.port, !(1...65_535).contains(port) {
        throw HaatError(.badSpec, "names port \(port); a port is 1 to 65535", field: field)
      }
    case "file":
      let lowered = text.lowercased()
      guard lowered.hasPrefix("file:///") || lowered.hasPrefix("file://localhost/") else {
        throw HaatError(
          .badSpec, "is not a file URL a worker reads: write file:///path (no host, three slashes)", field: field)
      }
      guard !url.path.isEmpty else { throw HaatError(.badSpec, "has no path: \(quoted)", field: field) }
    default:
      throw HaatError(.badSpec, "must be http://, https:// or file://, not \(scheme):", field: field)
    }
  }

  /// The tz database's zone names that are also abbreviations Foundation knows: taken as the
  /// zones they name (EST is a fixed −05:00 there as in the tz database).
  static let zoneAbbreviations: Set<String> = ["UTC", "GMT", "CET", "EET", "WET", "EST", "MST", "HST"]

  /// A source's time zone: an IANA name. An abbreviation such as PST or IST is refused:
  /// Foundation reads it as one zone of several it may mean (IST as India's, not Ireland's or
  /// Israel's), and PST as Los Angeles' with daylight saving, which a writer of PST may not
  /// mean; the message names the zone it would have been.
  public static func timezone(_ text: String, field: String) throws(HaatError) {
    let shown = DisplayText.escape(String(text.prefix(64)))
    if !zoneAbbreviations.contains(text), let zone = TimeZone.abbreviationDictionary[text] {
      throw HaatError(
        .badSpec,
        "\"\(shown)\" is an abbreviation, which can mean more than one zone and says nothing of daylight saving; use an IANA name such as \(zone)",
        field: field)
    }
    guard let zone = TimeZone(identifier: text) else {
      throw HaatError(
        .badSpec, "unknown time zone \"\(shown)\"; use an IANA name such as America/New_York", field: field)
    }
    // Foundation reads `GMT+15` as a zone; none is more than 14 hours from UTC.
    guard abs(zone.secondsFromGMT()) <= 14 * 3_600 else {
      throw HaatError(
        .badSpec, "\"\(shown)\" is more than 14 hours from UTC, which no time zone is", field: field)
    }
  }
}
