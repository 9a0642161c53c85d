import HaatProtocol

/// The worker logs the coordinator keeps: the newest lines, at most `capacity` of them and
/// at most about `capacityBytes` of text (the oldest lines go first).
struct LogStore {
  /// Lines oldest first; those before `head` are dropped and compacted away now and then.
  private var lines: [Haat_V1_Log] = []
  private var head = 0
  private(set) var bytes = 0
  let capacity: Int
  let capacityBytes: Int

  init(capacity: Int, capacityBytes: Int = 16 << 20) {
    self.capacity = max(1, capacity)
    self.capacityBytes = max(1, capacityBytes)
  }

  var count: Int { lines.count - head }

  /// The bytes a line holds, roughly: its text and a per-line overhead.
  static func size(_ line: Haat_V1_Log) -> Int {
    64 + line.message.utf8.count + line.worker.utf8.count + line.task.utf8.count + line.level.utf8.count
      + line.fields.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 32 }
  }

  mutating func append(_ line: Haat_V1_Log) {
    lines.append(line)
    bytes += Self.size(line)
    while count > capacity || (bytes > capacityBytes && count > 1) {
      bytes -= Self.size(lines[head])
      head += 1
    }
    if head > 1024 && head * 2 > lines.count {
      lines.removeFirst(head)
      head = 0
    }
  }

  /// The newest `limit` lines that pass `filter`, oldest first.
  func tail(limit: Int, where filter: (Haat_V1_Log) -> Bool) -> [Haat_V1_Log] {
    var out: [Haat_V1_Log] = []
    var index = lines.count - 1
    while index >= head, out.count < limit {
      if filter(lines[index]) { out.append(lines[index]) }
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
