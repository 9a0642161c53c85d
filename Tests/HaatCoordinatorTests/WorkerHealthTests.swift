import HaatCore
import HaatProtocol
import Testing

@testable import HaatCoordinator

/// Issue 10, defect 4: a worker's health never compares its wall clock with the
/// coordinator's; progress is when this coordinator saw the worker's numbers move.
@Suite struct WorkerHealthTests {
  static func record(now: UInt64) -> WorkerRecord {
    WorkerRecord(
      name: "w", host: "h", pid: 1, version: "v", address: "a", pools: [], connectedMs: 0, lastHeartbeatMs: 0,
      lastHeartbeat: now, lastProgress: now)
  }

  static let second: UInt64 = 1_000_000_000

  @Test func aWorkerWhoseClockStepsBackIsStillHealthy() {
    var worker = Self.record(now: 0)
    var health = WorkerHealth()
    // The worker's wall clock reads an hour behind the coordinator's.
    for beat in 1...20 {
      health.lastProgressMs = 1_000_000 - 3_600_000 + Int64(beat) * 1_000
      worker.beat(health, now: UInt64(beat) * Self.second)
    }
    #expect(worker.state(now: 20 * Self.second, heartbeatMs: 1_000, leaseMs: 5_000, leases: 2) == "healthy")
  }

  @Test func aWorkerThatMakesNoProgressStalls() {
    var worker = Self.record(now: 0)
    var health = WorkerHealth()
    health.lastProgressMs = 42
    for beat in 1...20 { worker.beat(health, now: UInt64(beat) * Self.second) }
    #expect(worker.state(now: 20 * Self.second, heartbeatMs: 1_000, leaseMs: 5_000, leases: 2) == "stalled")
    // Idle, holding nothing: not stalled.
    #expect(worker.state(now: 20 * Self.second, heartbeatMs: 1_000, leaseMs: 5_000, leases: 0) == "healthy")
  }

  /// Found by a tester: through a platform's pause every worker, waiting for its rate slot,
  /// showed `stalled` (with advice to move its tasks away). A granted wait is progress until
  /// its slot is due; past it, no bytes for the threshold is a stall again.
  @Test func aWorkerWaitingForItsRateSlotIsNotStalled() {
    var worker = Self.record(now: 0)
    var health = WorkerHealth()
    health.lastProgressMs = 42
    worker.rateWaitEnds = 50 * Self.second
    for beat in 1...40 { worker.beat(health, now: UInt64(beat) * Self.second) }
    #expect(worker.state(now: 40 * Self.second, heartbeatMs: 1_000, leaseMs: 5_000, leases: 2) == "healthy")
    for beat in 41...60 { worker.beat(health, now: UInt64(beat) * Self.second) }
    #expect(worker.state(now: 60 * Self.second, heartbeatMs: 1_000, leaseMs: 5_000, leases: 2) == "stalled")
  }
}
