import HaatCore
import HaatProtocol

/// The earlier parts of a spec sent in parts on one session (docs/protocol.md, `submit`),
/// until the last: then they are one spec, the last part's fields with every part's sources
/// in order. Bounded in bytes; a session holds one spec in parts at a time.
struct SpecParts {
  enum Outcome: Equatable {
    /// An earlier part, kept.
    case kept
    /// The last part: the whole spec.
    case whole(JobSpec)
    case refused(HaatError)
  }

  let maxBytes: Int
  private var sources: [Source] = []
  private var count: UInt32 = 0
  private(set) var bytes = 0

  init(maxBytes: Int) {
    self.maxBytes = maxBytes
  }

  /// `room`: the bytes this session's parts may take in all, given what other sessions hold.
  mutating func receive(_ submit: Haat_V1_Submit, room: Int = .max) -> Outcome {
    // Part 1 starts a spec over (a client that reconnected sends every part again).
    if submit.part == 1 { reset() }
    guard submit.part == count + 1 else {
      let have = count
      reset()
      return .refused(
        HaatError(
          .badRequest, "spec part \(submit.part) came after part \(have); send every part again from 1",
          field: "part"))
    }
    if submit.parts == 0 {
      // Checked as each part comes, not at the last: a part of megabyte accounts was held
      // (uncounted) until the last part refused them.
      let first = sources.count
      guard first + submit.spec.sources.count <= Planner.maxSources else {
        reset()
        return .refused(
          HaatError(
            .badSpec, "has more than \(Planner.maxSources) sources; the most is \(Planner.maxSources)",
            field: "sources"))
      }
      for (index, source) in submit.spec.sources.enumerated() {
        do throws(HaatError) {
          try Planner.checkTexts(of: source, field: "sources[\(first + index)]")
        } catch {
          reset()
          return .refused(error)
        }
      }
      // Every field counted, as its encoding's size, and each source's overhead.
      let size = submit.spec.sources.reduce(0) { $0 + ((try? $1.serializedData().count) ?? 0) + 256 }
      guard bytes + size <= maxBytes else {
        reset()
        return .refused(HaatError(.tooLarge, "the spec in parts is over \(maxBytes) bytes", field: "part"))
      }
      guard bytes + size <= room else {
        reset()
        return .refused(
          HaatError(
            .busy, "the coordinator holds as many specs in parts as it may; send every part again from 1 later",
            field: "part"))
      }
      sources += submit.spec.sources
      bytes += size
      count += 1
      return .kept
    }
    guard submit.parts == submit.part else {
      reset()
      return .refused(
        HaatError(
          .badRequest, "the last spec part is part \(submit.part) but says there are \(submit.parts)",
          field: "parts"))
    }
    var spec = submit.spec
    spec.sources = sources + spec.sources
    reset()
    return .whole(spec)
  }

  mutating func reset() {
    sources = []
    count = 0
    bytes = 0
  }
}
