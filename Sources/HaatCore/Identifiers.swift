/// A positive integer identity, written in decimal on the wire and in the CLI; `Kind` keeps
/// job ids and task ids apart.
public struct Identifier<Kind>: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
  public var rawValue: Int64
  public init(rawValue: Int64) { self.rawValue = rawValue }
  public init(_ rawValue: Int64) { self.rawValue = rawValue }

  /// Parses a decimal id; nil for anything else.
  public init?(_ text: some StringProtocol) {
    guard let value = Int64(text), value > 0 else { return nil }
    self.rawValue = value
  }

  public var description: String { String(rawValue) }
  public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

public enum JobKind {}
public enum TaskKind {}

/// A job's identity.
public typealias JobID = Identifier<JobKind>
/// A task's identity, unique across jobs.
public typealias TaskID = Identifier<TaskKind>

/// The worker pools a task can run in; a worker advertises slots and credit per pool.
public enum Pool: String, Sendable, CaseIterable, Hashable {
  /// Fetching and parsing exports (network- and parse-bound).
  case collect
  /// Second-stage analysis over partials (CPU-bound).
  case analyze
}
