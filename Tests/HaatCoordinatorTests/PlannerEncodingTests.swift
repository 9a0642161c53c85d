import Foundation
import HaatCore
import HaatProtocol
import Testing

@testable import HaatCoordinator

/// The planner writes task specs that differ only in their index from one encoding
/// (TaskSpecEncoder): each must be byte for byte what swift-protobuf writes for it.
@Suite struct PlannerEncodingTests {
  func source(_ kind: String, _ edit: (inout Source) -> Void = { _ in }) -> Source {
    var source = Source()
    source.kind = kind
    edit(&source)
    return source
  }

  @Test func everyTaskSpecIsWhatTheEncoderWrites() throws {
    var spec = JobSpec()
    spec.sources = [
      source("noop") {
        $0.tasks = 300
        $0.name = "a \"quoted\" name with \"index\":4294967295 in it"
      },
      source("noop") { $0.tasks = 1 },
      source("posts") {
        $0.url = "file:///exports/posts.csv"
        $0.splitBytes = 1 << 20
      },
      source("posts") { $0.url = "https://example.test/posts.csv?index=4294967295" },
      source("meta_ads") {
        $0.account = "act_1"
        $0.credential = "meta"
        $0.since = "2026-01-01"
        $0.until = "2026-06-30"
      },
      source("facebook_posts") {
        $0.account = "page_1"
        $0.credential = "meta"
        $0.incremental = true
      },
      source("noop") { $0.tasks = 40 },
    ]
    let job = try Planner.plan(spec, submittedBy: "test")
    #expect(job.tasks.count > 340)
    for (position, task) in job.tasks.enumerated() {
      let decoded = try TaskSpec(jsonUTF8Data: task.spec, options: WireCodec.decodingOptions)
      #expect(decoded.index == UInt32(position))
      let direct = try decoded.jsonUTF8Data(options: WireCodec.encodingOptions)
      #expect(task.spec == direct, "task \(position): \(String(decoding: task.spec, as: UTF8.self))")
    }
  }
}
