import Foundation
import HaatCore
import HaatProtocol
import HaatTesting

/// The second Haat shape of the dispatch benchmark: 1-task jobs, submitted by a raw client
/// with 256 submits in flight (as many as the beanstalkd producer has puts), so batching
/// in a job is not what wins. Returns tasks per second.
func runHaatSingles(cluster: LocalCluster, tasks: Int) throws -> Double {
  let session = try RawSession(
    port: cluster.endpoint.port, credential: try cluster.adminCredential(), kind: .client, name: "bench-submit")
  defer { session.close() }
  let spec = noopJob("single")
  let started = ContinuousClock.now
  var sent = 0
  var last = ""
  while sent < tasks {
    let window = min(256, tasks - sent)
    var envelopes: [Envelope] = []
    for index in 0..<window { envelopes.append(Envelope(id: "s\(sent + index)", .submit(.with { $0.spec = spec }))) }
    try session.send(envelopes)
    for _ in 0..<window {
      guard case .accepted(let accepted)? = try session.receive().body else { throw BenchError("submit refused") }
      last = accepted.job
    }
    sent += window
  }
  // The last job accepted ends about last; then no job may be left open.
  try session.send(Envelope(id: "w", .watch(.with { $0.job = last })))
  while true {
    guard case .jobEvent(let event)? = try session.receive().body else { continue }
    if event.final { break }
  }
  for state in ["queued", "running"] {
    for _ in 0..<10_000 {
      try session.send(
        Envelope(
          id: "l",
          .listJobs(
            .with {
              $0.state = state; $0.limit = 1
            })))
      guard case .jobList(let list)? = try session.receive().body else { throw BenchError("list_jobs failed") }
      if list.jobs.isEmpty { break }
      usleep(2_000)
    }
  }
  return Double(tasks) / (ContinuousClock.now - started).seconds
}

/// Paced latency: 1-task no-op jobs submitted at `rate` per second to a worker with free
/// credit (the benchmark's own raw worker, so the instant of `assign` is seen exactly).
/// Returns (submit → accepted, submit → assign) in ms per job.
func haatLatency(cluster: LocalCluster, rate: Double, count: Int) throws -> (accepted: [Double], assigned: [Double]) {
  let port = cluster.endpoint.port
  var info = Haat_V1_WorkerInfo()
  info.host = "localhost"
  info.pid = UInt32(getpid())
  info.pools = [
    .with {
      $0.pool = "collect"; $0.slots = 64
    }
  ]
  let worker = try RawSession(
    port: port, credential: try Credential.load(path: cluster.workerTokenPath), kind: .worker, name: "worker-bench",
    worker: info)
  defer { worker.close() }
  try worker.send(
    Envelope(
      .credit(
        .with {
          $0.pool = "collect"; $0.free = 64
        })))
  let submitter = try RawSession(
    port: port, credential: try cluster.adminCredential(), kind: .client, name: "bench-latency")
  defer { submitter.close() }

  let submitted = Stamps(count)
  let accepted = Stamps(count)
  let jobIndex = Locked<[String: Int]>([:])
  let assignedByJob = Locked<[String: UInt64]>([:])
  let workerThread = Thread {
    var seen = 0
    while seen < count, let envelope = try? worker.receive() {
      guard case .assign(let assign)? = envelope.body else { continue }
      let now = monotonicNanoseconds()
      assignedByJob.update { $0[assign.job] = now }
      seen += 1
      var complete = Haat_V1_Complete()
      complete.task = assign.task
      complete.attempt = assign.attempt
      _ = try? worker.send(
        Envelope(id: "c\(seen)", .complete(complete)),
        Envelope(
          .credit(
            .with {
              $0.pool = "collect"; $0.free = 1
            })))
    }
  }
  workerThread.start()
  let readerThread = Thread {
    for _ in 0..<count {
      guard let envelope = try? submitter.receive() else { return }
      let now = monotonicNanoseconds()
      guard case .accepted(let reply)? = envelope.body, let index = Int(envelope.replyTo.dropFirst()) else { continue }
      accepted.set(index, now)
      jobIndex.update { $0[reply.job] = index }
    }
  }
  readerThread.start()

  let spec = noopJob("latency")
  let interval = UInt64(1e9 / rate)
  let start = monotonicNanoseconds()
  for index in 0..<count {
    sleepUntil(start + UInt64(index) * interval)
    submitted.set(index, monotonicNanoseconds())
    try submitter.send(Envelope(id: "s\(index)", .submit(.with { $0.spec = spec })))
  }
  let deadline = monotonicNanoseconds() + 10_000_000_000
  while (accepted.filled < count || assignedByJob.value.count < count), monotonicNanoseconds() < deadline {
    usleep(1_000)
  }
  let indexOfJob = jobIndex.value
  var assignedAt: [Int: UInt64] = [:]
  for (job, instant) in assignedByJob.value { if let index = indexOfJob[job] { assignedAt[index] = instant } }
  var toAccepted: [Double] = []
  var toAssign: [Double] = []
  for index in 0..<count {
    guard let sent = submitted[index] else { continue }
    if let reply = accepted[index] { toAccepted.append(Double(reply &- sent) / 1e6) }
    if let assign = assignedAt[index] { toAssign.append(Double(assign &- sent) / 1e6) }
  }
  if let dump = ProcessInfo.processInfo.environment["HAAT_BENCH_DUMP"] {
    // Each job's submit instant (ms from the first) and its latencies, for a time series.
    // at_ms counts from `start` (CLOCK_MONOTONIC, in the first line: perf -k CLOCK_MONOTONIC lines up).
    var text = "# start_ns \(start)\nindex,at_ms,accepted_ms,assign_ms\n"
    for index in 0..<count {
      guard let sent = submitted[index] else { continue }
      let acceptedMs = accepted[index].map { String(Double($0 &- sent) / 1e6) } ?? ""
      let assignMs = assignedAt[index].map { String(Double($0 &- sent) / 1e6) } ?? ""
      text += "\(index),\(Double(sent &- start) / 1e6),\(acceptedMs),\(assignMs)\n"
    }
    try? text.write(toFile: dump, atomically: true, encoding: .utf8)
  }
  return (toAccepted, toAssign)
}

/// A job of one no-op task.
func noopJob(_ name: String) -> JobSpec {
  var source = Source()
  source.kind = "noop"
  source.tasks = 1
  var spec = JobSpec()
  spec.name = name
  spec.sources = [source]
  return spec
}

/// A value shared by the benchmark's threads.
final class Locked<Value>: @unchecked Sendable {
  // @unchecked: every access goes through `lock`.
  private let lock = NSLock()
  private var storage: Value
  init(_ value: Value) { storage = value }
  var value: Value { lock.withLock { storage } }
  func update(_ body: (inout Value) -> Void) { lock.withLock { body(&storage) } }
}

/// p50, p99 and max of a sample, in its unit.
func percentiles(_ values: [Double]) -> (p50: Double, p99: Double, max: Double) {
  let sorted = values.sorted()
  guard !sorted.isEmpty else { return (.nan, .nan, .nan) }
  func at(_ q: Double) -> Double { sorted[min(sorted.count - 1, Int((Double(sorted.count) * q).rounded(.up)) - 1)] }
  return (at(0.5), at(0.99), sorted[sorted.count - 1])
}
