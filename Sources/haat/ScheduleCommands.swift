import ArgumentParser
import Foundation
import HaatAnalytics
import HaatClient
import HaatCore
import HaatProtocol

/// `haat schedules`: recurring jobs (specs submitted with `every`).
struct SchedulesCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "schedules", abstract: "List recurring jobs, or pause, resume or remove one.",
    subcommands: [List.self, Report.self, Change.Pause.self, Change.Resume.self, Change.Remove.self],
    defaultSubcommand: List.self)

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the schedules and their next runs.")
    @OptionGroup var client: ClientOptions

    func run() async throws {
      try await client.session { connection in
        let schedules = try await connection.schedules()
        if client.json { return printJSON(schedules) }
        let rows = schedules.map {
          [
            DisplayText.escape($0.name), $0.every, $0.paused ? "paused" : time($0.nextMs), String($0.runs),
            $0.lastJob.isEmpty ? "–" : $0.lastJob,
          ]
        }
        print(
          TextTable(header: ["name", "every", "next run", "runs", "last job"], rightAligned: [3, 4]).render(rows),
          terminator: "")
      }
    }
  }

  struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Print a schedule's cumulative report: every finished run merged (each run read only what was new).")
    @Argument(help: "The schedule's name.") var name: String
    @Option(help: "table, json or csv.")
    var format: String = ReportFormat.table.rawValue
    @Option(help: "Print only this report's section (table and csv), e.g. ads.")
    var report: String?
    @OptionGroup var csvSafe: CSVSafeOption
    @OptionGroup var client: ClientOptions

    func validate() throws {
      guard ReportFormat(rawValue: format) != nil else { throw ValidationError("--format must be table, json or csv") }
      if let report, Reports.kernel(named: report) == nil {
        throw ValidationError("--report: unknown report \"\(report)\"; use one of \(Reports.names)")
      }
    }

    func run() async throws {
      try await client.session { connection in
        let result = try await connection.scheduleReport(name)
        if client.json { return printJSON(result) }
        // As `result --report` of a failed job: no run read a source, so there is no section to
        // print; why is the answer (exit 3). It printed empty tables and exited 0 (a tester).
        if report != nil, result.job.state == JobState.failed.rawValue, result.report.summary.sourcesOk == 0 {
          sayWhyNotSucceeded(result)
          throw ExitCode(Exit.jobNotSucceeded)
        }
        if let report, let kernel = Reports.kernel(named: report), kernel.table(of: result.report) == nil {
          throw HaatError(
            .badRequest,
            "schedule \(DisplayText.escape(name)) has no \(report) report: its runs did not compute it (name \(report) in the spec's reports)"
          )
        }
        render(result.report, format: ReportFormat(rawValue: format) ?? .table, only: report, csvSafe: csvSafe.enabled)
        sayWhyNotSucceeded(result)
      }
    }
  }

  /// Pause, resume and remove: one request each, by name.
  enum Change {
    static func run(_ action: String, _ name: String, _ client: ClientOptions) async throws {
      try await client.session { connection in
        let updated = try await connection.updateSchedule(name, action: action)
        if client.json { return printJSON(updated) }
        print(
          "schedule \(DisplayText.escape(updated.name)): \(updated.action == "remove" ? "removed" : updated.action + "d")"
        )
      }
    }

    struct Pause: AsyncParsableCommand {
      static let configuration = CommandConfiguration(abstract: "Start no more runs until resumed (submit).")
      @Argument(help: "The schedule's name.") var name: String
      @OptionGroup var client: ClientOptions
      func run() async throws { try await Change.run("pause", name, client) }
    }

    struct Resume: AsyncParsableCommand {
      static let configuration = CommandConfiguration(abstract: "Start runs again (submit).")
      @Argument(help: "The schedule's name.") var name: String
      @OptionGroup var client: ClientOptions
      func run() async throws { try await Change.run("resume", name, client) }
    }

    struct Remove: AsyncParsableCommand {
      static let configuration = CommandConfiguration(abstract: "Delete the schedule; its jobs stay (submit).")
      @Argument(help: "The schedule's name.") var name: String
      @OptionGroup var client: ClientOptions
      func run() async throws { try await Change.run("remove", name, client) }
    }
  }
}
