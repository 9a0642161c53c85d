import Foundation
import NIOCore
import SwiftProtobuf
import Testing

@testable import HaatProtocol

/// Specs written by hand are protobuf's JSON byte for byte, whichever path writes them.
@Suite struct SpecJSONTests {
  @Test func taskSpecsAreProtobufsBytes() throws {
    var random = WireFastPathTests.Random(state: 5)
    var byHand = 0
    for _ in 0..<3_000 {
      let spec = WireFastPathTests.spec(&random)
      let expected = try spec.jsonUTF8Data(options: WireCodec.encodingOptions)
      #expect(try SpecJSON.data(spec) == expected, "\(String(decoding: expected, as: UTF8.self))")
      var buffer = ByteBuffer()
      if SpecJSON.write(spec, into: &buffer) { byHand += 1 }
    }
    #expect(byHand > 1_000)
  }

  @Test func jobSpecsAreProtobufsBytes() throws {
    var random = WireFastPathTests.Random(state: 11)
    var byHand = 0
    for round in 0..<2_000 {
      var spec = JobSpec()
      func text() -> String { WireFastPathTests.texts.randomElement(using: &random) ?? "" }
      if random.next() % 2 == 0 { spec.name = text() }
      spec.sources = (0..<Int(random.next() % 4)).map { _ in WireFastPathTests.spec(&random).source }
      if random.next() % 2 == 0 { spec.reports = ["engagement", text()] }
      if random.next() % 2 == 0 { spec.priority = Int32(truncatingIfNeeded: random.next()) }
      if random.next() % 2 == 0 { spec.notBefore = "2026-12-03T10:00:00Z" }
      if random.next() % 2 == 0 { spec.maxAttempts = UInt32(truncatingIfNeeded: random.next()) }
      if random.next() % 2 == 0 { spec.retryBaseMs = 1_000 }
      if random.next() % 2 == 0 { spec.retryCapMs = UInt32.max }
      if random.next() % 2 == 0 { spec.every = "1h" }
      if round % 10 == 0 { spec.labels = ["team": text()] }
      let expected = try spec.jsonUTF8Data(options: WireCodec.encodingOptions)
      #expect(try SpecJSON.data(spec) == expected, "\(String(decoding: expected, as: UTF8.self))")
      var buffer = ByteBuffer()
      if SpecJSON.write(spec, into: &buffer) { byHand += 1 }
    }
    #expect(byHand > 500)
  }
  /// The writers by hand name every field of the messages they write: a field added to
  /// one of these messages must be added to its writer (SpecJSON, WireFastPath.encode) too,
  /// or it would be left out of what is stored and sent, without a word.
  @Test func theWritersKnowEveryField() throws {
    let protos = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .appendingPathComponent("../../protos/haat/v1").standardizedFileURL
    var text = ""
    for file in try FileManager.default.contentsOfDirectory(atPath: protos.path) where file.hasSuffix(".proto") {
      text += try String(contentsOf: protos.appendingPathComponent(file), encoding: .utf8)
    }
    func fields(of message: String) -> Int {
      guard let start = text.range(of: "\nmessage \(message) {") else { return -1 }
      let body = text[start.upperBound...].prefix { $0 != "}" }
      return body.split(separator: "\n").filter { line in
        let code = line.split(separator: "/", maxSplits: 1).first ?? ""
        return code.contains("=") && code.hasSuffix(";") && !code.contains("option ")
      }.count
    }
    #expect(fields(of: "TaskSpec") == 9)
    #expect(fields(of: "Source") == 16)
    #expect(fields(of: "JobSpec") == 10)
    #expect(fields(of: "ByteRange") == 4)
    #expect(fields(of: "DateWindow") == 2)
    #expect(fields(of: "Complete") == 9)
  }
}
