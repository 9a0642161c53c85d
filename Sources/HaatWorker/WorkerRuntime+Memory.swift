import CStdio
import HaatProtocol

/// Memory a task freed goes back to the system once its result is taken.
extension WorkerRuntime {
  /// A result over this many bytes read gives its memory back after it is acked.
  static let trimAfterBytes: UInt64 = 1 << 20

  /// Hands freed heap back to the system, off the loop. glibc keeps what a thread freed in
  /// that thread's arena, and tasks run on whichever pool thread is free: a worker's idle
  /// memory grew by one large task's peak per run, to 1 GiB after five of the same task
  /// (found by a tester; with one arena it stayed flat).
  func giveBackMemory(after result: Envelope.OneOf_Body) {
    let bytes: UInt64
    switch result {
    case .complete(let complete): bytes = complete.stats.bytes
    case .fail(let fail): bytes = fail.stats.bytes
    default: return
    }
    guard bytes >= Self.trimAfterBytes else { return }
    _ = threads.runIfActive(eventLoop: loop) { cstdio_give_back_memory() }
  }
}
