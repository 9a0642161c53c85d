import ArgumentParser
import Foundation
import HaatAnalytics
import HaatClient
import HaatCore
import HaatProtocol

struct DeadCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "dead", abstract: "List dead tasks, or retry or discard them.",
    subcommands: [List.self, Retry.self, Discard.self], defaultSubcommand: List.self)

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List dead tasks with their last error.")
    @Option(help: "Only this job's.")
    var job: String?
    @Option(parsing: .unconditional, help: "At most this many.")
    var limit: UInt32 = 100
    @OptionGroup var client: ClientOptions

    func validate() throws { try refuseEmpty(job, "--job", "a job id", all: "every job's dead tasks") }

    func run() async throws {
      try await client.session { connection in
        let tasks = try await connection.dead(job: job ?? "", limit: limit)
        if client.json { return printJSON(tasks) }
        let rows = tasks.map {
          [$0.task, $0.job, $0.source, String($0.attempts), "\($0.error.code): \($0.error.message)", time($0.diedMs)]
        }
        print(
          TextTable(header: ["task", "job", "source", "attempts", "error", "died"], rightAligned: [0, 1, 3]).render(
            rows), terminator: "")
      }
    }
  }

  struct Retry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Give dead tasks a fresh set of attempts (admin).")
    @OptionGroup var selection: DeadSelection

    func run() async throws {
      try await selection.update(past: "will run again") { try await $0.retryDead(tasks: $1, job: $2) }
    }
  }

  struct Discard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Give up on dead tasks for good (admin).")
    @OptionGroup var selection: DeadSelection

    func run() async throws {
      try await selection.update(past: "discarded") { try await $0.discardDead(tasks: $1, job: $2) }
    }
  }
}

/// Which dead tasks `dead retry` and `dead discard` act on.
struct DeadSelection: ParsableArguments {
  @Argument(help: "Task ids; none means every dead task (of --job, if given).")
  var tasks: [String] = []
  @Option(help: "Only this job's.")
  var job: String?
  @OptionGroup var client: ClientOptions

  /// An empty `--job` (an unset shell variable) would select every job's dead tasks: a
  /// retry or discard of the whole cluster's. Refused; leave the option out for that.
  func validate() throws {
    try refuseEmpty(job, "--job", "a job id", all: "every job's dead tasks")
    if let empty = tasks.first(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
      throw ValidationError("a task id must not be empty (\"\(empty)\"); give none for every dead task")
    }
  }

  func update(past: String, _ call: (HaatClient, [String], String) async throws -> UInt32) async throws {
    try await client.session { connection in
      let count = try await call(connection, tasks, job ?? "")
      print(client.json ? #"{"count":\#(count)}"# : "\(plural(Int(count), "dead task")) \(past)")
      // Tasks named but not all updated: say which rules leave a task out (a tester named
      // one and was told "0 dead tasks will run again", nothing more).
      if !client.json, !tasks.isEmpty, Int(count) < tasks.count, past == "will run again" {
        printError(
          "not retried: a task that is not dead (see haat dead), one of a cancelled job, or one of a schedule's run that a later run of the schedule has followed (that run read the same data again)"
        )
      } else if !client.json, !tasks.isEmpty, Int(count) < tasks.count {
        printError("not discarded: a task that is not dead (see haat dead)")
      }
    }
  }
}
