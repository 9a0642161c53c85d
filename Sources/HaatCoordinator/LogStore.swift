import HaatProtocol
import NIOCore

/// The worker logs the coordinator keeps: the newest lines, at most `capacity` of them and
/// at most about `capacityBytes` of text. When full, a worker holding more than its share
/// (the bound over the workers with lines kept) loses its own oldest line; otherwise the
/// worker holding the most loses its oldest. So one worker's flood (a stolen token ships
/// 100,000 lines a second) pushes out its own lines, not the others' (it pushed out every
/// other worker's: a tester).
struct LogStore {
  /// Lines oldest first, by sequence number `first + index`; nil where a line was evicted
  /// out of turn. Those before `head` are gone and compacted away now and then.
  private var lines: [Haat_V1_Log?] = []
  private var head = 0
  /// The sequence number of `lines[0]`.
  private var first: UInt64 = 0
  /// Each worker's kept lines (sequence numbers, oldest first) and their bytes.
  private var byWorker: [String: (lines: CircularBuffer<UInt64>, bytes: Int)] = [:]
  private(set) var count = 0
  private(set) var bytes = 0
  let capacity: Int
  let capacityBytes: Int

  init(capacity: Int, capacityBytes: Int = 16 << 20) {
    self.capacity = max(1, capacity)
    self.capacityBytes = max(1, capacityBytes)
  }

  /// The bytes a line holds, roughly: its text and a per-line overhead.
  static func size(_ line: Haat_V1_Log) -> Int {
    64 + line.message.utf8.count + line.worker.utf8.count + line.task.utf8.count + line.level.utf8.count
      + line.fields.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 32 }
  }

  mutating func append(_ line: Haat_V1_Log) {
    let sequence = first + UInt64(lines.count)
    let size = Self.size(line)
    lines.append(line)
    var kept = byWorker.removeValue(forKey: line.worker) ?? (CircularBuffer(), 0)
    kept.lines.append(sequence)
    kept.bytes += size
    byWorker[line.worker] = kept
    count += 1
    bytes += size
    while count > capacity || (bytes > capacityBytes && count > 1) {
      let shares = max(1, byWorker.count)
      let own = byWorker[line.worker]
      let overShare =
        count > capacity
        ? (own?.lines.count ?? 0) > capacity / shares : (own?.bytes ?? 0) > capacityBytes / shares
      if overShare, let oldest = own?.lines.first, (own?.lines.count ?? 0) > 1, evict(sequence: oldest) {
        continue
      }
      // Under its share, the line's worker takes room from the worker holding the most:
      // the oldest line of all was a quiet worker's, whose few lines went first while
      // several floods started (a tester).
      let byBytes = bytes > capacityBytes
      let heaviest = byWorker.max { lhs, rhs in
        byBytes ? lhs.value.bytes < rhs.value.bytes : lhs.value.lines.count < rhs.value.lines.count
      }
      if let oldest = heaviest?.value.lines.first, evict(sequence: oldest) { continue }
      while head < lines.count, lines[head] == nil { head += 1 }
      guard evict(sequence: first + UInt64(head)) else { break }
    }
    while head < lines.count, lines[head] == nil { head += 1 }
    if head > 1024 && head * 2 > lines.count {
      lines.removeFirst(head)
      first += UInt64(head)
      head = 0
    }
  }

  /// Evicts the line of `sequence`; false when it is not kept.
  private mutating func evict(sequence: UInt64) -> Bool {
    let index = Int(truncatingIfNeeded: sequence &- first)
    guard index >= head, index < lines.count, let line = lines[index] else { return false }
    lines[index] = nil
    let size = Self.size(line)
    count -= 1
    bytes -= size
    guard var kept = byWorker[line.worker] else { return true }
    // A worker's lines leave oldest first: out of turn (its share) or in turn (the oldest
    // of all, which is then its oldest too).
    if kept.lines.first == sequence { kept.lines.removeFirst() }
    kept.bytes -= size
    byWorker[line.worker] = kept.lines.isEmpty ? nil : kept
    return true
  }

  /// The newest `limit` lines that pass `filter`, oldest first.
  func tail(limit: Int, where filter: (Haat_V1_Log) -> Bool) -> [Haat_V1_Log] {
    var out: [Haat_V1_Log] = []
    var index = lines.count - 1
    while index >= head, out.count < limit {
      if let line = lines[index], filter(line) { out.append(line) }
      index -= 1
    }
    return out.reversed()
  }
}

/// Log levels in order of severity, as the protocol names them.
enum LogLevel: Int, Comparable {
  case trace, debug, info, notice, warning, error, critical

  init?(name: String) {
    switch name {
    case "trace": self = .trace
    case "debug": self = .debug
    case "info": self = .info
    case "notice": self = .notice
    case "warning", "warn": self = .warning
    case "error": self = .error
    case "critical": self = .critical
    default: return nil
    }
  }

  static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}
