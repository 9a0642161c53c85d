import Foundation
import HaatCore
import HaatProtocol
import Testing

@testable import HaatWorker

/// A result is cut to the session's line limit: every line fits, no cell is lost or sent
/// twice, and only the last part carries the count, the bookmark and the stats.
@Suite struct ResultLinesTests {
  static func complete(cells: Int) -> Haat_V1_Complete {
    var complete = Haat_V1_Complete()
    complete.task = "42"
    complete.attempt = 3
    complete.bookmark = "cursor-9"
    complete.stats.rows = UInt64(cells)
    complete.partial.engagement.cells = (0..<cells).map { index in
      var cell = Haat_V1_EngagementCell()
      cell.platform = "facebook"
      cell.account = "account_\(index)"
      cell.mediaType = "video"
      cell.posts = UInt64(index + 1)
      cell.likes = UInt64(index) * 1_000_003
      return cell
    }
    return complete
  }

  static func lineBytes(_ envelope: Envelope) throws -> Int {
    try WireCodec.line(envelope).count - 1
  }

  @Test(arguments: [4096, 16_384, 1 << 20])
  func everyLineFitsAndEveryCellArrivesOnce(limit: Int) throws {
    let whole = Self.complete(cells: 12_000)
    var counter = 0
    let envelopes = ResultLines.envelopes(for: .complete(whole), maxLineBytes: limit) {
      counter += 1
      return "w\(counter)"
    }
    #expect(envelopes.count > 1)
    var accounts: [String] = []
    for (index, envelope) in envelopes.enumerated() {
      #expect(try Self.lineBytes(envelope) <= limit)
      guard case .complete(let part)? = envelope.body else {
        Issue.record("part \(index) is not a complete")
        continue
      }
      #expect(part.task == "42" && part.attempt == 3)
      #expect(part.part == UInt32(index + 1))
      let last = index == envelopes.count - 1
      #expect(part.parts == (last ? UInt32(envelopes.count) : 0))
      #expect(part.bookmark == (last ? "cursor-9" : ""))
      #expect(part.stats.rows == (last ? 12_000 : 0))
      accounts += part.partial.engagement.cells.map(\.account)
    }
    #expect(accounts == whole.partial.engagement.cells.map(\.account))
  }

  /// With `welcome.partial_binary`, the partial travels as bytes: every line fits, the
  /// parts' bytes joined are the partial, only the last part has the count and the stats,
  /// and no line carries a JSON partial.
  @Test(arguments: [4096, 16_384, 262_144])
  func binaryPartsFitAndJoinToThePartial(limit: Int) throws {
    let whole = Self.complete(cells: 12_000)
    var counter = 0
    let envelopes = ResultLines.envelopes(for: .complete(whole), binary: true, maxLineBytes: limit) {
      counter += 1
      return "w\(counter)"
    }
    #expect(envelopes.count > 1)
    var joined: [UInt8] = []
    for (index, envelope) in envelopes.enumerated() {
      #expect(try Self.lineBytes(envelope) <= limit)
      let part = try #require(envelope.body.flatMap { if case .complete(let c) = $0 { c } else { nil } })
      #expect(!part.hasPartial && !part.partialBinary.isEmpty)
      #expect(part.part == UInt32(index + 1))
      let last = index == envelopes.count - 1
      #expect(part.parts == (last ? UInt32(envelopes.count) : 0))
      #expect(part.bookmark == (last ? "cursor-9" : ""))
      #expect(part.stats.rows == (last ? 12_000 : 0))
      joined += part.partialBinary
    }
    #expect(try Partial(serializedBytes: joined) == whole.partial)
    // One line when it fits, with the partial's bytes as they are.
    let small = Self.complete(cells: 3)
    let one = ResultLines.envelopes(for: .complete(small), binary: true, maxLineBytes: 1 << 20) { "w1" }
    let line = try #require(one.first.flatMap { $0.body }.flatMap { if case .complete(let c) = $0 { c } else { nil } })
    #expect(one.count == 1 && line.part == 0 && line.parts == 0 && line.stats == small.stats)
    #expect(try Partial(serializedBytes: line.partialBinary) == small.partial)
  }

  @Test func aBinaryCellOverTheLimitFailsTheTask() throws {
    var whole = Self.complete(cells: 2)
    whole.partial.engagement.cells[1].account = String(repeating: "x", count: 10_000)
    let envelopes = ResultLines.envelopes(for: .complete(whole), binary: true, maxLineBytes: 4096) { "w1" }
    let fail = try #require(
      envelopes.first.flatMap { $0.body }.flatMap { if case .fail(let f) = $0 { f } else { nil } })
    #expect(envelopes.count == 1 && fail.error.code == "too_large" && !fail.retryable)
    #expect(fail.error.message.contains("base64"))
  }

  @Test func aSmallResultIsOneLine() throws {
    let envelopes = ResultLines.envelopes(for: .complete(Self.complete(cells: 3)), maxLineBytes: 1 << 20) { "w1" }
    #expect(envelopes.count == 1)
    guard case .complete(let complete)? = envelopes.first?.body else {
      Issue.record("not a complete")
      return
    }
    #expect(complete.part == 0 && complete.parts == 0)
  }

  /// A cell that cannot fit in any line is the task's clear, final failure.
  @Test func aCellOverTheLimitFailsTheTask() throws {
    var whole = Self.complete(cells: 2)
    whole.partial.engagement.cells[1].account = String(repeating: "x", count: 10_000)
    let envelopes = ResultLines.envelopes(for: .complete(whole), maxLineBytes: 4096) { "w1" }
    guard envelopes.count == 1, case .fail(let fail)? = envelopes.first?.body else {
      Issue.record("expected one fail, got \(envelopes.count) lines")
      return
    }
    #expect(fail.error.code == "too_large")
    #expect(!fail.retryable)
    #expect(try Self.lineBytes(envelopes[0]) <= 4096)
  }

  /// An empty result is sent without measuring it, and it does fit the smallest limit;
  /// anything that could be long is measured.
  @Test func anEmptyResultIsSmallAndFits() throws {
    var empty = Self.complete(cells: 0)
    empty.stats.httpStatuses = ["200": 3, "429": 1]
    #expect(ResultLines.isSmall(empty))
    let envelopes = ResultLines.envelopes(for: .complete(empty), maxLineBytes: Int(Defaults.minLineBytes)) { "w1" }
    #expect(envelopes.count == 1)
    #expect(try Self.lineBytes(envelopes[0]) < 1_024)
    #expect(!ResultLines.isSmall(Self.complete(cells: 1)))
    var rowErrors = empty
    rowErrors.stats.rowErrors = [RowError()]
    #expect(!ResultLines.isSmall(rowErrors))
    var bookmark = empty
    bookmark.bookmark = String(repeating: "b", count: 5_000)
    #expect(!ResultLines.isSmall(bookmark))
    // Another report's section is measured, however the partial was built.
    var otherReport = empty
    otherReport.partial.bestTime.groups = [Haat_V1_BestTimeGroup()]
    #expect(!ResultLines.isSmall(otherReport))
    var untouched = Haat_V1_Complete()
    untouched.task = "1"
    #expect(ResultLines.isSmall(untouched))
    untouched.partial.bestTime.overflowed = true
    #expect(!ResultLines.isSmall(untouched))
  }
}
