import HaatProtocol
import Testing

@testable import HaatCoordinator

/// The log ring is shared by every worker: one that floods it loses its own oldest lines
/// once it holds more than its share, so the others' lines stay (a tester's stolen worker
/// token pushed out every other worker's warnings in under a second).
@Suite struct LogStoreTests {
  static func line(_ worker: String, _ message: String) -> Haat_V1_Log {
    var line = Haat_V1_Log()
    line.worker = worker
    line.message = message
    return line
  }

  @Test func aFloodingWorkerPushesOutItsOwnLinesNotTheOthers() {
    var store = LogStore(capacity: 100)
    for index in 0..<30 { store.append(Self.line("quiet", "q\(index)")) }
    for index in 0..<100_000 { store.append(Self.line("flood", "f\(index)")) }
    let kept = store.tail(limit: 1_000) { _ in true }
    #expect(store.count == 100 && kept.count == 100)
    #expect(kept.filter { $0.worker == "quiet" }.map(\.message) == (0..<30).map { "q\($0)" })
    // The flood keeps its newest lines, in order.
    #expect(kept.filter { $0.worker == "flood" }.map(\.message) == (99_930..<100_000).map { "f\($0)" })
  }

  /// Found by a tester: four floods of 8 KiB lines, started one after another, each took
  /// room while under its share from the oldest line of all: the quiet workers' first.
  @Test func floodsStartingOneAfterAnotherLeaveTheQuietWorkersLines() {
    let big = String(repeating: "x", count: 8_192)
    var store = LogStore(capacity: 10_000, capacityBytes: 1 << 20)
    for index in 0..<5 { store.append(Self.line("quiet-\(index % 2)", "q\(index)")) }
    for flood in 0..<4 {
      for _ in 0..<400 { store.append(Self.line("flood-\(flood)", big)) }
    }
    #expect(store.bytes <= 1 << 20)
    #expect(store.tail(limit: 10_000) { $0.worker.hasPrefix("quiet") }.count == 5)
  }

  @Test func withinTheirSharesTheOldestLineGoesFirst() {
    var store = LogStore(capacity: 10)
    for index in 0..<40 { store.append(Self.line(index % 2 == 0 ? "a" : "b", "\(index)")) }
    #expect(store.tail(limit: 100) { _ in true }.map(\.message) == (30..<40).map { "\($0)" })
  }

  @Test func theByteBoundIsSharedTheSameWay() {
    let size = LogStore.size(Self.line("flood", String(repeating: "x", count: 1_000)))
    var store = LogStore(capacity: 10_000, capacityBytes: size * 20)
    for index in 0..<5 { store.append(Self.line("quiet", "q\(index)")) }
    for _ in 0..<2_000 { store.append(Self.line("flood", String(repeating: "x", count: 1_000))) }
    #expect(store.bytes <= size * 20)
    #expect(store.tail(limit: 100) { $0.worker == "quiet" }.count == 5)
    // Compaction keeps the sequence numbers right: a later line of each still reads back.
    store.append(Self.line("quiet", "last"))
    #expect(store.tail(limit: 1) { _ in true }.map(\.message) == ["last"])
  }
}

/// A worker's log lines are paced: a burst, then a steady rate; past it the session goes
/// unread for as long as the bucket needs (a tester's 115,000 lines a second kept other
/// clients' handshakes waiting 5 s).
@Suite struct LogPaceTests {
  @Test func aBurstGoesThenTheSessionWaitsForItsRate() {
    var pace = LogPace()
    let start: UInt64 = 1_000_000_000
    for _ in 0..<Int(LogPace.burst) { #expect(pace.take(now: start) == nil) }
    // The next line is past the burst: half a millisecond's worth at 2,000 a second.
    let wait = pace.take(now: start)
    #expect(wait == 1)
    // A second later, 2,000 more fit.
    for _ in 0..<1_999 { #expect(pace.take(now: start + 1_000_000_000) == nil) }
    #expect(pace.take(now: start + 1_000_000_000) != nil)
  }
}
