import HaatProtocol
import Synchronization
import Testing

@testable import HaatWorker

/// Found by a tester: every message the gate sent wrapped its delivery closure in two more
/// reabstraction thunks, so each send ran through all the earlier ones; a worker died of a
/// stack overflow (exit 139) after about 15,000 rate-limited requests.
@Suite struct RateGateTests {
  @Test func sendingManyMessagesDoesNotGrowTheDelivery() {
    let gate = RateGate()
    let sent = Atomic<Int>(0)
    gate.connect { _ in sent.add(1, ordering: .relaxed) }
    // Far past the count that overflowed the stack; linear time, where it was quadratic.
    for _ in 0..<100_000 { gate.send(Envelope(id: "", .ratePause(Haat_V1_RatePause()))) }
    #expect(sent.load(ordering: .relaxed) == 100_000)
  }
}
