import HaatCore
import Testing

@testable import HaatCoordinator

/// Waits are timed on the monotonic clock: wall-clock steps neither delay nor hurry them.
@Suite struct DelayedTasksTests {
  let wall: Int64 = 1_800_000_000_000
  let hour: Int64 = 3_600_000

  @Test func aWaitEndsOnTheMonotonicClock() {
    var delayed = DelayedTasks()
    let earliest = delayed.add(
      TaskID(1), job: JobID(1), pool: .collect, notBeforeMs: wall + 5_000, monotonicMs: 0, wallMs: wall)
    #expect(earliest)
    #expect(delayed.nextDue == 5_000)
    #expect(delayed.release(upTo: 4_999).isEmpty)
    #expect(delayed.release(upTo: 5_000).map(\.task) == [TaskID(1)])
    #expect(delayed.count == 0)
    #expect(delayed.nextDue == nil)
  }

  @Test func aClockSteppedBackDoesNotDelayAReleasedTask() {
    var delayed = DelayedTasks()
    delayed.add(TaskID(1), job: JobID(1), pool: .collect, notBeforeMs: wall + 5_000, monotonicMs: 0, wallMs: wall)
    _ = delayed.release(upTo: 5_000)
    // An hour back: by the wall clock the task is not due, but a claim must take it.
    #expect(delayed.claimCutoff(wallMs: wall + 5_000 - hour) >= wall + 5_000)
  }

  @Test func aClockSteppedForwardDoesNotHurryAWaitingTask() {
    var delayed = DelayedTasks()
    delayed.add(TaskID(1), job: JobID(1), pool: .collect, notBeforeMs: wall + 5_000, monotonicMs: 0, wallMs: wall)
    // An hour forward: by the wall clock it is due, but it waits 5 s of real time.
    #expect(delayed.claimCutoff(wallMs: wall + hour) < wall + 5_000)
    #expect(delayed.release(upTo: 1_000).isEmpty)
    #expect(delayed.release(upTo: 5_000).count == 1)
    #expect(delayed.claimCutoff(wallMs: wall + hour) == wall + hour)
  }

  @Test func aTaskThatMovedOnIsNotReleased() {
    var delayed = DelayedTasks()
    delayed.add(TaskID(1), job: JobID(1), pool: .collect, notBeforeMs: wall + 1_000, monotonicMs: 0, wallMs: wall)
    delayed.add(TaskID(2), job: JobID(1), pool: .analyze, notBeforeMs: wall + 2_000, monotonicMs: 0, wallMs: wall)
    let removed = delayed.remove(TaskID(1))
    let again = delayed.remove(TaskID(1))
    #expect(removed && !again)
    #expect(delayed.nextDue == 2_000)
    // Waiting again with a new due replaces the old one.
    delayed.add(TaskID(2), job: JobID(1), pool: .analyze, notBeforeMs: wall + 9_000, monotonicMs: 0, wallMs: wall)
    #expect(delayed.release(upTo: 8_999).isEmpty)
    let released = delayed.release(upTo: 9_000)
    #expect(released.map(\.task) == [TaskID(2)])
    #expect(released.first?.entry.pool == .analyze)
  }

  @Test func aTaskDueInThePastIsDueAtOnce() {
    var delayed = DelayedTasks()
    delayed.add(TaskID(1), job: JobID(1), pool: .collect, notBeforeMs: wall - 10, monotonicMs: 70, wallMs: wall)
    #expect(delayed.release(upTo: 70).count == 1)
  }
}
