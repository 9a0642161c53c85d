import ArgumentParser
import Foundation
import HaatCore
import Logging
import ServiceLifecycle
import Synchronization

/// A service that waits for the group's graceful shutdown.
struct IdleService: Service {
  func run() async throws { try? await gracefulShutdown() }
}

/// Ends the group when the process that started this one is gone, so no child outlives a
/// demo or a test run.
struct ParentWatch: Service {
  /// The parent at launch (`Haat.main` reads it first thing). Read when the services
  /// started, after the store opened, a parent already gone read as init's pid, and the
  /// orphan watched it for ever (a demo stopped during its coordinator's start left one).
  static let launchParent = Atomic<Int32>(0)
  let parent = Self.launchParent.load(ordering: .relaxed)

  func run() async throws {
    while !Task.isCancelled && !Task.isShuttingDownGracefully {
      let now = getppid()
      if now != parent || now == 1 { return }
      try? await Task.sleep(for: .milliseconds(250))
    }
  }
}

func makeLogger(_ label: String, level: Logger.Level) -> Logger {
  var logger = Logger(label: label) { JSONLogHandler(label: $0, level: level) }
  logger.logLevel = level
  return logger
}

/// Runs services until SIGTERM/SIGINT (graceful) or, with `exitWithParent`, until the parent
/// process is gone.
func runServices(_ services: [any Service], exitWithParent: Bool, logger: Logger) async throws {
  var configured = services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
  if exitWithParent {
    configured.append(
      .init(service: ParentWatch(), successTerminationBehavior: .gracefullyShutdownGroup))
  }
  var configuration = ServiceGroupConfiguration(services: configured, logger: logger)
  configuration.gracefulShutdownSignals = [.sigterm, .sigint]
  do {
    try await ServiceGroup(configuration: configuration).run()
  } catch let error as HaatError {
    logger.critical("\(error.description)")
    printError(error.description)
    throw ExitCode(Exit.code(for: error))
  }
}
