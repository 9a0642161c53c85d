import HaatCore
import Testing

/// A seeded generator (splitmix64), so jitter is repeatable. (A constant one would not do:
/// uniform sampling can reject the same value forever.)
struct FixedRandom: RandomNumberGenerator {
  var value: UInt64
  mutating func next() -> UInt64 {
    value &+= 0x9E37_79B9_7F4A_7C15
    var z = value
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

@Suite struct TaskRulesTests {
  static let policy = RetryPolicy(baseMs: 1000, capMs: 8000)
  static let error = TaskError(code: "http_503", message: "HTTP 503")

  static func status(_ state: TaskState, _ attempt: UInt32, max: UInt32 = 3, owner: String = "w") -> TaskStatus {
    TaskStatus(state: state, attempt: attempt, maxAttempts: max, owner: owner)
  }

  static let cases: [(TaskEvent, TaskStatus, TaskTransition)] = [
    (.claim, status(.ready, 0), .leased(attempt: 1)),
    (.claim, status(.ready, 2), .leased(attempt: 3)),
    (.claim, status(.leased, 1), .refused(.invalidState)),
    (.complete(attempt: 2, worker: "w"), status(.leased, 2), .done),
    (.complete(attempt: 1, worker: "w"), status(.leased, 2), .refused(.staleAttempt)),
    (.complete(attempt: 2, worker: "w"), status(.ready, 2), .refused(.staleAttempt)),
    (.complete(attempt: 2, worker: "w"), status(.done, 2), .refused(.alreadyDone)),
    (.complete(attempt: 2, worker: "w"), status(.cancelled, 2), .refused(.cancelled)),
    // Only the worker holding the lease may answer for its attempt, or for one never given;
    // an earlier attempt's answer is stale whoever sends it (its lease ran out: a worker
    // paused past it set off the stolen-token warning).
    (.complete(attempt: 2, worker: "other"), status(.leased, 2), .refused(.notLeaseHolder)),
    (.complete(attempt: 3, worker: "other"), status(.leased, 2), .refused(.notLeaseHolder)),
    (.complete(attempt: 1, worker: "other"), status(.leased, 2), .refused(.staleAttempt)),
    // Found by a tester: the holder naming an attempt never given was told `stale_attempt`.
    (.complete(attempt: 3, worker: "w"), status(.leased, 2), .refused(.notLeaseHolder)),
    // Found by a tester: attempt 0 (a `complete` without `attempt`) was `stale_attempt`,
    // and the worker dropped its result without a word; no attempt is 0.
    (.complete(attempt: 0, worker: "w"), status(.leased, 1), .refused(.notLeaseHolder)),
    (
      .fail(attempt: 0, worker: "w", error: error, retryable: true, retryAfterMs: 0), status(.leased, 2),
      .refused(.notLeaseHolder)
    ),
    (
      .fail(attempt: 2, worker: "other", error: error, retryable: false, retryAfterMs: 0), status(.leased, 2),
      .refused(.notLeaseHolder)
    ),
    (.complete(attempt: 2, worker: "other"), status(.done, 2), .refused(.alreadyDone)),
    (.fail(attempt: 1, worker: "w", error: error, retryable: false, retryAfterMs: 0), status(.leased, 1), .dead(error)),
    (
      .fail(attempt: 3, worker: "w", error: error, retryable: true, retryAfterMs: 0), status(.leased, 3, max: 3),
      .dead(TaskError(code: "http_503", message: "HTTP 503 (gave up after 3 attempts)"))
    ),
    (
      .fail(attempt: 1, worker: "w", error: error, retryable: true, retryAfterMs: 5000), status(.leased, 1),
      .retry(delayMs: 5000)
    ),
    // A worker's retry_after_ms is held to an hour: 4,000,000,000 ms would park it 46 days.
    (
      .fail(attempt: 1, worker: "w", error: error, retryable: true, retryAfterMs: 4_000_000_000), status(.leased, 1),
      .retry(delayMs: 3_600_000)
    ),
    (
      .fail(attempt: 1, worker: "w", error: error, retryable: true, retryAfterMs: 0), status(.leased, 2),
      .refused(.staleAttempt)
    ),
    (
      .expire(attempt: 1), status(.leased, 1, max: 1),
      .dead(
        TaskError(
          code: "lease_expired",
          message:
            "the lease ran out unrenewed (its worker stopped heartbeating or left, or never got the task) (gave up after 1 attempt)"
        ))
    ),
    (.expire(attempt: 1), status(.ready, 1), .refused(.staleAttempt)),
    (.release(attempt: 2), status(.leased, 2), .released),
    (.release(attempt: 1), status(.leased, 2), .refused(.staleAttempt)),
    (.cancel, status(.ready, 0), .cancelled),
    (.cancel, status(.leased, 1), .cancelled),
    (.cancel, status(.done, 1), .refused(.alreadyDone)),
    (.cancel, status(.dead, 3), .refused(.invalidState)),
    (.retryDead, status(.dead, 3), .revived),
    (.retryDead, status(.done, 1), .refused(.invalidState)),
    (.discardDead, status(.dead, 3), .cancelled),
    (.discardDead, status(.ready, 0), .refused(.invalidState)),
  ]

  @Test(arguments: cases)
  func rule(event: TaskEvent, status: TaskStatus, expected: TaskTransition) {
    var random = FixedRandom(value: 0)
    #expect(TaskRules.apply(event, to: status, retry: Self.policy, random: &random) == expected)
  }

  @Test func expiryCountsAsAnAttemptAndRetries() {
    var random = FixedRandom(value: 0x1234_5678_9abc)
    let transition = TaskRules.apply(
      .expire(attempt: 1), to: Self.status(.leased, 1), retry: Self.policy, random: &random)
    guard case .retry(let delay) = transition else {
      Issue.record("expected a retry, got \(transition)")
      return
    }
    #expect(delay <= Self.policy.ceilingMs(afterAttempt: 1))
  }

  @Test func backoffCeilingsDoubleUpToTheCap() {
    #expect((1...6).map { Self.policy.ceilingMs(afterAttempt: $0) } == [1000, 2000, 4000, 8000, 8000, 8000])
    #expect(RetryPolicy(baseMs: 1000, capMs: 300_000).ceilingMs(afterAttempt: 200) == 300_000)
  }

  @Test func fullJitterStaysWithinTheCeilingAndHonoursRetryAfter() {
    var random = SystemRandomNumberGenerator()
    var seen = Set<UInt64>()
    for _ in 0..<2000 {
      let delay = Self.policy.delayMs(afterAttempt: 3, using: &random)
      #expect(delay <= 4000)
      seen.insert(delay / 500)
      #expect(Self.policy.delayMs(afterAttempt: 3, retryAfterMs: 6000, using: &random) >= 6000)
    }
    // Full jitter spreads over the whole range, not just near the ceiling.
    #expect(seen.count >= 8)
  }

  static let jobStates: [(TaskCounts, Bool, Bool, JobState)] = [
    (TaskCounts(ready: 3), false, false, .queued),
    (TaskCounts(ready: 2, leased: 1), false, true, .running),
    (TaskCounts(done: 3), false, true, .succeeded),
    (TaskCounts(dead: 3), false, true, .failed),
    (TaskCounts(done: 2, dead: 1), false, true, .partial),
    (TaskCounts(done: 1, cancelled: 2), true, true, .cancelled),
    (TaskCounts(scheduled: 1, done: 1), false, true, .running),
  ]

  @Test(arguments: jobStates)
  func jobState(counts: TaskCounts, cancelled: Bool, started: Bool, expected: JobState) {
    #expect(JobRules.state(counts: counts, cancelled: cancelled, started: started) == expected)
  }
}

@Suite struct LeaseTableTests {
  @Test func leasesExpireOnTheirOwnClockAndHeartbeatsExtendThem() {
    var table = LeaseTable<String>(durationNs: 1_000)
    table.grant(task: TaskID(1), attempt: 1, owner: "a", now: 0)
    table.grant(task: TaskID(2), attempt: 1, owner: "b", now: 0)
    #expect(table.expired(now: 999).isEmpty)
    let extended = table.extend(task: TaskID(1), attempt: 1, owner: "a", now: 900)
    #expect(extended)
    // Only the holder, under its attempt, may extend.
    let byOther = table.extend(task: TaskID(2), attempt: 1, owner: "a", now: 900)
    let byOldAttempt = table.extend(task: TaskID(2), attempt: 2, owner: "b", now: 900)
    #expect(!byOther)
    #expect(!byOldAttempt)
    #expect(table.expired(now: 1_000).map(\.task) == [TaskID(2)])
    #expect(table.expired(now: 1_900).map(\.task) == [TaskID(2), TaskID(1)])
    #expect(table.count(of: "a") == 1)
    table.remove(task: TaskID(1))
    #expect(table.count(of: "a") == 0)
    #expect(table[TaskID(1)] == nil)
  }

  @Test func aNewGrantReplacesTheOldLease() {
    var table = LeaseTable<String>(durationNs: 10)
    table.grant(task: TaskID(1), attempt: 1, owner: "a", now: 0)
    table.grant(task: TaskID(1), attempt: 2, owner: "b", now: 5)
    #expect(table.leases(of: "a").isEmpty)
    #expect(table[TaskID(1)]?.attempt == 2)
  }
}

/// An id is read as it is written: `"012"` and `"+12"` were taken as task 12, so a reply
/// echoed a spelling of an id no list shows.
@Test func idsHaveOneSpelling() {
  #expect(TaskID("12") == TaskID(12))
  #expect(JobID("9223372036854775807") == JobID(Int64.max))
  for text in ["012", "+12", "0", "-1", "", " 12", "12 ", "1e3", "9223372036854775808"] {
    #expect(TaskID(text) == nil, "\(text)")
  }
}

/// Retry-After as RFC 9110 writes it: found by a tester, `0x10`, `0x1p4`, `1e3` and `+9`
/// were taken as waits (Swift's number parsers read them).
@Suite struct RetryAfterTests {
  @Test func delaySecondsAreDigits() {
    let cases: [(String, UInt64?)] = [
      ("120", 120_000), (" 5 ", 5_000), ("0", 0), ("000", 0), ("2.0", 2_000), ("30.7", 30_700), ("0.0001", 1),
      ("86400", 3_600_000), ("18446744073709551616", 3_600_000), ("18446744073709552", 3_600_000),
      ("0x10", nil), ("0x1p4", nil), ("1e3", nil), ("+9", nil), ("-1", nil), ("1.", nil), (".5", nil),
      ("1.5.2", nil), ("nan", nil), ("inf", nil), ("", nil), ("٣", nil),
    ]
    for (value, expected) in cases {
      #expect(RetryPolicy.retryAfterMs(value) == expected, "\(value)")
    }
    // An HTTP date in the past is no wait.
    #expect(RetryPolicy.retryAfterMs("Wed, 21 Oct 2015 07:28:00 GMT") == 0)
  }
}
