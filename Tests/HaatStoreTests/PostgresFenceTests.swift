import Foundation
import HaatCore
import Synchronization
import Testing

@testable import HaatStore

/// Found by a tester: an active coordinator frozen while its lock's connection ended (a
/// paused VM) committed leases after the standby had taken over and recovered; the job
/// waited for them for ever. Each takeover takes the next number, and a store whose number
/// is no longer the newest writes nothing.
@Suite struct PostgresFenceTests {
  @Test(.enabled(if: StoreBackend.postgresURL != nil))
  func aStoreWhoseCoordinatorWasTakenOverWritesNothing() async throws {
    let tests = try StoreHarness(.postgres)
    guard case .postgres(let location) = try StoreLocation(parsing: tests.place) else {
      throw HaatError(.internal, "not a PostgreSQL URL")
    }
    let fenced = Atomic<Int>(0)
    let first = try await PostgresJobStore(location, fenced: { fenced.add(1, ordering: .relaxed) })
    let job = try await tests.submit(first, tests.job(tasks: 2))
    #expect(try await tests.claim(first, 1).count == 1, "the active coordinator's store writes")
    // A standby takes over (the first coordinator's lock is gone, but it runs on).
    let second = try await PostgresJobStore(location, fenced: {})
    #expect(fenced.load(ordering: .relaxed) == 0)
    await #expect(throws: HaatError.self) {
      try await first.apply([.claim(owner: "w1", pool: .collect, limit: 1)], nowMs: 2_000)
    }
    #expect(fenced.load(ordering: .relaxed) == 1, "told it was taken over")
    let record = try #require(try await second.job(job, tasks: true, nowMs: 3_000))
    #expect(record.tasks.filter { $0.state == .leased }.count == 1, "the refused claim leased nothing")
    #expect(try await tests.claim(second, 1, now: 3_000).count == 1, "the new active one writes")
    // A store not fenced (tools, tests) checks nothing.
    let unfenced = try await PostgresJobStore(location)
    #expect(try await tests.claim(unfenced, 1, now: 4_000).isEmpty)
    await first.close()
    await second.close()
    await unfenced.close()
  }
}
