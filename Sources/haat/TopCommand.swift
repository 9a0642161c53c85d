import ArgumentParser
import Foundation
import HaatAnalytics
import HaatClient
import HaatCore
import HaatProtocol
import SwiftProtobuf

/// `haat top`: the cluster at a glance, redrawn every second like htop — workers with their
/// health and load, the queue and the rate tasks finish at, and open jobs with progress.
struct TopCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "top",
    abstract: "A live view of workers, the queue and its rates, and jobs with progress (Ctrl-C quits).")
  @OptionGroup var client: ClientOptions
  @Option(help: "Seconds between frames.")
  var interval: Double = 1
  @Flag(help: "Print one frame (the rate over one interval) and exit, without screen control: for scripts.")
  var once = false

  func validate() throws {
    guard interval >= 0.1, interval <= 3600 else { throw ValidationError("--interval must be 0.1 to 3600 seconds") }
  }

  func run() async throws {
    try await client.session { connection in
      var previous: (at: ContinuousClock.Instant, done: UInt64, failed: UInt64)?
      var shown = false
      while true {
        let list = try await connection.workerList()
        let running = try await connection.jobs(state: "running", limit: 15)
        let queued = try await connection.jobs(state: "queued", limit: 5)
        let now = ContinuousClock.now
        let done = list.workers.reduce(0) { $0 + $1.tasksDone }
        let failed = list.workers.reduce(0) { $0 + $1.tasksFailed }
        if previous == nil && once {
          // A rate needs two readings.
          previous = (now, done, failed)
          try await Task.sleep(for: .seconds(interval))
          continue
        }
        let frame =
          client.json
          ? Self.jsonFrame(
            workers: list.workers, jobs: running + queued, done: done, failed: failed, previous: previous, now: now)
          : Self.frame(
            workers: list.workers, jobs: running + queued, done: done, failed: failed, previous: previous, now: now)
        previous = (now, done, failed)
        if client.json {
          // One document per frame, a line each (NDJSON when live): no screen control.
          print(frame)
          flushOrEndWhenUnread()
          if once { return }
          try await Task.sleep(for: .seconds(interval))
          continue
        }
        if once {
          print(frame, terminator: "")
          return
        }
        // Home and clear, then the frame: the terminal redraws in place. Into a file or a
        // pipe, frames follow each other with a blank line, and no screen control.
        // Between frames, not before the first (a tester's `haat top | head -1` read a blank line).
        let screen = isatty(STDOUT_FILENO) == 1 ? "\u{1B}[H\u{1B}[2J" : shown ? "\n" : ""
        shown = true
        // Not the module's `print`: it would escape the screen control (the frame is
        // escaped already, `frame`).
        writeOut(screen + frame)
        flushOrEndWhenUnread()
        try await Task.sleep(for: .seconds(interval))
      }
    }
  }

  /// The frame as one line of JSON: `at_ms`, `rates` (tasks done and failed per second
  /// over the last interval, never below 0 when a worker leaves the list; and the totals of the
  /// workers listed since the coordinator started), `queue`, and the
  /// `workers` and `jobs` as `haat workers --json` and `haat jobs --json` print them.
  static func jsonFrame(
    workers: [Haat_V1_WorkerStatus], jobs: [Haat_V1_Job], done: UInt64, failed: UInt64,
    previous: (at: ContinuousClock.Instant, done: UInt64, failed: UInt64)?, now: ContinuousClock.Instant
  ) -> String {
    let seconds = previous.map { (now - $0.at) / .seconds(1) } ?? 0
    let doneRate = previous.map { seconds > 0 ? Double(done > $0.done ? done - $0.done : 0) / seconds : 0 } ?? 0
    let failRate = previous.map { seconds > 0 ? Double(failed > $0.failed ? failed - $0.failed : 0) / seconds : 0 } ?? 0
    var queue = (ready: UInt64(0), scheduled: UInt64(0), running: UInt64(0))
    for job in jobs {
      queue.ready += UInt64(job.counts.ready)
      queue.scheduled += UInt64(job.counts.scheduled)
      queue.running += UInt64(job.counts.leased)
    }
    var options = JSONEncodingOptions()
    options.preserveProtoFieldNames = true
    func list(_ messages: [some SwiftProtobuf.Message]) -> String {
      "[" + messages.map { (try? $0.jsonString(options: options)) ?? "{}" }.joined(separator: ",") + "]"
    }
    let at = Int64(Date().timeIntervalSince1970 * 1000)
    return jsonSafe(
      #"{"at_ms":"\#(at)","rates":{"done_per_s":\#(String(format: "%.2f", doneRate)),"failed_per_s":\#(String(format: "%.2f", failRate)),"done":"\#(done)","failed":"\#(failed)"},"#
        + #""queue":{"ready":\#(queue.ready),"scheduled":\#(queue.scheduled),"running":\#(queue.running)},"#
        + #""workers":\#(list(workers)),"jobs":\#(list(jobs))}"#)
  }

  static func frame(
    workers: [Haat_V1_WorkerStatus], jobs: [Haat_V1_Job], done: UInt64, failed: UInt64,
    previous: (at: ContinuousClock.Instant, done: UInt64, failed: UInt64)?, now: ContinuousClock.Instant
  ) -> String {
    var text = ""
    let seconds = previous.map { (now - $0.at) / .seconds(1) } ?? 0
    let doneRate = previous.map { seconds > 0 ? Double(done > $0.done ? done - $0.done : 0) / seconds : 0 } ?? 0
    let failRate = previous.map { seconds > 0 ? Double(failed > $0.failed ? failed - $0.failed : 0) / seconds : 0 } ?? 0
    var counts = Haat_V1_TaskCounts()
    for job in jobs {
      counts.ready += job.counts.ready
      counts.scheduled += job.counts.scheduled
      counts.leased += job.counts.leased
    }
    let states = Dictionary(grouping: workers, by: \.state).mapValues(\.count)
    text += "haat top — \(time(Int64(Date().timeIntervalSince1970 * 1000)))\n"
    text +=
      "workers: \(workers.count) (\(states.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")))"
      + "   queue: \(counts.ready) ready, \(counts.scheduled) scheduled, \(counts.leased) running\n"
    text +=
      "tasks: \(String(format: "%.1f", doneRate))/s done, \(String(format: "%.1f", failRate))/s failed"
      + "   (since the coordinator started, by the workers listed: \(done) done, \(failed) failed)\n\n"
    let workerRows = workers.map { worker -> [String] in
      // In 64 bits: a worker reports its own pools, and two of 2^32 − 1 slots must not trap.
      let busy = worker.pools.reduce(UInt64(0)) { $0 + UInt64($1.busy) }
      let slots = worker.pools.reduce(UInt64(0)) { $0 + UInt64($1.slots) }
      return [
        worker.id, worker.state, "\(bar(Double(busy), of: Double(slots), width: 10)) \(busy)/\(slots)",
        String(worker.leases), String(worker.tasksDone), String(worker.tasksFailed),
        ReportRendering.bytes(worker.rssBytes), ago(worker.lastHeartbeatMs),
      ]
    }
    text += TextTable(
      header: ["worker", "state", "slots", "leases", "done", "failed", "rss", "heartbeat"], rightAligned: [3, 4, 5, 6]
    ).render(workerRows)
    text += "\n"
    let jobRows = jobs.map { job -> [String] in
      let finished = job.counts.done + job.counts.dead + job.counts.cancelled
      return [
        job.id, String(job.name.prefix(28)), job.state,
        "\(bar(Double(finished), of: Double(job.counts.total), width: 20)) \(finished)/\(job.counts.total)",
        String(job.counts.leased), String(job.counts.dead),
      ]
    }
    text += TextTable(header: ["job", "name", "state", "progress", "running", "dead"], rightAligned: [0, 4, 5])
      .render(jobRows.isEmpty ? [["—", "no open jobs", "", "", "", ""]] : jobRows)
    return DisplayText.escape(text, keepNewlines: true)
  }

  /// `[######    ]`: `value` of `total` in `width` cells.
  static func bar(_ value: Double, of total: Double, width: Int) -> String {
    let filled = total > 0 ? min(width, Int((value / total * Double(width)).rounded(.down))) : 0
    return "[" + String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled) + "]"
  }
}
