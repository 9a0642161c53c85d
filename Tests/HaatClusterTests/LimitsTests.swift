import Foundation
import HaatClient
import HaatCore
import HaatTesting
import Testing

/// Issue 10 §3: every list in a request is bounded, and the refusal names the field.
@Suite("Limits", .serialized)
struct LimitsTests {
  @Test func aListLongerThanTheLimitIsRefusedByName() async throws {
    var options = LocalCluster.Options.fast
    options.workers = 0
    try await withCluster(options) { cluster, _ in
      let client = try await cluster.client()
      let tasks = (1...(Defaults.maxListItems + 1)).map(String.init)
      do {
        _ = try await client.retryDead(tasks: tasks)
        Issue.record("10,001 tasks were accepted")
      } catch let error as HaatError {
        #expect(error.code == .badRequest)
        #expect(error.field == "tasks")
        #expect(error.message.contains("at most 10000"))
      }
      // At the limit it is a request like any other (none of these tasks is dead).
      #expect(try await client.retryDead(tasks: Array(tasks.prefix(Defaults.maxListItems))) == 0)
      await client.close()
    }
  }
}
