import Dispatch
import HaatCore
import HaatProtocol
import HaatRecords
import Synchronization

/// The seam every report plugs into (DESIGN.md §2 "Extension points"). A kernel is a
/// mergeable aggregate: a worker makes one per task and feeds it the records it wants, one
/// at a time; its part of the task's `Partial` goes to the coordinator, which merges the
/// parts of every task in any order (`merge` is associative and commutative, `init()` its
/// identity) and finishes them into the kernel's section of the `Report`. The kernel also
/// says how its section reads as a table. Adding a report is one kernel file, its fields in
/// analytics.proto, and one line in `Reports.all`: the coordinator, the worker and the
/// CLI name no report.
public protocol ReportKernel: Sendable {
  /// The name specs and reports use, e.g. "engagement".
  static var name: String { get }
  /// One line for people: what the report answers.
  static var summary: String { get }
  /// The record types it reads; the others never reach it.
  static var records: Set<RecordType> { get }
  /// The record types that give a job this report when its spec names none: by default
  /// every type it reads; empty for a report asked for by name only (one that costs much
  /// more than exact sums), fewer for one that reads some types only beside others.
  static var defaultFor: Set<RecordType> { get }

  /// The empty aggregate: the identity of `merge`.
  init()
  /// The empty aggregate of one task, which may read its source's settings (a time zone).
  init(context: ReportContext)
  /// Adds one record of a type it reads; false, and nothing changed, when the record would
  /// take a sum out of range (the connector then counts it as bad, `out of range`).
  mutating func add(_ record: CanonicalRecord) -> Bool
  /// Whether `add` would take the record, without adding it (asked only when several
  /// kernels read the record's type, so that a record one refuses is in none).
  func accepts(_ record: CanonicalRecord) -> Bool
  /// `add(.post(post))`: the builder takes a post out of its record once for every kernel
  /// that reads posts, and a kernel that reads posts takes it here, with no copy of its own.
  /// The default calls `add(_:)`, so a kernel whose `add(_:)` calls this one implements it.
  mutating func add(post: PostRecord) -> Bool
  /// `accepts(.post(post))`, as `add(post:)` is `add(.post(post))`.
  func accepts(post: PostRecord) -> Bool
  /// Adds what it holds back (posts waiting to be added in the order of their cells), so
  /// that writing it copies nothing. The worker settles a task's kernels before writing
  /// their partial; the default holds nothing back.
  mutating func settle()
  /// Merges another aggregate of the same report into this one.
  mutating func merge(_ other: Self)
  /// Lays a later run's aggregate over this one (a schedule's cumulative report, in run
  /// order): where the later run read the same data again (a lookback window the platform
  /// has revised since), its figures replace these. Kernels over data read once merge.
  mutating func overlay(_ newer: Self)
  /// The task read these days of an account in full (a by-day source); kernels that key
  /// by day keep it so that a later run's read of the same days can replace this one's.
  mutating func cover(_ coverage: DayCoverage)
  /// Writes its part of a task's partial.
  func write(to partial: inout Partial)
  /// Its part of a partial, or nil when the partial has none.
  init?(reading partial: Partial)
  /// Merges its part of a partial into this aggregate; false when the partial has none.
  mutating func merge(reading partial: Partial) -> Bool
  /// Writes its section of the report; throws `overflow` rather than report wrapped sums.
  func finish(into report: inout Report) throws(HaatError)
  /// Its section of a report as a table, or nil when the report has none.
  static func table(of report: Report) -> ReportTable?
  /// Its section as an SVG chart, or nil when the report has none or the kernel draws none;
  /// with `limit`, at most that many of its blocks (a page polled every second must not
  /// draw 50,000 accounts' weeks).
  static func svg(of report: Report, limit: Int?) -> String?
}

/// What a task's kernels may know of its source.
public struct ReportContext: Sendable {
  /// The account's IANA time zone (`Source.timezone`); empty when the source names none.
  public var timezone: String
  /// The business's opening hours (`Source.business_hours`); empty when none.
  public var businessHours: String

  public init(timezone: String = "", businessHours: String = "") {
    self.timezone = timezone
    self.businessHours = businessHours
  }
}

extension ReportKernel {
  public static var defaultFor: Set<RecordType> { records }
  public static func svg(of report: Report, limit: Int?) -> String? { nil }
  public static func svg(of report: Report) -> String? { svg(of: report, limit: nil) }
  public init(context: ReportContext) { self.init() }
  public func accepts(_ record: CanonicalRecord) -> Bool { true }
  public mutating func add(post: PostRecord) -> Bool { add(.post(post)) }
  public func accepts(post: PostRecord) -> Bool { accepts(.post(post)) }
  public mutating func overlay(_ newer: Self) { merge(newer) }
  public mutating func cover(_ coverage: DayCoverage) {}
  public mutating func settle() {}

  /// Read into an aggregate of its own, then merged: a kernel whose partials are large
  /// merges them in place instead.
  public mutating func merge(reading partial: Partial) -> Bool {
    guard let part = Self(reading: partial) else { return false }
    merge(part)
    return true
  }

  /// Merges another kernel's aggregate if it is this report's (for kernels held as `any`).
  mutating func merge(any other: any ReportKernel) {
    if let other = other as? Self { merge(other) }
  }

  /// Lays another kernel's aggregate over this one if it is this report's.
  mutating func overlay(any newer: any ReportKernel) {
    if let newer = newer as? Self { overlay(newer) }
  }
}

/// One report's section as a table, for people (aligned text) and spreadsheets (CSV).
public struct ReportTable: Sendable {
  /// The table's column headings, short enough for a terminal.
  public var columns: [String]
  /// Cells as people read them (grouped digits, percentages, "–" for unknown).
  public var rows: [[String]]
  /// Which columns are numbers (right-aligned).
  public var numeric: Set<Int>
  /// Whether the last row is a total (a rule above it).
  public var totalLast: Bool
  /// The CSV header and rows: raw numbers, empty for unknown.
  public var csvColumns: [String]
  public var csvRows: [[String]]
  /// CSV columns that hold text (escaped against spreadsheet formulas on request).
  public var csvText: Set<Int>
  /// Lines printed after the table on a terminal (a heatmap); not in the CSV.
  public var notes: [String]

  public init(
    columns: [String], rows: [[String]], numeric: Set<Int>, totalLast: Bool, csvColumns: [String],
    csvRows: [[String]], csvText: Set<Int>, notes: [String] = []
  ) {
    self.notes = notes
    self.columns = columns
    self.rows = rows
    self.numeric = numeric
    self.totalLast = totalLast
    self.csvColumns = csvColumns
    self.csvRows = csvRows
    self.csvText = csvText
  }
}

/// Every report this build computes. The one list a new report is added to.
public enum Reports {
  public static let all: [any ReportKernel.Type] = [
    EngagementKernel.self, BestTimeKernel.self, AttributionKernel.self, ReviewsKernel.self, AdsKernel.self,
    AudienceKernel.self, ResponseTimeKernel.self, MediaLiftKernel.self, FrequencyKernel.self, CohortsKernel.self,
    ClvKernel.self,
  ]

  /// The kernel of a report name, if this build has it.
  public static func kernel(named name: String) -> (any ReportKernel.Type)? {
    all.first { $0.name == name }
  }

  /// The names, for messages: "engagement".
  public static var names: String { all.map { $0.name }.sorted().joined(separator: ", ") }

  /// The reports a job gets when its spec names none: every report that reads a record
  /// type the job's sources produce (`defaultFor`).
  public static func defaults(for records: Set<RecordType>) -> [String] {
    all.filter { !$0.defaultFor.isDisjoint(with: records) }.map { $0.name }
  }
}

/// Builds one task's partial: each record, parsed once, goes to every kernel that reads its
/// type.
public struct PartialBuilder: Sendable {
  private var kernels: [any ReportKernel]
  /// The kernels that read each record type, worked out once (not per record, and with no
  /// hash per record): type `RecordType.index` has `readers[starts[i]..<starts[i + 1]]`.
  /// Flat, where an array per type was retained and released per record (3 % of a posts
  /// read into engagement).
  private let readers: [Int]
  private let starts: [Int]

  /// Kernels for the reports named; unknown names are skipped (the coordinator refused
  /// them at submit).
  public init(reports: [String], context: ReportContext = ReportContext()) {
    let kernels = reports.compactMap { Reports.kernel(named: $0)?.init(context: context) }
    self.kernels = kernels
    let byType = RecordType.allCases.map { type in
      kernels.indices.filter { Swift.type(of: kernels[$0]).records.contains(type) }
    }
    readers = byType.flatMap { $0 }
    starts = byType.reduce(into: [0]) { $0.append($0[$0.count - 1] + $1.count) }
  }

  /// Adds a record to every kernel that reads it; false, and the record left out of all of
  /// them, when one would take a sum out of range.
  @discardableResult
  public mutating func add(_ record: CanonicalRecord) -> Bool {
    // A post is taken out of its record once, not once per kernel and question.
    if case .post(let post) = record { return add(post: post) }
    return add(to: record.type.index, accepts: { $0.accepts(record) }, add: { $0.add(record) })
  }

  /// `add(.post(post))`, for a connector that hands posts over unwrapped
  /// (`Connector.feed(_:post:emit:)`).
  @discardableResult
  public mutating func add(post: PostRecord) -> Bool {
    add(to: RecordType.post.index, accepts: { $0.accepts(post: post) }, add: { $0.add(post: post) })
  }

  /// Kernels are reached in place (`inout`), never copied out of the array: a copy of an
  /// existential retains and releases its box, per record and kernel.
  private mutating func add(
    to type: Int, accepts: (inout any ReportKernel) -> Bool, add: (inout any ReportKernel) -> Bool
  ) -> Bool {
    let first = starts[type]
    let end = starts[type + 1]
    guard end - first > 1 else { return first == end ? true : add(&kernels[readers[first]]) }
    // All or none: a record one kernel refuses is in no report. Asked first, so that no
    // kernel's state is copied to undo an add (a copy per record is quadratic).
    for slot in first..<end where !accepts(&kernels[readers[slot]]) { return false }
    var added = true
    for slot in first..<end where !add(&kernels[readers[slot]]) { added = false }
    return added
  }

  /// The task read these days in full (see `ReportKernel.cover`).
  public mutating func cover(_ coverage: DayCoverage) {
    for index in kernels.indices { kernels[index].cover(coverage) }
  }

  /// Settles every kernel (`ReportKernel.settle`): `partial` then copies none of them.
  /// (Reading a kernel that holds posts back adds them to a copy of it: for best_time, a
  /// copy of every sketch the held posts touch.)
  public mutating func settle() {
    for index in kernels.indices { kernels[index].settle() }
  }

  /// The partial so far, as its protocol message.
  public var partial: Partial {
    var partial = Partial()
    for kernel in kernels { kernel.write(to: &partial) }
    return partial
  }
}

/// Merges partials, report by report: the monoid every kernel forms.
public struct PartialMerger: Sendable {
  private var kernels: [String: any ReportKernel] = [:]

  public init() {}

  public mutating func merge(_ partial: Partial) {
    for type in Reports.all {
      if kernels[type.name] != nil {
        _ = kernels[type.name]?.merge(reading: partial)
      } else if let part = type.init(reading: partial) {
        kernels[type.name] = part
      }
    }
  }

  /// Adds another merger's kernels to these.
  public mutating func merge(_ other: PartialMerger) {
    combine(other) { $0.merge(any: $1) }
  }

  /// Takes each of `other`'s kernels where this merger has none of its report, and
  /// combines it into the one it has otherwise.
  private mutating func combine(
    _ other: PartialMerger, _ body: (inout any ReportKernel, any ReportKernel) -> Void
  ) {
    for (name, kernel) in other.kernels {
      guard kernels[name] != nil else {
        kernels[name] = kernel
        continue
      }
      body(&kernels[name, default: kernel], kernel)
    }
  }

  /// The partials merged on every core: each read into its kernels, then merged in pairs,
  /// round by round (a partial is a monoid, so any grouping gives the same sums; the pairs
  /// are fixed by position, so the same partials always merge the same way).
  public static func merging(_ partials: [Partial]) -> PartialMerger {
    var level = concurrentMap(partials.indices) { index in
      var merger = PartialMerger()
      merger.merge(partials[index])
      return merger
    }
    while level.count > 1 {
      let current = level
      level = concurrentMap(0..<(current.count + 1) / 2) { pair in
        var merged = current[2 * pair]
        if 2 * pair + 1 < current.count { merged.merge(current[2 * pair + 1]) }
        return merged
      }
    }
    return level.first ?? PartialMerger()
  }

  private static func concurrentMap<T: Sendable>(_ range: Range<Int>, _ transform: @Sendable (Int) -> T) -> [T] {
    guard range.count > 1 else { return range.map(transform) }
    let results = Mutex([T?](repeating: nil, count: range.count))
    DispatchQueue.concurrentPerform(iterations: range.count) { offset in
      let value = transform(range.lowerBound + offset)
      results.withLock { $0[offset] = value }
    }
    return results.withLock { $0.compactMap { $0 } }
  }

  /// Lays a later run's merged partials over these (see `ReportKernel.overlay`).
  public mutating func overlay(_ newer: PartialMerger) {
    combine(newer) { $0.overlay(any: $1) }
  }

  /// The named reports' sections of the report (empty ones for reports no task fed).
  public func finish(_ reports: [String], into report: inout Report) throws(HaatError) {
    for name in reports {
      guard let type = Reports.kernel(named: name) else { continue }
      try (kernels[name] ?? type.init()).finish(into: &report)
    }
  }
}
