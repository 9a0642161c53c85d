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

  /// ArgumentParser's own `main`, then a check that the output was written: a full disk
  /// under `> file` exited 0 with the file cut short, where docs/cli.md promises exit 74.
  static func main() async {
    ParentWatch.launchParent.store(getppid(), ordering: .relaxed)
    do {
      var command = try parseAsRoot()
      if var command = command as? any AsyncParsableCommand {
        try await command.run()
      } else {
        try command.run()
      }
    } catch {
      flushOrEndWhenUnread()
      // Help and --version go to stdout: through the checked writes too.
      if exitCode(for: error) == .success {
        writeOut(fullMessage(for: error) + "\n")
        flushOrEndWhenUnread()
        Foundation.exit(0)
      }
      exit(withError: error)
    }
    flushOrEndWhenUnread()
  }
}
