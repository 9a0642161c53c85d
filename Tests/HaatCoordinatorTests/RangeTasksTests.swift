import Foundation
import HaatProtocol
import Testing

@testable import HaatCoordinator

/// A plan task's split becomes range tasks made from the plan task's stored spec: the
/// worker's split gives only the bounds and the header, never a source.
@Suite("Range tasks")
struct RangeTasksTests {
  @Test func rangeTasksCopyTheStoredPlanAndSetOneRangeEach() throws {
    var plan = TaskSpec()
    plan.source.url = "file:///exports/big.csv"
    plan.source.splitBytes = 1 << 20
    plan.reports = ["engagement"]
    plan.splitPlan = true
    let stored = try plan.jsonUTF8Data(options: WireCodec.encodingOptions)
    var split = Split()
    split.size = 30
    split.header = "platform,account"
    split.bounds = [0, 10, 20, 30]
    let specs = try #require(CoordinatorCore.rangeTasks(of: stored, split, firstIndex: 1))
    let tasks = try specs.map { try TaskSpec(jsonUTF8Data: $0, options: WireCodec.decodingOptions) }
    #expect(tasks.map(\.index) == [1, 2, 3])
    #expect(tasks.map(\.range.start) == [0, 10, 20])
    #expect(tasks.map(\.range.end) == [10, 20, 30])
    #expect(tasks.allSatisfy { $0.range.size == 30 && !$0.splitPlan && $0.source == plan.source })
    #expect(tasks.map(\.range.header) == ["", "platform,account", "platform,account"])

    // A task that was not planned as a plan task adds nothing.
    plan.splitPlan = false
    #expect(CoordinatorCore.rangeTasks(of: try plan.jsonUTF8Data(), split, firstIndex: 1) == nil)
    #expect(CoordinatorCore.rangeTasks(of: Data("not json".utf8), split, firstIndex: 1) == nil)
  }
}
