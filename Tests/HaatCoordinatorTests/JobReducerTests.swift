import Foundation
import HaatCore
import HaatProtocol
import Testing

@testable import HaatCoordinator
@testable import HaatStore

/// A job's end, from stored outputs alone: no store, no loop.
@Suite struct JobReducerTests {
  static func record(_ id: Int64 = 9, reports: [String] = ["engagement"]) -> JobRecord {
    JobRecord(
      id: JobID(id), name: "j", state: .running, priority: 0, createdMs: 0, startedMs: 0, finishedMs: 0,
      notBeforeMs: 0, maxAttempts: 3, reports: reports, error: "", submittedBy: "test", spec: Data(),
      counts: TaskCounts(), tasks: [])
  }

  /// A stored partial: binary, as the store keeps one, or JSON, as stores before 2026-12 did.
  static func partial(likes: UInt64, json: Bool = false) throws -> Data {
    var cell = Haat_V1_EngagementCell()
    cell.platform = "instagram"
    cell.account = "a"
    cell.mediaType = "image"
    cell.posts = 1
    cell.likes = likes
    var partial = Partial()
    partial.engagement.cells = [cell]
    return json ? try partial.jsonUTF8Data(options: WireCodec.encodingOptions) : try partial.serializedData()
  }

  static func output(_ index: Int, _ state: TaskState, partial: Data? = nil, error: TaskError? = nil) -> TaskOutput {
    TaskOutput(
      task: TaskID(Int64(100 + index)), index: index, source: "s\(index)", state: state, partial: partial, stats: nil,
      lastError: error)
  }

  static func report(_ outcome: JobReducer.Outcome) throws -> Report {
    try JobReducer.storedReport(outcome.report)
  }

  /// Both stored forms read: a job in flight across an upgrade keeps its JSON partials.
  @Test func donePartialsMergeIntoTheReport() throws {
    let outcome = try JobReducer.reduce(
      Self.record(),
      outputs: [
        Self.output(0, .done, partial: try Self.partial(likes: 3)),
        Self.output(1, .done, partial: try Self.partial(likes: 4, json: true)),
      ],
      cancelled: false)
    #expect(outcome.state == .succeeded)
    #expect(outcome.error.isEmpty)
    #expect(try Self.report(outcome).engagement.total.likes == 7)
  }

  /// A partial merged as its result came in counts once: the job's end does not decode
  /// that task's stored partial again (garbage there goes unread) and merges the rest.
  @Test func partialsMergedEarlyCountOnce() throws {
    let early = EarlyReduce()
    early.merge(TaskID(100), stored: try Self.partial(likes: 3))
    early.merge(TaskID(100), stored: try Self.partial(likes: 3))  // a second time: ignored
    early.merge(TaskID(102), stored: Data("{oops".utf8))  // does not decode: left to the end
    let outcome = try JobReducer.reduce(
      Self.record(),
      outputs: [
        Self.output(0, .done, partial: Data("not read again".utf8)),
        Self.output(1, .done, partial: try Self.partial(likes: 4)),
        Self.output(2, .done, partial: try Self.partial(likes: 5)),
      ],
      cancelled: false, merged: early.merged)
    #expect(outcome.state == .succeeded && outcome.error.isEmpty)
    #expect(outcome.mergedEarly == 1)
    #expect(try Self.report(outcome).engagement.total.likes == 12)
  }

  /// The report is stored in binary; one an older coordinator stored as JSON still reads.
  @Test func storedReportsReadInBothForms() throws {
    let outcome = try JobReducer.reduce(
      Self.record(), outputs: [Self.output(0, .done, partial: try Self.partial(likes: 7))], cancelled: false)
    #expect(outcome.report.first != UInt8(ascii: "{"))
    let report = try Report(serializedBytes: outcome.report)
    #expect(report.engagement.total.likes == 7)
    let json = try report.jsonUTF8Data(options: WireCodec.encodingOptions)
    #expect(try JobReducer.storedReport(json) == report)
    #expect(throws: (any Error).self) { try JobReducer.storedReport(Data("{oops".utf8)) }
  }

  @Test func aDeadTaskIsNamedAndItsSourceMissing() throws {
    let outcome = try JobReducer.reduce(
      Self.record(),
      outputs: [
        Self.output(0, .done, partial: try Self.partial(likes: 3)),
        Self.output(1, .dead, error: TaskError(code: "http_404", message: "HTTP 404")),
      ], cancelled: false)
    #expect(outcome.state == .partial)
    #expect(outcome.error.contains("1 of 2 tasks are dead"))
    #expect(outcome.error.contains("s1: http_404"))
    let report = try Self.report(outcome)
    #expect(report.engagement.total.likes == 3)
    #expect(report.summary.missing.map(\.source) == ["s1"])
  }

  @Test func anUnreadablePartialFailsTheJobInsteadOfVanishing() throws {
    let outcome = try JobReducer.reduce(
      Self.record(),
      outputs: [
        Self.output(0, .done, partial: try Self.partial(likes: 3)), Self.output(1, .done, partial: Data("{oops".utf8)),
      ],
      cancelled: false)
    #expect(outcome.state == .failed)
    #expect(outcome.error.contains("unreadable"))
    #expect(outcome.error.contains("101"))
  }

  @Test func sumsPastTheLimitFailTheJobAndSaySo() throws {
    let outcome = try JobReducer.reduce(
      Self.record(),
      outputs: [
        Self.output(0, .done, partial: try Self.partial(likes: .max)),
        Self.output(1, .done, partial: try Self.partial(likes: 7)),
      ], cancelled: false)
    #expect(outcome.state == .failed)
    #expect(outcome.error.hasPrefix("overflow:"))
  }

  @Test func aCancelledJobEndsCancelled() throws {
    let outcome = try JobReducer.reduce(
      Self.record(), outputs: [Self.output(0, .cancelled)], cancelled: true)
    #expect(outcome.state == .cancelled)
  }
}

/// Byte ranges of a CSV export that disagree about the quotes before them are said in the
/// report, not left to misread records silently.
@Suite struct RangeAgreementTests {
  static func output(_ index: Int, start: UInt64, end: UInt64, inQuotes: Bool, odd: Bool) throws -> TaskOutput {
    var quotes = RangeQuotes()
    quotes.start = start
    quotes.end = end
    quotes.startsInQuotes = inQuotes
    quotes.oddQuotes = odd
    var stats = TaskStats()
    stats.rangeQuotes = quotes
    var output = JobReducerTests.output(index, .done)
    output.source = "big"
    output.stats = try stats.jsonUTF8Data(options: WireCodec.encodingOptions)
    return output
  }

  @Test func rangesThatAgreeSayNothingAndOneThatDisagreesIsNamed() throws {
    let agreeing = [
      try Self.output(0, start: 0, end: 100, inQuotes: false, odd: true),
      try Self.output(1, start: 100, end: 200, inQuotes: true, odd: false),
      try Self.output(2, start: 200, end: 300, inQuotes: true, odd: true),
    ]
    let fine = try JobReducer.reduce(JobReducerTests.record(), outputs: agreeing, cancelled: false)
    let report = try JobReducer.storedReport(fine.report)
    #expect(report.summary.rowErrors.isEmpty)
    #expect(fine.state == .succeeded)

    // The middle range guessed outside quotes where the first range's quotes say inside.
    var disagreeing = agreeing
    disagreeing[1] = try Self.output(1, start: 100, end: 200, inQuotes: false, odd: false)
    let flagged = try JobReducer.reduce(JobReducerTests.record(), outputs: disagreeing, cancelled: false)
    let errors = try JobReducer.storedReport(flagged.report).summary.rowErrors
    #expect(errors.map(\.column) == ["bytes 100..<200"], "only the range that guessed wrong")
    #expect(errors.first?.source == "big" && errors.first?.message.contains("RFC 4180") == true)
    // Its totals are not to be trusted: the job did not succeed, and says why.
    #expect(flagged.state == .partial)
    #expect(flagged.error.contains("1 byte range of big (first: bytes 100..<200) may be misread"), "\(flagged.error)")
  }
  /// Found by a tester: replies to sessions that had closed were still built (a minute of
  /// both cores for three closed sessions' unread results). A read whose session has gone
  /// builds nothing; one whose session is there builds its lines.
  @Test func aResultForASessionThatHasGoneIsNotBuilt() throws {
    let report = try Report().serializedData()
    var record = JobReducerTests.record()
    record.state = .succeeded
    let lines = try CoordinatorCore.resultLines(record, report: report, replyTo: "r", maxLineBytes: 1 << 20)
    #expect(lines.count == 1)
    let gone = SessionGone()
    gone.set()
    #expect(throws: SessionClosed.self) {
      try CoordinatorCore.resultLines(record, report: report, replyTo: "r", maxLineBytes: 1 << 20, gone: gone)
    }
  }
}
