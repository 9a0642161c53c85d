import HaatCore

/// Ready tasks waiting for their `not_before` (a retry's backoff, a delayed start).
///
/// A wait is timed on the monotonic clock: its `due` instant is taken from the stored
/// wall-clock `not_before` when the wait begins, so a wall-clock step neither delays nor
/// hurries it. Claims read the store by wall clock, so `claimCutoff` says which stored
/// instants a claim may take: none still waiting here, every one released already.
struct DelayedTasks {
  struct Entry {
    var due: Int64
    var notBeforeMs: Int64
    var job: JobID
    var pool: Pool
  }

  private(set) var entries: [TaskID: Entry] = [:]
  private var heap = MinHeap()
  /// The latest stored `not_before` of a task released: claims take tasks up to it even
  /// when the wall clock has stepped back since.
  private(set) var releasedThroughMs: Int64 = 0

  var count: Int { entries.count }

  /// Starts a task's wait. Returns true when it is now the earliest (re-arm the timer).
  @discardableResult
  mutating func add(_ task: TaskID, job: JobID, pool: Pool, notBeforeMs: Int64, monotonicMs: Int64, wallMs: Int64)
    -> Bool
  {
    let due = monotonicMs + max(0, notBeforeMs - wallMs)
    entries[task] = Entry(due: due, notBeforeMs: notBeforeMs, job: job, pool: pool)
    let earliest = nextDue
    heap.push(at: due, task: task)
    return earliest.map { due < $0 } ?? true
  }

  /// Ends a task's wait early (a claim took it, or it changed state); true if it waited.
  @discardableResult
  mutating func remove(_ task: TaskID) -> Bool {
    entries.removeValue(forKey: task) != nil
  }

  /// The monotonic instant of the earliest wait, if any.
  var nextDue: Int64? {
    mutating get {
      dropStale()
      return heap.peek()?.at
    }
  }

  /// Takes every task due by `monotonicMs`, earliest first.
  mutating func release(upTo monotonicMs: Int64) -> [(task: TaskID, entry: Entry)] {
    var released: [(TaskID, Entry)] = []
    while let next = heap.peek(), next.at <= monotonicMs {
      heap.pop()
      // A stale heap entry (the task moved on, or waits again with a new due) is skipped.
      guard let entry = entries[next.task], entry.due == next.at else { continue }
      entries[next.task] = nil
      releasedThroughMs = max(releasedThroughMs, entry.notBeforeMs)
      released.append((next.task, entry))
    }
    return released
  }

  /// What a claim may take, as a stored wall-clock instant: tasks due by the wall clock,
  /// but none still waiting here (a clock stepped forward must not hurry them), and every
  /// task released (a clock stepped back must not delay them).
  mutating func claimCutoff(wallMs: Int64) -> Int64 {
    var cutoff = wallMs
    dropStale()
    if let next = heap.peek(), let entry = entries[next.task] {
      cutoff = min(cutoff, entry.notBeforeMs - 1)
    }
    return max(cutoff, releasedThroughMs)
  }

  private mutating func dropStale() {
    while let next = heap.peek(), entries[next.task]?.due != next.at { heap.pop() }
  }
}
