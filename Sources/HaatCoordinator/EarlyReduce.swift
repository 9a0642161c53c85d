import Foundation
import HaatAnalytics
import HaatCore
import HaatProtocol
import Synchronization

/// A running job's partials merged as each result is stored, off the loop, so that the
/// job's end merges only what is left instead of every partial at once (a partial is a
/// monoid: merged in any order and grouping, the report is the same). It lives in memory
/// only: after a restart, the job's end reads and merges every stored partial, as it would
/// without it, and so it does for any partial that did not merge here.
final class EarlyReduce: Sendable {
  struct Merged: Sendable {
    var merger = PartialMerger()
    /// The tasks whose partials `merger` holds.
    var tasks: Set<TaskID> = []
  }

  private let state = Mutex(Merged())

  /// Merges one task's stored partial; one that does not decode is left for the job's end,
  /// which says so.
  func merge(_ task: TaskID, stored: Data) {
    guard let partial = try? JobReducer.storedPartial(stored) else { return }
    state.withLock { merged in
      guard !merged.tasks.contains(task) else { return }
      merged.merger.merge(partial)
      merged.tasks.insert(task)
    }
  }

  var merged: Merged { state.withLock { $0 } }
}
