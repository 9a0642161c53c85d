import Foundation
import HaatProtocol
import Testing

@testable import HaatCoordinator

@Suite("Rate governor")
struct RateGovernorTests {
  @Test("slots are spaced 1/rate apart whoever asks, so no second holds more than rate + 1")
  func slotsAreSpaced() {
    var governor = RateGovernor()
    // 200 requests all at once at 20/s: slots 50 ms apart.
    let waits = (0..<200).map { _ in governor.grant(key: "credential:meta", requestsPerSecond: 20, nowMs: 1_000) }
    #expect(waits.prefix(3) == [0, 50, 100])
    let slots = waits.map { 1_000 + $0 }
    for start in stride(from: Int64(1_000), to: 11_000, by: 7) {
      #expect(slots.filter { $0 >= start && $0 < start + 1_000 }.count <= 21)
    }
    // Another key has its own budget.
    #expect(governor.grant(key: "credential:tiktok", requestsPerSecond: 20, nowMs: 1_000) == 0)
  }

  @Test("an idle key does not bank slots: a burst after a quiet spell is still spaced")
  func noBanking() {
    var governor = RateGovernor()
    _ = governor.grant(key: "k", requestsPerSecond: 10, nowMs: 0)
    let waits = (0..<3).map { _ in governor.grant(key: "k", requestsPerSecond: 10, nowMs: 60_000) }
    #expect(waits == [0, 100, 200])
  }

  @Test("a pause holds every slot of the key until it ends")
  func pauseHoldsTheKey() {
    var governor = RateGovernor()
    governor.pause(key: "k", pauseMs: 5_000, worker: "w-3", reason: "(#80001) too many calls", nowMs: 1_000)
    #expect(governor.grant(key: "k", requestsPerSecond: 10, nowMs: 2_000) == 4_000)
    #expect(governor.grant(key: "k", requestsPerSecond: 10, nowMs: 2_000) == 4_100)
    let pauses = governor.pauses(nowMs: 2_000)
    #expect(pauses.map(\.key) == ["k"] && pauses.first?.worker == "w-3" && pauses.first?.untilMs == 6_000)
    #expect(governor.pauses(nowMs: 6_000).isEmpty)
    // A shorter report does not shorten a pause; an hour is the most.
    governor.pause(key: "k", pauseMs: 10, worker: "w-1", reason: "", nowMs: 2_000)
    #expect(governor.pauses(nowMs: 2_000).first?.untilMs == 6_000)
    governor.pause(key: "k", pauseMs: 100_000_000, worker: "w-1", reason: "", nowMs: 2_000)
    #expect(governor.pauses(nowMs: 2_000).first?.untilMs == 2_000 + RateGovernor.maxPauseMs)
  }

  @Test(
    "an operator's unpause frees the key at once; slots already granted keep their place and the next comes after them; a key not paused has none to lift"
  )
  func unpauseFreesTheKey() {
    var governor = RateGovernor()
    #expect(governor.clearPause(key: "k", nowMs: 1_000) == nil)
    governor.pause(key: "k", pauseMs: 60_000, worker: "w-3", reason: "", nowMs: 1_000)
    #expect(governor.clearPause(key: "k", nowMs: 3_000) == 61_000)
    #expect(governor.pauses(nowMs: 3_000).isEmpty)
    #expect(governor.grant(key: "k", requestsPerSecond: 10, nowMs: 3_000) == 0)
    #expect(governor.grant(key: "k", requestsPerSecond: 10, nowMs: 3_000) == 100)
    #expect(governor.clearPause(key: "k", nowMs: 3_000) == nil)
    // Found by a tester: a worker waits for a slot granted during the pause (at its end);
    // the unpause moved the next slot back to now, so from the pause's end two streams of
    // slots ran side by side, twice the budget. The next slot now follows the granted ones.
    governor.pause(key: "k", pauseMs: 60_000, worker: "w-3", reason: "", nowMs: 4_000)
    #expect(governor.grant(key: "k", requestsPerSecond: 10, nowMs: 5_000) == 59_000)
    #expect(governor.grant(key: "k", requestsPerSecond: 10, nowMs: 5_000) == 59_100)
    #expect(governor.clearPause(key: "k", nowMs: 6_000) == 64_000)
    #expect(governor.grant(key: "k", requestsPerSecond: 10, nowMs: 6_000) == 58_200)
  }

  @Test("sources sharing a key: the lowest rate stated in the last minute holds")
  func lowestRateHolds() {
    var governor = RateGovernor()
    _ = governor.grant(key: "k", requestsPerSecond: 10, nowMs: 0)
    _ = governor.grant(key: "k", requestsPerSecond: 2, nowMs: 0)
    #expect(governor.keys["k"]?.requestsPerSecond == 2)
    _ = governor.grant(key: "k", requestsPerSecond: 10, nowMs: 30_000)
    #expect(governor.keys["k"]?.requestsPerSecond == 2)
    _ = governor.grant(key: "k", requestsPerSecond: 10, nowMs: 61_000)
    #expect(governor.keys["k"]?.requestsPerSecond == 10)
  }

  @Test("the keys kept are bounded")
  func keysAreBounded() {
    var governor = RateGovernor()
    for index in 0..<(RateGovernor.maxKeys + 50) {
      _ = governor.grant(key: "k\(index)", requestsPerSecond: 1, nowMs: Int64(index))
    }
    #expect(governor.keys.count == RateGovernor.maxKeys)
    #expect(governor.keys["k0"] == nil && governor.keys["k\(RateGovernor.maxKeys + 49)"] != nil)
  }
}

/// The rate key a lease may ask slots under is read from the task's stored spec.
@Suite("A lease's rate key")
struct LeaseRateKeyTests {
  @Test func theSpecsOwnRateKeyAndNoOther() throws {
    var governed = TaskSpec()
    governed.source.name = "pages"
    governed.rateKey = "credential:meta"
    governed.requestsPerSecond = 5
    let json = try governed.jsonUTF8Data(options: WireCodec.encodingOptions)
    #expect(CoordinatorCore.rateLimit(ofSpec: json).key == "credential:meta")
    // And its budget, which spaces the slots whatever a worker's request states.
    #expect(CoordinatorCore.rateLimit(ofSpec: json) == ("credential:meta", 5))
    // A source whose own text says `"rate_key":"…"` names no key: only the spec's field does.
    var other = TaskSpec()
    other.source.name = #""rate_key":"credential:victim""#
    other.source.kind = "noop"
    #expect(CoordinatorCore.rateLimit(ofSpec: try other.jsonUTF8Data(options: WireCodec.encodingOptions)).key == "")
    #expect(CoordinatorCore.rateLimit(ofSpec: Data(#"{"source":{"kind":"noop"}}"#.utf8)).key == "")
    #expect(CoordinatorCore.rateLimit(ofSpec: Data()).key == "")
    #expect(CoordinatorCore.rateLimit(ofSpec: Data(#"{"rate_key":"#.utf8)).key == "")
  }
}
