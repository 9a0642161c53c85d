/// A job's identity: a positive integer, written in decimal on the wire and in the CLI.
public struct JobID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
  public var rawValue: Int64
  public init(rawValue: Int64) { self.rawValue = rawValue }
  public init(_ rawValue: Int64) { self.rawValue = rawValue }

  /// Parses a decimal id; nil for anything else.
  public init?(_ text: some StringProtocol) {
    guard let value = Int64(text), value > 0 else { return nil }
    self.rawValue = value
  }

  public var description: String { String(rawValue) }
  public static func < (lhs: JobID, rhs: JobID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A task's identity: a positive integer, unique across jobs.
public struct TaskID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
  public var rawValue: Int64
  public init(rawValue: Int64) { self.rawValue = rawValue }
  public init(_ rawValue: Int64) { self.rawValue = rawValue }

  /// Parses a decimal id; nil for anything else.
  public init?(_ text: some StringProtocol) {
    guard let value = Int64(text), value > 0 else { return nil }
    self.rawValue = value
  }

  public var description: String { String(rawValue) }
  public static func < (lhs: TaskID, rhs: TaskID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The worker pools a task can run in; a worker advertises slots and credit per pool.
public enum Pool: String, Sendable, CaseIterable, Hashable {
  /// Fetching and parsing exports (network- and parse-bound).
  case collect
  /// Second-stage analysis over partials (CPU-bound).
  case analyze
}
