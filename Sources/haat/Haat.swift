import ArgumentParser
import Foundation
import HaatProtocol

@main
struct Haat: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "haat",
    abstract: "A distributed collection and analytics cluster for social commerce.",
    discussion: """
      Run a coordinator and workers, submit jobs, and read their reports.
      Quick start: `haat demo`. Docs: docs/cli.md.
      """,
    version: HaatVersion.current,
    subcommands: [
      CoordinatorCommand.self, WorkerCommand.self, SubmitCommand.self, JobsCommand.self, JobCommand.self,
      ResultCommand.self, CancelCommand.self, WorkersCommand.self, TopCommand.self, LogsCommand.self, DeadCommand.self,
      SchedulesCommand.self, TokenCommand.self, DemoCommand.self, FixtureServerCommand.self,
    ])
}
