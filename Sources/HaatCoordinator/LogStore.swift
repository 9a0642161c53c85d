import HaatProtocol

/// The worker logs the coordinator keeps: a ring of the newest `capacity` lines.
struct LogStore {
  private var lines: [Haat_V1_Log] = []
  private var next = 0
  let capacity: Int

  init(capacity: Int) {
    self.capacity = max(1, capacity)
    lines.reserveCapacity(min(self.capacity, 1024))
  }

  mutating func append(_ line: Haat_V1_Log) {
    if lines.count < capacity {
      lines.append(line)
    } else {
      lines[next] = line
      next = (next + 1) % capacity
    }
  }

  /// The newest `limit` lines that pass `filter`, oldest first.
  func tail(limit: Int, where filter: (Haat_V1_Log) -> Bool) -> [Haat_V1_Log] {
    var out: [Haat_V1_Log] = []
    let count = lines.count
    var index = 0
    while index < count, out.count < limit {
      // Newest first: walk back from the slot before `next`.
      let slot = (next - 1 - index + count * 2) % count
      if filter(lines[slot]) { out.append(lines[slot]) }
      index += 1
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
