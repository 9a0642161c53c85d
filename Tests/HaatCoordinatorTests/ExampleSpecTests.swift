import Foundation
import HaatClient
import HaatCoordinator
import Testing

/// The README's specs are real: every file in examples/ loads and plans as written.
@Suite struct ExampleSpecTests {
  @Test func everyExampleSpecLoadsAndPlans() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("examples")
    let files = try FileManager.default.contentsOfDirectory(atPath: root.path).filter { $0.hasSuffix(".yaml") }
    #expect(files.contains("tour.yaml") && files.contains("engagement.yaml"))
    for file in files {
      let spec = try SpecLoader.load(path: root.appendingPathComponent(file).path)
      let job = try Planner.plan(spec, submittedBy: "test")
      #expect(!job.tasks.isEmpty, "\(file)")
    }
  }
}
