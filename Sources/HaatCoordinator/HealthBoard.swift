import HaatProtocol
import NIOCore

/// The health that heartbeats report, gathered on one session loop and handed to the core
/// together every `periodMs`: the heartbeat itself is answered at once (SessionHandler), and
/// its health need not reach the core's loop one task per heartbeat.
final class HealthBoard: @unchecked Sendable {
  // @unchecked: `pending` and `scheduled` are touched only on `loop`.

  /// One heartbeat's report, with when it arrived.
  struct Beat: Sendable {
    var connection: Connection
    var health: Haat_V1_WorkerHealth
    /// Monotonic nanoseconds, and the wall clock in milliseconds.
    var now: UInt64
    var nowMs: Int64
  }

  static let periodMs: Int64 = 100

  let loop: any EventLoop
  private let core: CoordinatorCore
  private var pending: [Beat] = []
  private var scheduled = false

  init(loop: any EventLoop, core: CoordinatorCore) {
    self.loop = loop
    self.core = core
  }

  /// One board per session loop of `core`, by loop.
  static func boards(for core: CoordinatorCore) -> [ObjectIdentifier: HealthBoard] {
    var boards: [ObjectIdentifier: HealthBoard] = [:]
    for loop in core.sessionLoops { boards[ObjectIdentifier(loop)] = HealthBoard(loop: loop, core: core) }
    return boards
  }

  func record(_ beat: Beat) {
    loop.preconditionInEventLoop()
    pending.append(beat)
    guard !scheduled else { return }
    scheduled = true
    loop.assumeIsolated().scheduleTask(in: .milliseconds(Self.periodMs)) { self.handOver() }
  }

  private func handOver() {
    scheduled = false
    let beats = pending
    pending.removeAll(keepingCapacity: true)
    let core = self.core
    core.loop.execute { core.recordHeartbeats(beats) }
  }
}
