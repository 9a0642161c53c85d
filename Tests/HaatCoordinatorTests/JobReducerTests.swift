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

  static func partial(likes: UInt64) throws -> Data {
    var cell = Haat_V1_EngagementCell()
    cell.platform = "instagram"
    cell.account = "a"
    cell.mediaType = "image"
    cell.posts = 1
    cell.likes = likes
    var partial = Partial()
    partial.engagement.cells = [cell]
    return try partial.jsonUTF8Data(options: WireCodec.encodingOptions)
  }

  static func output(_ index: Int, _ state: TaskState, partial: Data? = nil, error: TaskError? = nil) -> TaskOutput {
    TaskOutput(
      task: TaskID(Int64(100 + index)), index: index, source: "s\(index)", state: state, partial: partial, stats: nil,
      lastError: error)
  }

  static func report(_ outcome: JobReducer.Outcome) throws -> Report {
    try Report(jsonUTF8Data: outcome.report, options: WireCodec.decodingOptions)
  }

  @Test func donePartialsMergeIntoTheReport() throws {
    let outcome = try JobReducer.reduce(
      Self.record(),
      outputs: [
        Self.output(0, .done, partial: try Self.partial(likes: 3)),
        Self.output(1, .done, partial: try Self.partial(likes: 4)),
      ],
      cancelled: false)
    #expect(outcome.state == .succeeded)
    #expect(outcome.error.isEmpty)
    #expect(try Self.report(outcome).engagement.total.likes == 7)
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
