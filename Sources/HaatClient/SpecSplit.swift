import HaatCore
import HaatProtocol
import SwiftProtobuf

/// A `submit` cut into parts whose lines fit the session's limit: each part some of the
/// sources, the last the rest of the spec and the count (docs/protocol.md, `submit`).
enum SpecSplit {
  /// The parts, or nil when one source alone cannot fit; one part when all of it fits.
  static func parts(of submit: Haat_V1_Submit, maxBytes: Int) -> [Haat_V1_Submit]? {
    guard let size = jsonSize(submit), size > maxBytes else { return [submit] }
    var rest = submit
    rest.spec.sources = []
    rest.part = 1
    rest.parts = 1
    guard let restSize = jsonSize(rest) else { return nil }
    let budget = maxBytes - restSize
    guard budget > 0 else { return nil }
    var groups: [[Source]] = [[]]
    var used = 0
    for source in submit.spec.sources {
      guard let bytes = jsonSize(source).map({ $0 + 1 }), bytes <= budget else { return nil }
      if used + bytes > budget {
        groups.append([])
        used = 0
      }
      groups[groups.count - 1].append(source)
      used += bytes
    }
    return groups.enumerated().map { index, sources in
      var part = Haat_V1_Submit()
      if index == groups.count - 1 {
        part = rest
        part.parts = UInt32(groups.count)
      }
      part.spec.sources = sources
      part.part = UInt32(index + 1)
      return part
    }
  }

  static func jsonSize(_ message: some SwiftProtobuf.Message) -> Int? {
    let bytes: [UInt8]? = try? message.jsonUTF8Bytes(options: WireCodec.encodingOptions)
    return bytes?.count
  }
}

extension HaatClient {
  /// What a client can tell of a spec without a coordinator: said with the limit, before
  /// connecting or sending megabytes (a tester with no coordinator up was told it was
  /// unavailable, not that the spec was too big).
  public static func checkBeforeSending(_ spec: JobSpec) throws(HaatError) {
    guard spec.sources.count <= Defaults.maxSources else {
      throw HaatError(
        .badSpec, "the spec has \(spec.sources.count) sources; the most is \(Defaults.maxSources)", field: "sources")
    }
    // A name too long for a line was blamed on a source (the coordinator names it).
    guard Defaults.nameFits(spec.name) else {
      throw HaatError(.badSpec, "is longer than \(Defaults.maxNameCharacters) characters", field: "name")
    }
    // A URL with a secret in it is refused here, so the secret is never sent (the
    // coordinator refused it, but only after it had crossed the wire: a tester).
    for (index, source) in spec.sources.enumerated() {
      if let refusal = URLSecrets.refusal(of: source.url, field: "sources[\(index)].url") { throw refusal }
    }
  }
}
