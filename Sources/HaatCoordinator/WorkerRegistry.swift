import HaatCore
import HaatProtocol

/// What the coordinator knows of a worker, connected or not.
struct WorkerRecord {
  var name: String
  var host: String
  var pid: UInt32
  var version: String
  var address: String
  var pools: [Haat_V1_PoolState]
  var connectedMs: Int64
  var lastHeartbeatMs: Int64
  /// Monotonic nanoseconds of the last heartbeat (or the connection).
  var lastHeartbeat: UInt64
  /// Monotonic nanoseconds when this coordinator last saw the worker make progress (its
  /// `last_progress_ms` or its task counts moved), or the connection. The worker's own
  /// clock is never compared with this one.
  var lastProgress: UInt64
  /// When the latest rate slot granted to it is due (monotonic ns): a worker waiting for
  /// its slot (a platform's pause, a slow budget) is not stalled until then.
  var rateWaitEnds: UInt64 = 0
  var health = WorkerHealth()
  /// Results the coordinator accepted from this worker, and failures it recorded.
  var tasksDone: UInt64 = 0
  var tasksFailed: UInt64 = 0
  var connected = true
  /// The worker said it is draining (`drain {}` or its health's flag).
  var draining = false
  /// It left after `drain {}` holding no lease: `gone`. One that left holding leases, or
  /// that only set its health's flag, is `lost` (it was shown `gone`, "nothing to do", while
  /// its leases expired: a tester).
  var leftDrained = false
  /// Its fall silent was logged (once per fall, until it is heard from again).
  var saidLost = false

  /// Records a heartbeat's health, noting progress when the worker reports any.
  mutating func beat(_ health: WorkerHealth, now: UInt64) {
    if health.lastProgressMs != self.health.lastProgressMs || health.tasksDone != self.health.tasksDone
      || health.tasksFailed != self.health.tasksFailed
    {
      lastProgress = now
    }
    self.health = health
    lastHeartbeat = now
  }

  /// Moves its last heartbeat and progress `pause` later (to `now` at most): the
  /// coordinator did not run for that long (`CoordinatorCore.reap`).
  mutating func postpone(by pause: UInt64, now: UInt64) {
    lastHeartbeat = min(lastHeartbeat &+ pause, now)
    lastProgress = min(lastProgress &+ pause, now)
  }

  /// Whether it missed the heartbeats that make a connected worker `lost`.
  func silent(now: UInt64, heartbeatMs: UInt32) -> Bool {
    now &- lastHeartbeat > UInt64(heartbeatMs) * UInt64(Defaults.missedBeatsForLost) * 1_000_000
  }

  /// healthy, stalled, lost, draining or gone (docs/operations.md).
  func state(now: UInt64, heartbeatMs: UInt32, leaseMs: UInt32, leases: Int) -> String {
    if !connected { return leftDrained ? "gone" : "lost" }
    if draining { return "draining" }
    if silent(now: now, heartbeatMs: heartbeatMs) { return "lost" }
    let sinceProgress = now &- max(lastProgress, min(rateWaitEnds, now))
    if leases > 0, sinceProgress > max(UInt64(leaseMs), UInt64(heartbeatMs) * 3) * 1_000_000 { return "stalled" }
    return "healthy"
  }
}
