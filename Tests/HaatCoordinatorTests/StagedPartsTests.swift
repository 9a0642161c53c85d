import Foundation
import HaatCore
import HaatProtocol
import Testing

@testable import HaatCoordinator

/// Results sent in parts: kept until the last part, joined into one partial, bounded, and
/// refused whole when a part is missing.
@Suite struct StagedPartsTests {
  static func cell(_ account: String, likes: UInt64 = 1) -> Haat_V1_EngagementCell {
    var cell = Haat_V1_EngagementCell()
    cell.platform = "instagram"
    cell.account = account
    cell.mediaType = "image"
    cell.posts = 1
    cell.likes = likes
    return cell
  }

  static func part(_ number: UInt32, of total: UInt32?, accounts: [String], task: String = "7", attempt: UInt32 = 1)
    -> Haat_V1_Complete
  {
    var complete = Haat_V1_Complete()
    complete.task = task
    complete.attempt = attempt
    complete.part = number
    complete.parts = total ?? 0
    complete.partial.engagement.cells = accounts.map { cell($0) }
    return complete
  }

  @Test func partsBecomeOnePartial() throws {
    var staged = StagedParts(maxBytesPerWorker: 1 << 20, maxBytes: 1 << 20)
    #expect(staged.receive(Self.part(1, of: nil, accounts: ["a", "b"]), worker: "w") == .staged)
    #expect(staged.receive(Self.part(2, of: nil, accounts: ["c"]), worker: "w") == .staged)
    #expect(staged.bytes > 0)
    guard case .complete(let joined) = staged.receive(Self.part(3, of: 3, accounts: ["d"]), worker: "w") else {
      Issue.record("the last part did not complete the result")
      return
    }
    #expect(try Partial(serializedBytes: joined).engagement.cells.map(\.account) == ["a", "b", "c", "d"])
    #expect(staged.bytes == 0)
  }

  /// Parts sent as `partial_binary` (and a JSON part among them) are kept as sent and
  /// joined in order.
  @Test func binaryPartsJoinAsSent() throws {
    var staged = StagedParts(maxBytesPerWorker: 1 << 20, maxBytes: 1 << 20)
    var first = Self.part(1, of: nil, accounts: [])
    first.partialBinary = try Self.part(1, of: nil, accounts: ["a", "b"]).partial.serializedData()
    first.clearPartial()
    #expect(staged.receive(first, worker: "w") == .staged)
    #expect(staged.bytes == first.partialBinary.count)
    #expect(staged.receive(Self.part(2, of: nil, accounts: ["c"]), worker: "w") == .staged)
    var last = Self.part(3, of: 3, accounts: [])
    last.partialBinary = try Self.part(3, of: 3, accounts: ["d"]).partial.serializedData()
    last.clearPartial()
    guard case .complete(let joined) = staged.receive(last, worker: "w") else {
      Issue.record("the last part did not complete the result")
      return
    }
    #expect(try Partial(serializedBytes: joined).engagement.cells.map(\.account) == ["a", "b", "c", "d"])
  }

  @Test func aSinglePartIsAWholeResult() throws {
    var staged = StagedParts(maxBytesPerWorker: 1 << 20, maxBytes: 1 << 20)
    #expect(
      staged.receive(Self.part(1, of: 1, accounts: ["a"]), worker: "w")
        == .complete(try Self.part(1, of: 1, accounts: ["a"]).partial.serializedData()))
  }

  /// A gap, or a last part that miscounts, refuses the whole result and keeps nothing.
  @Test func aMissingPartRefusesTheResult() {
    var staged = StagedParts(maxBytesPerWorker: 1 << 20, maxBytes: 1 << 20)
    #expect(staged.receive(Self.part(1, of: nil, accounts: ["a"]), worker: "w") == .staged)
    guard case .refused(let reason, _) = staged.receive(Self.part(3, of: 3, accounts: ["c"]), worker: "w") else {
      Issue.record("a gap was accepted")
      return
    }
    #expect(reason == "missing_parts")
    #expect(staged.bytes == 0)
    #expect(staged.receive(Self.part(1, of: nil, accounts: ["a"]), worker: "w") == .staged)
    guard case .refused = staged.receive(Self.part(2, of: 5, accounts: ["b"]), worker: "w") else {
      Issue.record("a last part that miscounts was accepted")
      return
    }
    #expect(staged.bytes == 0)
  }

  /// Another worker's parts never join this worker's result (a lease is task, attempt and
  /// worker); part 1 again starts over, as after a reconnect.
  @Test func partsAreKeptPerWorkerAndStartOverAtOne() throws {
    var staged = StagedParts(maxBytesPerWorker: 1 << 20, maxBytes: 1 << 20)
    #expect(staged.receive(Self.part(1, of: nil, accounts: ["a"]), worker: "w1") == .staged)
    #expect(staged.receive(Self.part(1, of: nil, accounts: ["forged"]), worker: "w2") == .staged)
    #expect(staged.receive(Self.part(1, of: nil, accounts: ["a2"]), worker: "w1") == .staged)
    guard case .complete(let joined) = staged.receive(Self.part(2, of: 2, accounts: ["b"]), worker: "w1") else {
      Issue.record("not completed")
      return
    }
    #expect(try Partial(serializedBytes: joined).engagement.cells.map(\.account) == ["a2", "b"])
    staged.drop(worker: "w2")
    #expect(staged.bytes == 0)
  }

  @Test func stagedBytesAreBounded() {
    var staged = StagedParts(maxBytesPerWorker: 200, maxBytes: 300)
    let many = (0..<20).map { "account-\($0)" }
    guard case .refused(let reason, _) = staged.receive(Self.part(1, of: nil, accounts: many), worker: "w") else {
      Issue.record("a part over the bound was kept")
      return
    }
    #expect(reason == "too_large")
    #expect(staged.receive(Self.part(1, of: nil, accounts: ["a"]), worker: "w1") == .staged)
    #expect(staged.receive(Self.part(1, of: nil, accounts: ["a", "b", "c"]), worker: "w2") == .staged)
    #expect(staged.receive(Self.part(1, of: nil, accounts: ["a", "b", "c"]), worker: "w3") == .staged)
    #expect(staged.receive(Self.part(1, of: nil, accounts: ["a", "b", "c", "d", "e"]), worker: "w4") != .staged)
    #expect(staged.bytes <= 300)
  }
}

/// Specs sent in parts: bounded per session, and by the room every session's parts leave
/// (many sessions each holding early parts took the coordinator past a gigabyte).
@Suite struct SpecPartsTests {
  static func part(_ number: UInt32, of parts: UInt32 = 0, sources: Int) -> Haat_V1_Submit {
    var submit = Haat_V1_Submit()
    submit.part = number
    submit.parts = parts
    submit.spec.sources = (0..<sources).map { index in
      var source = Source()
      source.url = "https://example.com/\(index).csv"
      return source
    }
    return submit
  }

  @Test func partsAreBoundedByTheRoomLeft() {
    var parts = SpecParts(maxBytes: 1 << 20)
    #expect(parts.receive(Self.part(1, sources: 10), room: 1 << 20) == .kept)
    let held = parts.bytes
    #expect(held > 0)
    // Another session holds all but a little: the next part does not fit, and the parts
    // held so far are let go (their bytes go back to the room).
    guard case .refused(let error) = parts.receive(Self.part(2, sources: 10), room: held + 10) else {
      Issue.record("kept past the room")
      return
    }
    #expect(error.code == .busy && error.field == "part")
    #expect(parts.bytes == 0)
    // With room, the same parts make one spec.
    #expect(parts.receive(Self.part(1, sources: 10)) == .kept)
    guard case .whole(let spec) = parts.receive(Self.part(2, of: 2, sources: 3)) else {
      Issue.record("not whole")
      return
    }
    #expect(spec.sources.count == 13 && parts.bytes == 0)
  }
  /// Found by a tester: a part counted only its sources' URLs and names, and the field
  /// limits were checked at the last part, so 2,500 parts of megabyte accounts held 2.5 GB.
  @Test func everyFieldCountsAndIsCheckedAsItComes() {
    var parts = SpecParts(maxBytes: 1 << 20)
    var submit = Self.part(1, sources: 1)
    submit.spec.sources[0].timezone = String(repeating: "z", count: 900)
    submit.spec.sources[0].platform = String(repeating: "p", count: 600_000)
    guard case .kept = parts.receive(submit) else {
      Issue.record("refused a part within its limits")
      return
    }
    #expect(parts.bytes > 600_000, "every field is counted: \(parts.bytes)")
    // The next would pass the session's megabyte.
    guard case .refused(let tooLarge) = parts.receive(Self.renumbered(submit, 2)) else {
      Issue.record("kept past the session's bytes")
      return
    }
    #expect(tooLarge.code == .tooLarge && parts.bytes == 0)
    // A field past its limit is refused at its part, naming the source by its place in the spec.
    #expect(parts.receive(Self.part(1, sources: 3)) == .kept)
    var long = Self.part(2, sources: 2)
    long.spec.sources[1].account = String(repeating: "a", count: 1_025)
    guard case .refused(let bad) = parts.receive(long) else {
      Issue.record("a megabyte account was kept")
      return
    }
    #expect(bad.code == .badSpec && bad.field == "sources[4].account" && parts.bytes == 0)
    // So is a part that takes the spec past the most sources.
    var many = SpecParts(maxBytes: 64 << 20)
    #expect(many.receive(Self.part(1, sources: Planner.maxSources)) == .kept)
    guard case .refused(let over) = many.receive(Self.part(2, sources: 1)) else {
      Issue.record("kept past the most sources")
      return
    }
    #expect(over.code == .badSpec && over.field == "sources")
  }

  static func renumbered(_ submit: Haat_V1_Submit, _ part: UInt32) -> Haat_V1_Submit {
    var next = submit
    next.part = part
    return next
  }
}
