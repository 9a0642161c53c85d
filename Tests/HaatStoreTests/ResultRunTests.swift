import Foundation
import HaatCore
import Testing

@testable import HaatStore

/// Results in a row of one batch (PostgreSQL locks and writes them together) end as the
/// same results applied one at a time: the same answers, task rows and stored partials,
/// whatever the mix of accepted, foreign, stale, unknown and repeated results, results that
/// keep a bookmark, and other ops between them.
@Suite struct ResultRunTests {
  @Test(arguments: StoreBackend.all, 0..<8)
  func resultsInARowEndAsTheyWouldOneAtATime(backend: StoreBackend, seed: Int) async throws {
    var random = HeldSubmitTests.Random(state: UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 &+ 7)
    let together = try StoreHarness(backend)
    let apart = try StoreHarness(backend)
    let stores = [try await together.open(), try await apart.open()]
    var job = JobID(0)
    var leases: [ClaimedTask] = []
    for store in stores {
      job = try await together.submit(store, StoreHarness.job(tasks: 14))
      leases = try await together.claim(store, 12)
    }
    #expect(leases.count == 12)
    var ops: [StoreOp] = []
    for _ in 0..<(6 + random.next(24)) {
      let lease = leases[random.next(leases.count)]
      let partial = Data((0..<random.next(40)).map { _ in UInt8(random.next(256)) })
      let stats = Data("{\"rows\":\"\(random.next(1000))\"}".utf8)
      func complete(_ task: TaskID, attempt: UInt32, worker: String = "w1", bookmark: String = "") -> StoreOp {
        .complete(task: task, attempt: attempt, worker: worker, partial: partial, stats: stats, bookmark: bookmark)
      }
      switch random.next(10) {
      case 0: ops.append(complete(lease.task, attempt: lease.attempt, worker: "w2"))
      case 1: ops.append(complete(lease.task, attempt: lease.attempt + 1))
      case 2: ops.append(complete(TaskID(900_000 + Int64(random.next(9))), attempt: 1))
      case 3: ops.append(complete(lease.task, attempt: lease.attempt, bookmark: "cursor-\(random.next(9))"))
      case 4:
        ops.append(
          .fail(
            task: lease.task, attempt: lease.attempt, worker: "w1", error: TaskError(code: "bad", message: "no"),
            retryable: false, retryAfterMs: 0, stats: stats))
      case 5: ops.append(.release(task: lease.task, attempt: lease.attempt))
      default: ops.append(complete(lease.task, attempt: lease.attempt))
      }
    }
    let batched = try await stores[0].apply(ops, nowMs: 2_000).map { "\($0)" }
    var single: [String] = []
    for op in ops { single += try await stores[1].apply([op], nowMs: 2_000).map { "\($0)" } }
    #expect(batched == single, "ops: \(ops)")
    var rows: [[String]] = []
    for store in stores {
      let tasks = try await store.tasks(of: job, after: nil, limit: 100, nowMs: 2_000).map { "\($0)" }
      let outputs = try await store.outputs(of: job).map {
        "\($0.task) \($0.state) \(Array($0.partial ?? Data())) \(Array($0.stats ?? Data()))"
      }
      rows.append(tasks + outputs)
    }
    #expect(rows[0] == rows[1], "ops: \(ops)")
    // Enough results were taken for the comparison to mean something.
    #expect(batched.contains { $0.contains("done") })
  }
}
