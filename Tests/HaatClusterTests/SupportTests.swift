import Synchronization
import Testing

/// The test harness's own promises: a wait that gives up must have looked after its
/// deadline, not only started a look before it.
@Suite struct EventuallyTests {
  /// A look that starts before the deadline and answers after it (a reply that arrived in
  /// time, read by a test task the runner left unscheduled) is stale: `eventually` looks
  /// again instead of timing out on it.
  @Test func aLookThatEndsPastTheDeadlineIsNotTheLast() async throws {
    let looks = Mutex(0)
    try await eventually("the second look", timeout: .milliseconds(100)) {
      let look = looks.withLock { count -> Int in
        count += 1
        return count
      }
      guard look == 1 else { return true }
      try await Task.sleep(for: .milliseconds(300))
      return false
    }
    #expect(looks.withLock { $0 } == 2)
  }

  @Test func aConditionThatNeverHoldsTimesOut() async throws {
    let start = ContinuousClock.now
    await #expect(throws: (any Error).self) {
      try await eventually("never", timeout: .milliseconds(200)) { false }
    }
    #expect(ContinuousClock.now - start >= .milliseconds(200))
  }
}
