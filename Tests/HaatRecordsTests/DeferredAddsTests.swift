import Foundation
import HaatProtocol
import HaatRecords
import Testing

@testable import HaatAnalytics

@Suite struct DeferredAddsTests {
  /// Entries come back by position, in the order held within a position, each once, a run
  /// per position that has any.
  @Test func drainsByPositionInTheOrderHeld() {
    var generator = SystemRandomNumberGenerator()
    var adds = DeferredAdds<Int>()
    var held: [(position: Int, entry: Int)] = []
    for entry in 0..<10_000 {
      let position = Int.random(in: 0..<300, using: &generator)
      adds.append(entry, at: position)
      held.append((position, entry))
    }
    var drained: [(position: Int, entry: Int)] = []
    var runs: [Int] = []
    adds.drain(cells: 300) { position, run in
      runs.append(position)
      #expect(!run.isEmpty)
      for entry in run { drained.append((position, entry)) }
    }
    #expect(runs == Array(Set(held.map(\.position))).sorted())
    // Entries are numbered in the order held: by position, then by number.
    let expected = held.sorted { ($0.position, $0.entry) < ($1.position, $1.entry) }
    #expect(drained.map(\.position) == expected.map(\.position))
    #expect(drained.map(\.entry) == expected.map(\.entry))
    #expect(adds.isEmpty && !adds.isFull)
    adds.drain(cells: 300) { _, _ in Issue.record("an empty buffer drains nothing") }
  }

  /// Past the buffer's capacity a kernel adds what waits in the middle of a task: its
  /// report is the one any split of the same posts gives, nothing lost or added twice.
  @Test func kernelsThatFlushMidTaskLoseNothing() async throws {
    let reports = try await offPool {
      let records = Self.records()
      return try ["engagement", "best_time"].map { name in
        (name, try finishedReport(name, of: records), try finishedReport(name, of: records, parts: 3))
      }
    }
    for (name, whole, split) in reports { #expect(whole == split, "\(name)") }
  }

  /// More posts than the buffer holds, over 60 accounts with their reader's indexes.
  static func records() -> [CanonicalRecord] {
    var generator = SystemRandomNumberGenerator()
    var records: [CanonicalRecord] = []
    for index in 0..<(DeferredAdds<Int>.capacity + 9_000) {
      let account = Int.random(in: 0..<60, using: &generator)
      var record = post(
        index, platform: ["instagram", "x"][account % 2], account: "acct_\(account)",
        media: MediaType.allCases[index % MediaType.allCases.count])
      record.accountIndex = Int32(account)
      record.createdAt = Values.Timestamp(
        epochSeconds: 1_772_368_200 + Int64.random(in: 0..<604_800, using: &generator), offsetMinutes: 0)
      record.likes = UInt64.random(in: 0..<500, using: &generator)
      record.reach = index % 7 == 0 ? nil : UInt64.random(in: 1..<5_000, using: &generator)
      record.impressions = index % 5 == 0 ? nil : UInt64.random(in: 1..<9_000, using: &generator)
      records.append(.post(record))
    }
    return records
  }
}
