import Foundation
import HaatCore
import PostgresNIO

/// PostgreSQL's errors said plainly, and small helpers for its rows.
extension PostgresJobStore {
  static func commitError(_ error: any Error) -> HaatError {
    if let error = error as? HaatError { return error }
    if let closure = (error as? PostgresTransactionError)?.closureError { return commitError(closure) }
    if Self.sqlState(error) == PostgresError.Code.diskFull.raw {
      return HaatError(.unavailable, "the store's disk is full; refusing writes until there is room")
    }
    return HaatError(.unavailable, "the store could not commit: \(describe(error))")
  }

  static func sqlState(_ error: any Error) -> String? {
    if let error = error as? PSQLError { return error.serverInfo?[.sqlState] }
    if let transaction = error as? PostgresTransactionError {
      for inner in [transaction.beginError, transaction.closureError, transaction.commitError] {
        if let inner, let state = sqlState(inner) { return state }
      }
    }
    return nil
  }

  /// A PostgreSQL error in one line: the server's message and SQLSTATE, or the client's
  /// reason (PSQLError's own description hides both).
  /// Why the server refused a connection for a reason waiting cannot fix (no such role or
  /// database, a wrong password, no TLS where the URL requires it); nil for anything else
  /// (not answering, starting up, shutting down), which is waited out.
  static func refusal(_ error: any Error) -> String? {
    guard let error = error as? PSQLError else { return nil }
    if error.code == .sslUnsupported { return "the server does not offer TLS, which sslmode=require asks for" }
    // No retry can supply a password that was not given.
    if error.code == .authMechanismRequiresPassword {
      return "the server asks for a password and none was given: set PGPASSWORD, or password_file= in the URL"
    }
    guard let state = error.serverInfo?[.sqlState], state.hasPrefix("28") || state == "3D000" else { return nil }
    return describe(error)
  }

  static func describe(_ error: any Error) -> String {
    if let error = error as? HaatError { return error.message }
    if let error = error as? PSQLError {
      if let message = error.serverInfo?[.message] {
        return "\(message) (SQLSTATE \(error.serverInfo?[.sqlState] ?? "?"))"
      }
      return "\(error.code)\(error.underlying.map { ": \($0)" } ?? "")"
    }
    if let transaction = error as? PostgresTransactionError {
      for inner in [transaction.closureError, transaction.beginError, transaction.commitError] {
        if let inner { return describe(inner) }
      }
    }
    return String(describing: error)
  }
}

extension PostgresRowSequence {
  /// The first row's columns, or nil when there is none (the rest are not read).
  func first<each Column: PostgresDecodable>(decoding: (repeat each Column).Type) async throws -> (repeat each Column)?
  {
    for try await row in self { return try row.decode((repeat each Column).self) }
    return nil
  }

  func all<Column: PostgresDecodable & Sendable>(decoding: Column.Type) async throws -> [Column] {
    var values: [Column] = []
    for try await value in self.decode(Column.self) { values.append(value) }
    return values
  }
}

extension PostgresJobStore {
  /// A revived task reopens its job: it runs again and gets a new report when it ends.
  func reopen(_ changes: [TaskChange], _ event: TaskEvent, on db: PostgresConnection) async throws {
    guard event == .retryDead, !changes.isEmpty else { return }
    try await db.query(
      """
      UPDATE jobs SET state = 'running', finished_at = 0, report = NULL, error = ''
      WHERE id = ANY(\(Array(Set(changes.map(\.job.rawValue))))) AND NOT cancelled
      """, logger: logger)
  }
}

extension Array {
  /// Consecutive slices of at most `size` elements.
  func chunked(_ size: Int) -> [ArraySlice<Element>] {
    stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
  }
}

extension PostgresJobStore {
  /// Fails the transaction on `db` when another coordinator has taken over the store since
  /// this one did: a coordinator frozen while its lock's connection ended (a paused VM)
  /// committed leases after the standby had taken over and recovered, and the job waited
  /// for them for ever. The row stays locked (shared) to the transaction's end, so a
  /// takeover waits for it.
  func checkFence(_ db: PostgresConnection) async throws {
    guard let epoch else { return }
    let current = try await db.query("SELECT epoch FROM leader WHERE id = 1 FOR SHARE", logger: logger)
      .first(decoding: Int64.self)
    guard current == epoch else {
      onFenced()
      throw HaatError(
        .unavailable, "another coordinator has taken over the store (takeover \(current ?? 0), this one's \(epoch))")
    }
  }

  func exists(_ query: PostgresQuery, on db: PostgresConnection) async throws -> Bool {
    for try await _ in try await db.query(query, logger: logger) { return true }
    return false
  }

  static func binds(_ value: Int64) throws -> PostgresBindings {
    var binds = PostgresBindings()
    binds.append(value)
    return binds
  }
}
