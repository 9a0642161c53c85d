import Foundation
import HaatAnalytics
import HaatCore
import HaatProtocol
import HaatRecords
import HaatStore

/// Checks a submitted job spec and plans it into tasks, each source by its kind's connector
/// (`Connector.check`, `taskCount`, `plan`). Every refusal names the field and says why.
public enum Planner {
  /// Platforms a source may name.
  public static let platforms: Set<String> = [
    "facebook", "instagram", "tiktok", "pinterest", "linkedin", "youtube", "x", "whatsapp",
    "messenger", "web",
  ]
  public static let maxSources = HaatCore.Defaults.maxSources
  public static let maxTasks = 1_000_000
  /// The longest retry backoff a spec may ask for: a day.
  public static let maxRetryMs: UInt32 = 86_400_000

  /// The coordinator's defaults for what a spec leaves out.
  public struct Defaults: Sendable {
    public var maxAttempts: UInt32 = HaatCore.Defaults.maxAttempts
    public var retry: RetryPolicy = .default
    public init() {}
  }

  /// The longest source name, account, time zone or business hours, in bytes.
  public static let maxSourceTextBytes = 1_024
  /// The longest source URL, in bytes (browsers and servers stop near 8 KiB too).
  public static let maxURLBytes = 8_192

  /// A source's names and texts: plain text, each bounded, so that a task (its source
  /// inside) and a report's row (its name) stay far under a line (a megabyte account was
  /// accepted, and its task could never be sent). Checked on every part of a spec sent in
  /// parts too, as it arrives.
  static func checkTexts(of source: Source, field: String) throws(HaatError) {
    try checkText(source.name, field: "\(field).name")
    try checkText(source.account, field: "\(field).account")
    for (name, value, most) in [
      ("name", source.name, Self.maxSourceTextBytes), ("account", source.account, Self.maxSourceTextBytes),
      ("url", source.url, Self.maxURLBytes), ("timezone", source.timezone, Self.maxSourceTextBytes),
      ("business_hours", source.businessHours, Self.maxSourceTextBytes),
    ] where value.utf8.count > most {
      throw HaatError(.badSpec, "is \(value.utf8.count) bytes long; the most is \(most)", field: "\(field).\(name)")
    }
  }

  /// `schedule`: the schedule whose run this is (its bookmarks are its own); a spec with
  /// `every` is its schedule's first run.
  public static func plan(
    _ spec: JobSpec, submittedBy: String, defaults: Defaults = Defaults(), schedule: String? = nil
  ) throws(HaatError) -> NewJob {
    func bad(_ field: String, _ reason: String) -> HaatError {
      HaatError(.badSpec, reason, field: field)
    }
    guard HaatCore.Defaults.nameFits(spec.name) else {
      throw bad("name", "is longer than \(HaatCore.Defaults.maxNameCharacters) characters")
    }
    try checkText(spec.name, field: "name")
    guard !spec.sources.isEmpty else { throw bad("sources", "a job needs at least one source") }
    guard spec.sources.count <= maxSources else {
      throw bad("sources", "has \(spec.sources.count) sources; the most is \(maxSources)")
    }
    guard (-1000...1000).contains(spec.priority) else {
      throw bad("priority", "must be between -1000 and 1000, not \(spec.priority)")
    }
    let maxAttempts = spec.maxAttempts == 0 ? defaults.maxAttempts : spec.maxAttempts
    guard (1...100).contains(maxAttempts) else {
      throw bad("max_attempts", "must be between 1 and 100, not \(maxAttempts)")
    }
    let base = spec.retryBaseMs == 0 ? defaults.retry.baseMs : UInt64(spec.retryBaseMs)
    let cap = spec.retryCapMs == 0 ? max(defaults.retry.capMs, base) : UInt64(spec.retryCapMs)
    for (field, value) in [("retry_base_ms", spec.retryBaseMs), ("retry_cap_ms", spec.retryCapMs)]
    where value > maxRetryMs {
      throw bad(field, "must be at most \(maxRetryMs) (a day), not \(value)")
    }
    guard cap >= base else {
      throw bad("retry_cap_ms", "(\(cap)) must not be less than retry_base_ms (\(base))")
    }
    var notBeforeMs: Int64 = 0
    if !spec.notBefore.isEmpty {
      guard let time = Array(spec.notBefore.utf8).withUnsafeBytes({ Values.timestamp($0) }) else {
        throw bad("not_before", "must be an RFC 3339 time with an offset, e.g. 2026-11-23T18:00:00+06:00")
      }
      notBeforeMs = time.epochSeconds * 1000
    }

    var recurrence: Recurrence?
    if !spec.every.isEmpty {
      guard !spec.every.allSatisfy({ $0 == " " || $0 == "\t" }) else {
        throw bad("every", "is blank: give an interval (6h) or a cron line, or leave it out for a one-off job")
      }
      do {
        recurrence = try Recurrence(spec.every)
      } catch {
        throw bad("every", error.message)
      }
      let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
      guard recurrence?.next(dueMs: nowMs, nowMs: nowMs) != nil else {
        throw bad("every", "\"\(spec.every)\" names no time in the next five years")
      }
      guard !spec.name.isEmpty else { throw bad("name", "a recurring job (every) needs a name: its schedule's name") }
      // `haat schedules remove -dash` read the name as flags (`-h` among them: help, exit 0).
      guard !spec.name.hasPrefix("-") else {
        throw bad("name", "a schedule's name must not start with \"-\": the CLI would read it as flags")
      }
    }

    let scheduleName = schedule ?? (recurrence == nil ? nil : spec.name)
    var sources = spec.sources
    var names = Set<String>()
    let written = Set(spec.sources.lazy.map(\.name).filter { !$0.isEmpty })
    var collects = Set<RecordType>()
    var taskCount = 0
    var kinds: [SourceKind] = []
    for index in sources.indices {
      let field = "sources[\(index)]"
      var source = sources[index]
      try checkTexts(of: source, field: field)
      if source.pool.isEmpty { source.pool = Pool.collect.rawValue }
      guard Pool(rawValue: source.pool) != nil else {
        throw bad("\(field).pool", "unknown pool \"\(source.pool)\"; use collect or analyze")
      }
      if !source.platform.isEmpty, !platforms.contains(source.platform) {
        throw bad(
          "\(field).platform",
          "unknown platform \"\(source.platform)\"; use one of \(platforms.sorted().joined(separator: ", "))")
      }
      guard let kind = SourceKind(named: source.kind) else {
        throw bad(
          "\(field).kind",
          "unknown kind \"\(source.kind)\"; use one of \(Connectors.kindList)")
      }
      source.kind = kind.name
      kinds.append(kind)
      // A recurring job's runs read only what is new since the last one.
      if recurrence != nil, kind.connector.resumable { source.incremental = true }
      try kind.connector.check(&source, field: field)
      // Whatever the kind makes of it, a URL is stored with the job: never one that carries
      // a secret (a kind that reads none, such as noop, checked nothing).
      if !source.url.isEmpty { try SourceChecks.url(source.url, field: "\(field).url", kind: kind) }
      if !source.credential.isEmpty { try checkCredential(source.credential, field: "\(field).credential") }
      try checkFieldsApply(source, kind: kind, field: field)
      if source.requestsPerSecond != 0 {
        guard kind.connector.defaultRequestsPerSecond != nil, !source.credential.isEmpty else {
          throw bad(
            "\(field).requests_per_second",
            "applies only to sources whose kind calls a platform's API with a credential (e.g. facebook_posts)")
        }
        guard source.requestsPerSecond.isFinite, RateGovernor.rateRange.contains(source.requestsPerSecond) else {
          throw bad(
            "\(field).requests_per_second", "must be between 0.01 and 10000, not \(source.requestsPerSecond)")
        }
      }
      if !kind.connector.reportsByDay {
        for (name, value) in [("since", source.since), ("until", source.until)] where !value.isEmpty {
          throw bad(
            "\(field).\(name)",
            "applies only to kinds that report by day (\(Connectors.all.filter { $0.reportsByDay }.map { $0.kind.name }.sorted().joined(separator: ", "))); a source of kind \(kind) has no days"
          )
        }
      }
      if !source.timezone.isEmpty { try SourceChecks.timezone(source.timezone, field: "\(field).timezone") }
      if !source.businessHours.isEmpty {
        do {
          _ = try BusinessHours.stated(source.businessHours)
        } catch {
          throw HaatError(error.code, error.message, field: "\(field).business_hours")
        }
      }
      if source.splitBytes != 0, kind != .posts {
        throw bad(
          "\(field).split_bytes",
          "applies only to posts sources (an export file); a source of kind \(kind) is not split by bytes")
      }
      if source.incremental, !kind.connector.resumable {
        throw bad(
          "\(field).incremental",
          "a source of kind \(kind) keeps no bookmark to start a later run from; incremental applies to API kinds (e.g. facebook_posts)"
        )
      }
      collects.formUnion(kind.connector.records)
      taskCount += kind.connector.taskCount(for: source)
      if source.name.isEmpty {
        let base =
          !source.platform.isEmpty && !source.account.isEmpty
          ? "\(source.platform)/\(source.account)" : "source-\(index + 1)"
        // Two sources of the same account get distinct default names, and none takes a
        // name the spec writes (a later source named `tiktok/a#2` was refused as a repeat
        // of a default, though the spec wrote it once; found by a tester).
        source.name = base
        var suffix = index + 1
        while names.contains(source.name) || written.contains(source.name) {
          source.name = "\(base)#\(suffix)"
          suffix += 1
        }
      }
      guard names.insert(source.name).inserted else {
        throw bad("\(field).name", "\"\(source.name)\" names another source too; names must be unique")
      }
      sources[index] = source
      guard taskCount <= maxTasks else {
        throw bad("sources", "plans more than \(maxTasks) tasks")
      }
    }

    var reports = spec.reports
    if reports.isEmpty { reports = Reports.defaults(for: collects) }
    for (index, report) in reports.enumerated() {
      guard Reports.kernel(named: report) != nil else {
        throw bad("reports[\(index)]", "unknown report \"\(report)\"; use one of \(Reports.names)")
      }
      // Stored twice, it would be asked of every task twice (a tester).
      guard !reports[..<index].contains(report) else {
        throw bad("reports[\(index)]", "names \(report) again; name each report once")
      }
    }

    var stored = spec
    stored.sources = sources
    stored.reports = reports
    stored.maxAttempts = maxAttempts
    stored.retryBaseMs = UInt32(clamping: base)
    stored.retryCapMs = UInt32(clamping: cap)
    if stored.name.isEmpty { stored.name = "job" }

    var tasks: [NewTask] = []
    tasks.reserveCapacity(taskCount)
    var index: UInt32 = 0
    var encoder = TaskSpecEncoder()
    do {
      for (source, kind) in zip(sources, kinds) {
        let pool = Pool(rawValue: source.pool) ?? .collect
        let connector = kind.connector
        let count = connector.taskCount(for: source)
        for part in 0..<count {
          var taskSpec = TaskSpec()
          taskSpec.source = source
          taskSpec.reports = reports
          connector.plan(&taskSpec, part: part, of: source)
          if let rate = connector.defaultRequestsPerSecond, !source.credential.isEmpty {
            // Platform limits are per credential: every source naming it shares one budget.
            taskSpec.rateKey = "credential:\(source.credential)"
            taskSpec.requestsPerSecond = source.requestsPerSecond > 0 ? source.requestsPerSecond : rate
          }
          taskSpec.index = index
          index += 1
          tasks.append(
            NewTask(
              pool: pool, source: source.name, spec: try encoder.encode(&taskSpec),
              resumeKey: source.incremental ? resumeKey(source, part: part, schedule: scheduleName) : nil))
        }
      }
      return NewJob(
        name: stored.name, priority: spec.priority, notBeforeMs: notBeforeMs, maxAttempts: maxAttempts,
        retry: RetryPolicy(baseMs: base, capMs: cap), reports: reports,
        spec: try SpecJSON.data(stored), submittedBy: submittedBy,
        tasks: tasks)
    } catch {
      throw HaatError(.internal, "cannot encode the planned tasks: \(error)")
    }
  }

  /// Where an incremental source's bookmark is kept: the same kind, platform, account and
  /// URL (each length-prefixed, so no two sources share a key), and the task's part.
  /// A schedule's runs keep theirs under the schedule (`BookmarkKeys.schedulePrefix`).
  static func resumeKey(_ source: Source, part: Int, schedule: String?) -> String {
    (schedule.map(BookmarkKeys.schedulePrefix) ?? "")
      + [source.kind, source.platform, source.account, source.url, String(part)]
      .map { "\($0.utf8.count):\($0)" }.joined(separator: "|")
  }

  /// Names a person reads on a terminal must not carry control characters or bidi overrides
  /// (they could rewrite the screen or disguise one name as another).
  static func checkText(_ text: String, field: String) throws(HaatError) {
    if let scalar = DisplayText.firstUnsafe(text) {
      throw HaatError(
        .badSpec, "contains \(scalar), a control or bidi formatting character; names must be plain text",
        field: field)
    }
  }

  /// Fields that cannot work for the source's kind are refused, not ignored: an API kind
  /// needs a credential and takes its API's base URL (no query), and neither `format` nor
  /// `tasks` (those are for export files, and for noop).
  static func checkFieldsApply(_ source: Source, kind: SourceKind, field: String) throws(HaatError) {
    if source.tasks != 0, kind != .noop {
      throw HaatError(
        .badSpec, "applies only to kind noop; a source of kind \(kind) plans its own tasks", field: "\(field).tasks")
    }
    guard kind.connector.defaultRequestsPerSecond != nil else { return }
    if source.credential.isEmpty {
      throw HaatError(
        .badSpec,
        "is required for a source of kind \(kind): its API answers only with a token (name a credential configured on the workers)",
        field: "\(field).credential")
    }
    if !source.format.isEmpty {
      throw HaatError(
        .badSpec, "applies only to export files; a source of kind \(kind) reads its platform's API",
        field: "\(field).format")
    }
    if source.url.contains("?") || source.url.contains("#") {
      throw HaatError(
        .badSpec,
        "is the API's base URL for a source of kind \(kind), with no query or fragment: the connector writes the paths and parameters",
        field: "\(field).url")
    }
  }

  /// A credential is a name the worker knows (`meta`), never a file or variable on it: a
  /// spec that could name those could make a worker send its files anywhere.
  static func checkCredential(_ name: String, field: String) throws(HaatError) {
    if name.hasPrefix("env:") || name.hasPrefix("file:") {
      throw HaatError(
        .badSpec,
        "names a file or variable on the worker; a spec names a credential configured on the workers (e.g. meta), and the operator binds it there with --credential meta=env:META_TOKEN@graph.facebook.com",
        field: field)
    }
    let valid = CredentialName.isValid(name)
    guard valid else {
      throw HaatError(
        .badSpec, "must be a credential name: 1 to 64 letters, digits, \"_\", \"-\" or \".\"", field: field)
    }
  }
}

/// A task spec's wire JSON, as swift-protobuf writes it. Tasks of one source that differ
/// only in their `index` (every no-op or whole-file part) share one encoding with the index's
/// digits put in: writing 5,000 specs field by field took a third of the coordinator loop's
/// time under a stream of 5,000-task jobs.
struct TaskSpecEncoder {
  /// An index no plan reaches (a job has at most `maxTasks`), so its digits mark the place.
  private static let marker: UInt32 = .max
  private static let markerBytes = Array(#""index":\#(marker)"#.utf8)

  /// The last spec encoded in full, with the marker for its index, and its JSON around the
  /// marker's digits.
  private var template: TaskSpec?
  private var head: [UInt8] = []
  private var tail: [UInt8] = []

  /// `spec` comes back as it was: it is marked in place for the comparison, where a copy to
  /// mark cost a copy of its storage per task.
  mutating func encode(_ spec: inout TaskSpec) throws -> Data {
    let index = spec.index
    // Index 0 is a default, which JSON leaves out altogether.
    guard index != 0, index != Self.marker else { return try SpecJSON.data(spec) }
    spec.index = Self.marker
    defer { spec.index = index }
    if spec != template {
      let bytes = [UInt8](try SpecJSON.data(spec))
      // No other field of a task spec is named `index`, and a string's quotes are escaped.
      guard let found = Self.lastRange(of: Self.markerBytes, in: bytes) else {
        template = nil
        spec.index = index
        return try SpecJSON.data(spec)
      }
      head = Array(bytes[..<(found.upperBound - String(Self.marker).utf8.count)])
      tail = Array(bytes[found.upperBound...])
      template = spec
    }
    var data = Data(capacity: head.count + 10 + tail.count)
    data.append(contentsOf: head)
    data.append(contentsOf: String(index).utf8)
    data.append(contentsOf: tail)
    return data
  }

  private static func lastRange(of pattern: [UInt8], in bytes: [UInt8]) -> Range<Int>? {
    guard bytes.count >= pattern.count else { return nil }
    for start in stride(from: bytes.count - pattern.count, through: 0, by: -1)
    where bytes[start..<(start + pattern.count)].elementsEqual(pattern) {
      return start..<(start + pattern.count)
    }
    return nil
  }
}
