import ArgumentParser
import Foundation
import HaatAnalytics
import HaatClient
import HaatCore
import HaatProtocol

struct SubmitCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "submit", abstract: "Submit a job from a YAML or JSON spec.",
    discussion:
      "Prints the job id. With --wait, shows progress and prints the report; exits 3 if the job did not succeed.")

  @Argument(help: "The job spec (.yaml, .yml or .json; - reads stdin: JSON when it starts with {, else YAML).")
  var spec: String
  @Flag(help: "Wait for the job to end, showing progress, then print its report.")
  var wait = false
  @Option(help: "With --wait: table, json or csv.")
  var format: String = ReportFormat.table.rawValue
  @OptionGroup var csvSafe: CSVSafeOption
  @OptionGroup var client: ClientOptions

  func validate() throws {
    guard ReportFormat(rawValue: format) != nil else { throw ValidationError("--format must be table, json or csv") }
  }

  /// "job 4 accepted (3 tasks)": a source split into byte ranges is planned as one task
  /// that adds a task per range when it runs, which the count alone would hide; a spec with
  /// `every` made a schedule, said on a line of its own.
  static func acceptedLines(_ accepted: Haat_V1_Accepted, _ spec: JobSpec) -> String {
    let split = spec.sources.contains { $0.splitBytes > 0 }
    var lines =
      "job \(accepted.job) accepted (\(plural(Int(accepted.tasks), "task"))"
      + (split ? "; a source with split_bytes adds a task per byte range when it runs)" : ")")
    if !accepted.schedule.isEmpty {
      lines += "\nschedule \(accepted.schedule): runs every \(spec.every); the job is its first run (haat schedules)"
    }
    return lines
  }

  func run() async throws {
    let format = ReportFormat(rawValue: format) ?? .table
    // The spec is read and checked before anything connects.
    var jobSpec = JobSpec()
    try await runClient(json: client.json) {
      if spec == "-" {
        jobSpec = try SpecLoader.loadStandardInput()
      } else {
        jobSpec = try SpecLoader.load(path: spec)
      }
      try HaatClient.checkBeforeSending(jobSpec)
    }
    let loaded = jobSpec
    try await client.session { connection in
      let accepted = try await connection.submit(loaded)
      if !wait {
        if client.json {
          printJSON(accepted)
        } else {
          print(Self.acceptedLines(accepted, loaded))
        }
        return
      }
      if !client.json {
        try? FileHandle.standardError.write(
          contentsOf:
            Data((Self.acceptedLines(accepted, loaded) + "\n").utf8))
      }
      let result = try await waitForResult(connection, job: accepted.job, showProgress: true)
      if client.json { printJSON(result) } else { render(result.report, format: format, csvSafe: csvSafe.enabled) }
      try checkSucceeded(result)
    }
  }
}

/// Exits 3 (after saying why) if a job ended other than succeeded.
func checkSucceeded(_ result: Haat_V1_Result) throws {
  if sayWhyNotSucceeded(result) { throw ExitCode(Exit.jobNotSucceeded) }
}

/// Says on stderr why a job ended other than succeeded (a report alone may be empty, as a
/// failed job's is); false, saying nothing, when it succeeded.
@discardableResult
func sayWhyNotSucceeded(_ result: Haat_V1_Result) -> Bool {
  guard result.job.state != JobState.succeeded.rawValue else { return false }
  // The job's error quotes a source's, whose URL may hold a line break: one line all the same.
  let error = DisplayText.escape(result.job.error)
  printError("job \(result.job.id) ended \(result.job.state)\(error.isEmpty ? "" : ": \(error)")")
  return true
}

/// Watches a job to its end (drawing progress) and fetches its result.
func waitForResult(_ connection: HaatClient, job: String, showProgress: Bool) async throws -> Haat_V1_Result {
  var display = ProgressDisplay()
  for try await event in connection.watch(job) {
    if showProgress { display.show(event) }
    if event.final { break }
  }
  return try await connection.result(job)
}

struct JobsCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "jobs", abstract: "List recent jobs, or prune old ones.", subcommands: [List.self, Prune.self],
    defaultSubcommand: List.self)

  struct Prune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Delete jobs that ended longer ago than --older-than, with their tasks and results (admin).")
    @Option(help: "30d, 12h, 90m, 45s.")
    var olderThan: String
    @OptionGroup var client: ClientOptions

    func validate() throws {
      // "0", "0s", "0d": a duration, but of nothing.
      if olderThan.first == "0", olderThan.allSatisfy({ "0smhd".contains($0) }) {
        throw ValidationError("--older-than must be more than 0 (1s prunes every job that has ended)")
      }
      guard let ms = DurationText.milliseconds(olderThan), ms > 0 else {
        throw ValidationError("--older-than must be a number with s, m, h or d, e.g. 30d")
      }
    }

    func run() async throws {
      let ms = DurationText.milliseconds(olderThan) ?? 0
      try await client.session { connection in
        let cutoff = Int64(Date().timeIntervalSince1970 * 1000) - ms
        let pruned = try await connection.prune(endedBeforeMs: cutoff)
        if client.json { return printJSON(pruned) }
        print(
          "pruned \(plural(Int(pruned.jobs), "job")) and \(plural(Int(pruned.tasks), "task")) that ended before \(cutoff > 0 ? time(cutoff) : "1970 (nothing ended that long ago)")"
        )
      }
    }
  }
}

extension JobsCommand {
  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List recent jobs, newest first.")
    @Option(help: "Only jobs in this state (queued, running, succeeded, failed, partial, cancelled).")
    var state: String?
    // Unconditional: `--limit -1` is refused as the value it is, not as a missing value.
    @Option(parsing: .unconditional, help: "At most this many.")
    var limit: UInt32 = 20
    @OptionGroup var client: ClientOptions

    func validate() throws { try refuseEmpty(state, "--state", "a job state", all: "every job") }

    func run() async throws {
      try await client.session { connection in
        let jobs = try await connection.jobs(state: state ?? "", limit: limit)
        if client.json { return printJSON(jobs) }
        let rows = jobs.map { job in
          [
            job.id, job.name, job.state, "\(job.counts.done)/\(job.counts.total)", String(job.counts.dead),
            time(job.createdMs),
          ]
        }
        print(
          TextTable(header: ["id", "name", "state", "done", "dead", "created"], rightAligned: [0, 3, 4]).render(rows),
          terminator: "")
      }
    }
  }
}

struct JobCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "job", abstract: "Show one job and its tasks.")
  @Argument(help: "The job id.")
  var id: String
  @Flag(help: "List every task.")
  var tasks = false
  @OptionGroup var client: ClientOptions

  func run() async throws {
    try await client.session { connection in
      let job = try await connection.job(id, tasks: tasks)
      if client.json { return printJSON(job) }
      print("job \(job.id) \(job.name): \(job.state)")
      print("  tasks:     \(counts(job.counts))")
      print("  reports:   \(job.reports.joined(separator: ", "))")
      print("  priority:  \(job.priority)")
      print("  created:   \(time(job.createdMs)) by \(job.submittedBy)")
      print("  started:   \(time(job.startedMs))")
      print("  finished:  \(time(job.finishedMs))")
      // The error quotes a source's or a worker's, which may hold a line break: one line.
      if !job.error.isEmpty { print("  error:     \(DisplayText.escape(job.error))") }
      if tasks {
        let rows = job.tasks.map { task in
          [
            task.id, task.source, task.state, "\(task.attempt)/\(task.maxAttempts)", task.worker,
            task.hasLastError ? "\(task.lastError.code): \(task.lastError.message)" : "",
          ]
        }
        print(
          TextTable(header: ["task", "source", "state", "attempts", "worker", "last error"], rightAligned: [0]).render(
            rows), terminator: "")
      }
    }
  }
}

struct ResultCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "result", abstract: "Print a finished job's report.")
  @Argument(help: "The job id.")
  var id: String
  @Option(help: "table, json or csv.")
  var format: String = ReportFormat.table.rawValue
  @Flag(help: "Wait for the job to end first; exit 3 if it did not succeed.")
  var wait = false
  @OptionGroup var csvSafe: CSVSafeOption
  @Option(help: "Print only this report's section (table and csv), e.g. best_time.")
  var report: String?
  @Option(help: "Also write the report's chart as SVG to this file (best_time: a heatmap per account).")
  var svg: String?
  @Option(
    name: .customLong("svg-limit"),
    help: "The chart's most blocks (best_time: the accounts with the most posts); 0 draws them all.")
  var svgLimit = 200
  @OptionGroup var client: ClientOptions

  func validate() throws {
    guard ReportFormat(rawValue: format) != nil else { throw ValidationError("--format must be table, json or csv") }
    if let report, Reports.kernel(named: report) == nil {
      throw ValidationError("--report: unknown report \"\(report)\"; use one of \(Reports.names)")
    }
    if svg != nil, report == nil {
      throw ValidationError("--svg needs --report NAME: the report whose chart to draw (e.g. best_time)")
    }
    // As --out and --ready-file: a FIFO there blocked the write for good, a directory gave
    // Foundation's "error 512" (found by a tester).
    if let svg, let refusal = RegularFile.refusal(svg) { throw ValidationError("--svg: \(refusal)") }
    guard svgLimit >= 0 else { throw ValidationError("--svg-limit must be 0 (every block) or more") }
  }

  func run() async throws {
    let format = ReportFormat(rawValue: format) ?? .table
    try await client.session { connection in
      let result =
        wait ? try await waitForResult(connection, job: id, showProgress: false) : try await connection.result(id)
      if let report, let kernel = Reports.kernel(named: report) {
        let absent = kernel.table(of: result.report) == nil
        let state = result.job.state
        // A job that named the report and failed has no section to print, whether or not
        // an empty one was kept (found by a tester: all tasks dead printed zeros, exit 0):
        // why it ended is the answer (exit 3). One that never named it is told so in every
        // state (a partial job's missing section exited 3 with why it was partial).
        if result.job.reports.contains(report),
          state == JobState.failed.rawValue || (absent && state != JobState.succeeded.rawValue)
        {
          sayWhyNotSucceeded(result)
          throw ExitCode(Exit.jobNotSucceeded)
        }
        if absent {
          // A section every requested report has (empty when no task fed it): absent, the
          // job never asked for it. Said, rather than printing nothing and exiting 0.
          let computed = Reports.all.filter { $0.table(of: result.report) != nil }.map { $0.name }
          throw HaatError(
            .badRequest,
            "job \(id) has no \(report) report: the job did not compute it (it computed \(computed.isEmpty ? "none" : computed.joined(separator: ", ")); name \(report) in the spec's reports)"
          )
        }
      }
      if let svg, let report, let kernel = Reports.kernel(named: report) {
        // Bounded by default: 100,000 accounts' weeks made a 1.35 GB file and took the CLI
        // 5.9 GB (a tester).
        guard let chart = kernel.svg(of: result.report, limit: svgLimit > 0 ? svgLimit : nil) else {
          throw HaatError(.badRequest, "job \(id) has no \(report) chart: the \(report) report draws no chart")
        }
        try RegularFile.write(chart, to: svg)
      }
      // --json prints the job and its report, as `submit --wait --json` does.
      if client.json {
        printJSON(result)
      } else if format == .csv {
        printCSV(ReportRendering.csv(result.report, named: report, escapingFormulas: csvSafe.enabled))
      } else if format == .table {
        print(ReportRendering.table(result.report, only: report), terminator: "")
      } else {
        render(result.report, format: format)
      }
      // Without --wait the exit is 0 for any job that ended (docs/cli.md); why it did not
      // succeed is said all the same.
      if wait { try checkSucceeded(result) } else { sayWhyNotSucceeded(result) }
    }
  }
}

struct CancelCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a job.")
  @Argument(help: "The job id.")
  var id: String
  @OptionGroup var client: ClientOptions

  func run() async throws {
    try await client.session { connection in
      let job = try await connection.cancel(id)
      if client.json { printJSON(job) } else { print("job \(job.id) cancelled (\(counts(job.counts)))") }
    }
  }
}

struct WorkersCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "workers", abstract: "Show the workers and their health, or lift a rate key's pause.",
    subcommands: [List.self, Unpause.self], defaultSubcommand: List.self)

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Show the workers, their health and the paused rate keys.")
    @OptionGroup var client: ClientOptions

    func run() async throws { try await WorkersCommand.list(client) }
  }

  struct Unpause: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Lift a rate key's pause (admin): workers may send under it again at once.")
    @Argument(help: "The paused key, as `haat workers` shows it (e.g. credential:meta).")
    var key: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
      try await client.session { connection in
        let unpaused = try await connection.unpause(key: key)
        if client.json { return printJSON(unpaused) }
        print(DisplayText.escape("unpaused: \(unpaused.key) (its pause ran until \(time(unpaused.untilMs)))"))
      }
    }
  }

  static func list(_ client: ClientOptions) async throws {
    try await client.session { connection in
      let list = try await connection.workerList()
      let workers = list.workers
      if client.json { return printJSON(workers) }
      let rows = workers.map { worker -> [String] in
        let slots = worker.pools.map { "\($0.pool) \($0.busy)/\($0.slots)" }.joined(separator: ", ")
        return [
          // A host name (up to 255 bytes, the worker's word) cut to 40 characters: one long
          // name widened every row past reading (a tester); --json has it whole.
          worker.id, worker.host.count > 40 ? String(worker.host.prefix(39)) + "…" : worker.host, worker.state, slots,
          String(worker.leases), String(worker.tasksDone),
          String(worker.tasksFailed), ReportRendering.bytes(worker.rssBytes), ago(worker.lastHeartbeatMs),
        ]
      }
      print(
        TextTable(
          header: ["id", "host", "state", "slots (busy/total)", "leases", "done", "failed", "rss", "last heartbeat"],
          rightAligned: [4, 5, 6, 7]
        ).render(rows), terminator: "")
      // A platform throttled these credentials: no worker sends under them until then.
      for pause in list.pauses {
        let seconds = max(0, (Double(pause.untilMs) - Date().timeIntervalSince1970 * 1000) / 1000)
        print(
          DisplayText.escape(
            "paused: \(pause.key) for \(String(format: "%.0f", seconds.rounded(.up))) s more (until \(time(pause.untilMs))), reported by \(pause.worker): \(pause.reason)"
          ))
      }
    }
  }
}

struct LogsCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "logs", abstract: "Show the logs workers ship to the coordinator.")
  @Flag(name: [.short, .long], help: "Keep following new lines.")
  var follow = false
  @Option(help: "Only this worker's lines.")
  var worker: String = ""
  @Option(help: "Only lines at this level or more severe.")
  var level: String?
  @Option(parsing: .unconditional, help: "How many stored lines to show first.")
  var limit: UInt32 = 100
  @OptionGroup var client: ClientOptions

  func validate() throws { try refuseEmpty(level, "--level", "a log level", all: "every level") }

  func run() async throws {
    try await client.session { connection in
      do {
        try await printLines(connection)
      } catch let error as HaatError where follow && error.code == .unavailable {
        // The coordinator closes a follower that falls 8 MiB behind (a flood of lines into
        // a slow pipe): said, since lines were lost (a tester saw only "closed").
        throw HaatError(
          .unavailable,
          "\(error.message) (it stopped, or it closed this follower for falling 8 MiB behind the lines; lines missed are not resent: read them with haat logs --limit)"
        )
      }
    }
  }

  private func printLines(_ connection: HaatClient) async throws {
    for try await line in connection.logs(worker: worker, level: level ?? "", follow: follow, limit: limit) {
      if client.json {
        printJSON(line)
      } else {
        // The worker is a column already. Each part a worker wrote is shown on the one
        // line, its own line breaks made visible: a worker cannot forge a line of another's.
        let shown = { (text: String) in DisplayText.escape(text) }
        let fields = line.fields.filter { $0.key != "worker" }.sorted { $0.key < $1.key }
          .map { "\(shown($0.key))=\(shown($0.value))" }.joined(separator: " ")
        let task = line.task.isEmpty ? "" : " task=\(shown(line.task))"
        print(
          "\(time(line.atMs)) \(shown(line.worker)) \(shown(line.level.uppercased())) \(shown(line.message))\(task)\(fields.isEmpty ? "" : " " + fields)"
        )
      }
      flushOrEndWhenUnread()
    }
  }
}

/// An option given with nothing in it (`--job "$UNSET"`), which the protocol would read as
/// "all": refused, so that a script's empty variable does not act on everything.
func refuseEmpty(_ value: String?, _ option: String, _ what: String, all: String) throws {
  guard let value, value.trimmingCharacters(in: .whitespaces).isEmpty else { return }
  throw ValidationError("\(option) must be \(what), not \"\(value)\"; leave \(option) out for \(all)")
}
