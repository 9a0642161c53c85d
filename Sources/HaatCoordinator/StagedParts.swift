import Foundation
import HaatCore
import HaatProtocol
import SwiftProtobuf

/// The earlier parts of results sent in parts (DESIGN.md §3 "Large results"), kept by
/// task, attempt and worker until the last part arrives; then the parts become one partial
/// (protobuf encodings concatenate into the encoding of the merged message: their repeated
/// cells add up) and are committed as one result, or none is. Bounded per worker and in
/// total; a worker's parts go with its session (it sends them all again on the next).
struct StagedParts {
  struct Key: Hashable {
    var task: String
    var attempt: UInt32
    var worker: String
  }

  enum Outcome: Equatable {
    /// An earlier part, kept; it gets no reply.
    case staged
    /// The last part: every part's protobuf encoding, in order, concatenated: the encoding
    /// of the one partial they make, ready to store with no decode.
    case complete(Data)
    /// Refused (`ack.reason`, and why); the parts of that attempt are dropped.
    case refused(reason: String, message: String)
  }

  let maxBytesPerWorker: Int
  let maxBytes: Int
  private var parts: [Key: [[UInt8]]] = [:]
  private var bytesByWorker: [String: Int] = [:]
  private(set) var bytes = 0

  init(maxBytesPerWorker: Int, maxBytes: Int) {
    self.maxBytesPerWorker = maxBytesPerWorker
    self.maxBytes = maxBytes
  }

  /// Takes one part of a result (`complete.part` ≥ 1).
  mutating func receive(_ complete: Haat_V1_Complete, worker: String) -> Outcome {
    let key = Key(task: complete.task, attempt: complete.attempt, worker: worker)
    // Part 1 starts the result over: a worker resends every part after a reconnect.
    if complete.part == 1 { drop(key) }
    let have = UInt32(parts[key]?.count ?? 0)
    guard complete.part == have + 1 else {
      drop(key)
      return .refused(
        reason: "missing_parts",
        message: "part \(complete.part) of task \(complete.task) came after part \(have); send every part again from 1")
    }
    let encoded: [UInt8]
    do {
      encoded =
        complete.partialBinary.isEmpty ? try complete.partial.serializedBytes() : [UInt8](complete.partialBinary)
    } catch {
      drop(key)
      return .refused(reason: "internal", message: "the part cannot be kept: \(error)")
    }
    if complete.parts == 0 {
      let workerBytes = bytesByWorker[worker, default: 0] + encoded.count
      guard workerBytes <= maxBytesPerWorker, bytes + encoded.count <= maxBytes else {
        drop(key)
        return .refused(
          reason: ErrorCode.tooLarge.rawValue,
          message:
            "the result of task \(complete.task) is over \(workerBytes > maxBytesPerWorker ? maxBytesPerWorker : maxBytes) bytes held in parts"
        )
      }
      parts[key, default: []].append(encoded)
      bytesByWorker[worker] = workerBytes
      bytes += encoded.count
      return .staged
    }
    guard complete.parts == complete.part else {
      drop(key)
      return .refused(
        reason: "missing_parts",
        message: "the last part of task \(complete.task) is part \(complete.part) but says there are \(complete.parts)")
    }
    var joined = Data(capacity: (parts[key] ?? []).reduce(encoded.count) { $0 + $1.count })
    for part in (parts[key] ?? []) + [encoded] { joined.append(contentsOf: part) }
    drop(key)
    return .complete(joined)
  }

  /// Drops everything a worker has staged (its session ended).
  mutating func drop(worker: String) {
    for key in parts.keys where key.worker == worker { drop(key) }
  }

  private mutating func drop(_ key: Key) {
    guard let dropped = parts.removeValue(forKey: key) else { return }
    let size = dropped.reduce(0) { $0 + $1.count }
    bytes -= size
    bytesByWorker[key.worker, default: 0] -= size
    if bytesByWorker[key.worker] == 0 { bytesByWorker[key.worker] = nil }
  }
}
