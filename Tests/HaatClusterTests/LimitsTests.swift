import Foundation
import HaatClient
import HaatCore
import HaatProtocol
import HaatTesting
import Testing

/// Issue 10 §3: every list in a request is bounded, and the refusal names the field.
@Suite("Limits", .serialized)
struct LimitsTests {
  @Test func aListLongerThanTheLimitIsRefusedByName() async throws {
    try await withCluster(.fast(workers: 0)) { cluster, _ in
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

  /// A session may follow 4 log streams: a 5th is refused with `busy`, and the refusal is
  /// the first thing it gets (not a line of the backlog, then `busy`).
  @Test func aFifthFollowIsRefusedBeforeItsBacklog() async throws {
    try await withCluster(.fast(workers: 1)) { cluster, _ in
      let client = try await cluster.client()
      let source = noopSource()
      _ = try await finish(client, try await client.submit(spec("a logged task", [source])).job)
      try await eventually("a worker's line is stored") {
        var lines = client.logs(limit: 1).makeAsyncIterator()
        return try await lines.next() != nil
      }
      var follows: [AsyncThrowingStream<Haat_V1_Log, any Error>.AsyncIterator] = []
      for _ in 0..<4 {
        var follow = client.logs(follow: true, limit: 1).makeAsyncIterator()
        #expect(try await follow.next() != nil)
        follows.append(follow)
      }
      var fifth = client.logs(follow: true, limit: 1).makeAsyncIterator()
      do {
        let first = try await fifth.next()
        Issue.record("a 5th follow got \(String(describing: first)) before its refusal")
      } catch let error as HaatError {
        #expect(error.code == .busy)
      }
      await client.close()
    }
  }
}
