/// A positive integer identity, written in decimal on the wire and in the CLI; `Kind` keeps
/// job ids and task ids apart.
///
/// Its hashing and comparing are inlinable: as a generic type's conformances, they would
/// otherwise run unspecialized in every other module's dictionaries and sets of ids.
public struct Identifier<Kind>: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
  public var rawValue: Int64
  @inlinable public init(rawValue: Int64) { self.rawValue = rawValue }
  @inlinable public init(_ rawValue: Int64) { self.rawValue = rawValue }

  /// Parses a decimal id as it is written (no sign, no leading zero); nil for anything
  /// else: `"012"` and `"+12"` are not another spelling of 12.
  @inlinable
  public init?(_ text: some StringProtocol) {
    guard let first = text.utf8.first, first >= UInt8(ascii: "1"), first <= UInt8(ascii: "9"),
      let value = Int64(text)
    else { return nil }
    self.rawValue = value
  }

  public var description: String { String(rawValue) }
  @inlinable public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
  @inlinable public static func == (lhs: Self, rhs: Self) -> Bool { lhs.rawValue == rhs.rawValue }
  @inlinable public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }
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
