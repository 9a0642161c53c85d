import Foundation
import HaatCore
import Testing

@testable import HaatStore

/// Results and job ends in a row of one batch (PostgreSQL locks, reads and writes them
/// together) end as the same ops applied one at a time: the same answers, task rows, stored
/// partials, job states and reports, whatever the mix of accepted, foreign, stale, unknown
/// and repeated results, results that keep a bookmark, ends of jobs that have ended or not
/// (or do not exist, or end before a later result of the run for their task), ends reduced
/// before the commit, and other ops between them.
@Suite struct ResultRunTests {
  /// A job's end as the test's reduce makes it: from what the store read, or declined.
  static let reduce: JobReduce = { read in
    guard read.outputs.count != 3 else { return nil }
    let done = read.outputs.filter { $0.state == .done }.count
    return JobEnd(
      state: done == read.outputs.count ? .succeeded : .partial,
      report: Data("\(read.job.id) \(read.outputs.map { "\($0.task):\($0.state)" })".utf8),
      error: done == read.outputs.count ? "" : "\(read.outputs.count - done) not done")
  }

  /// Two empty stores of the backend: one for the batch, one for its ops one at a time.
  static func twoStores(_ backend: StoreBackend) async throws -> [any JobStore] {
    [try await StoreHarness(backend).open(), try await StoreHarness(backend).open()]
  }

  /// The ops as one batch on the first store and one at a time on the second: the answers
  /// of each, as text.
  static func applyBothWays(_ ops: [StoreOp], to stores: [any JobStore]) async throws -> (
    batched: [String], single: [String]
  ) {
    let batched = try await stores[0].apply(ops, nowMs: 2_000).map { "\($0)" }
    var single: [String] = []
    for op in ops { single += try await stores[1].apply([op], nowMs: 2_000).map { "\($0)" } }
    return (batched, single)
  }

  @Test(arguments: StoreBackend.all, 0..<10)
  func resultsAndEndsInARowEndAsTheyWouldOneAtATime(backend: StoreBackend, seed: Int) async throws {
    var random = HeldSubmitTests.Random(state: UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 &+ 7)
    let tests = try StoreHarness(backend)
    let stores = try await Self.twoStores(backend)
    var jobs: [JobID] = []
    var leases: [ClaimedTask] = []
    for store in stores {
      jobs = [try await tests.submit(store, StoreHarness.job(tasks: 12))]
      for size in [1, 1, 1, 1, 2, 3] { jobs.append(try await tests.submit(store, StoreHarness.job(tasks: size))) }
      leases = try await tests.claim(store, 19)
    }
    #expect(leases.count == 19)
    var ops: [StoreOp] = []
    for _ in 0..<(6 + random.next(30)) {
      let lease = leases[random.next(leases.count)]
      let partial = Data((0..<random.next(40)).map { _ in UInt8(random.next(256)) })
      let stats = Data("{\"rows\":\"\(random.next(1000))\"}".utf8)
      func complete(_ task: TaskID, attempt: UInt32, worker: String = "w1", bookmark: String = "") -> StoreOp {
        .complete(task: task, attempt: attempt, worker: worker, partial: partial, stats: stats, bookmark: bookmark)
      }
      switch random.next(14) {
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
      case 6, 7, 8:
        let job = random.next(12) == 0 ? JobID(800_000) : jobs[random.next(jobs.count)]
        ops.append(.finishIfEnded(job, ending: .read(Self.reduce)))
      default:
        ops.append(complete(lease.task, attempt: lease.attempt))
        // A 1-task job's result is followed by its end, as the coordinator sends them:
        // to be reduced in the commit, or reduced already (from the result alone).
        switch random.next(4) {
        case 0: ops.append(.finishIfEnded(lease.job, ending: .read(Self.reduce)))
        case 1:
          let end = JobEnd(state: .succeeded, report: Data("reduced \(lease.task)".utf8), error: "")
          ops.append(.finishIfEnded(lease.job, ending: .reduced(end)))
        default: break
        }
      }
    }
    let (batched, single) = try await Self.applyBothWays(ops, to: stores)
    #expect(batched == single, "ops: \(ops)")
    var rows: [[String]] = []
    for store in stores {
      var lines: [String] = []
      for job in jobs {
        guard let record = try await store.job(job, tasks: false, nowMs: 2_000) else { continue }
        let report = try await store.report(of: job).map { String(decoding: $0, as: UTF8.self) } ?? "none"
        lines.append("\(job) \(record.state) \(record.finishedMs) \(record.error) \(report)")
        lines += try await store.tasks(of: job, after: nil, limit: 100, nowMs: 2_000).map { "\($0)" }
        lines += try await store.outputs(of: job).map {
          "\($0.task) \($0.state) \(Array($0.partial ?? Data())) \(Array($0.stats ?? Data()))"
        }
      }
      rows.append(lines)
    }
    #expect(rows[0] == rows[1], "ops: \(ops)")
    // Enough happened for the comparison to mean something.
    #expect(batched.contains { $0.contains("done") })
  }

  /// Submits in a row (numbered and written together on PostgreSQL) get the ids, answers
  /// and rows they would get one at a time, with claims and results between them.
  @Test(arguments: StoreBackend.all, 0..<6)
  func submitsInARowEndAsTheyWouldOneAtATime(backend: StoreBackend, seed: Int) async throws {
    var random = HeldSubmitTests.Random(state: UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 &+ 11)
    let stores = try await Self.twoStores(backend)
    var ops: [StoreOp] = []
    for _ in 0..<(4 + random.next(30)) {
      switch random.next(8) {
      case 0: ops.append(.claim(owner: "w\(random.next(2))", pool: .collect, limit: random.next(5)))
      default: ops.append(.submit(HeldSubmitTests.job(&random, now: 2_000)))
      }
    }
    let (batched, single) = try await Self.applyBothWays(ops, to: stores)
    #expect(batched == single, "ops: \(ops)")
    var rows: [[String]] = []
    for store in stores {
      var lines: [String] = []
      for job in try await store.jobs(state: nil, before: nil, limit: 100, nowMs: 2_000) {
        lines.append("\(job)")
        lines += try await store.tasks(of: job.id, after: nil, limit: 100, nowMs: 2_000).map { "\($0)" }
      }
      rows.append(lines)
    }
    #expect(rows[0] == rows[1], "ops: \(ops)")
    #expect(rows[0].count > 4)
  }
}
