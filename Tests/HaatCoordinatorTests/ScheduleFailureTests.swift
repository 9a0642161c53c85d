import HaatCore
import HaatProtocol
import NIOCore
import NIOPosix
import Testing

@testable import HaatCoordinator

/// Found by a tester: a fenced coordinator, stopping, logged "a schedule's spec no longer
/// plans; pause or remove it" (at error) when its thread pool was already shut down, and
/// following that advice would stop a healthy schedule. Only a spec that fails to plan
/// says so.
@Suite struct ScheduleFailureTests {
  @Test func aPoolShutDownIsStoppingAndABadSpecIsNot() async throws {
    let pool = NIOThreadPool(numberOfThreads: 1)
    pool.start()
    try await pool.shutdownGracefully()
    let loop = MultiThreadedEventLoopGroup.singleton.next()
    do {
      _ = try await pool.runIfActive(eventLoop: loop) { 1 }.get()
      Issue.record("a shut-down pool ran the work")
    } catch {
      #expect(CoordinatorCore.isStopping(error))
    }
    var spec = JobSpec()
    spec.name = "no sources"
    #expect(throws: HaatError.self) { _ = try Planner.plan(spec, submittedBy: "schedule:s", defaults: .init()) }
    do {
      _ = try Planner.plan(spec, submittedBy: "schedule:s", defaults: .init())
    } catch {
      #expect(!CoordinatorCore.isStopping(error))
    }
  }
}
