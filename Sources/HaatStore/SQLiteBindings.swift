import Foundation
import GRDB
import GRDBSQLite

/// Runs a cached statement with its values bound through SQLite's C API, for the statements
/// every task passes through. GRDB's `StatementArguments` boxes each value as an existential
/// and converts it: that was a third of a submit's time. Only for statements GRDB never runs
/// with arguments of its own (it would not know these bindings).
struct SQLiteBindings {
  private let statement: SQLiteStatement
  private var index: CInt = 0
  /// sqlite3_bind_* copies the bytes (SQLITE_TRANSIENT): no value must outlive the call.
  private static let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

  init(_ statement: Statement) {
    self.statement = statement.sqliteStatement
    sqlite3_reset(self.statement)
    sqlite3_clear_bindings(self.statement)
  }

  mutating func add(_ value: Int64) {
    index += 1
    sqlite3_bind_int64(statement, index, value)
  }

  mutating func add(_ value: Int) { add(Int64(value)) }

  mutating func add(_ value: String) {
    index += 1
    var value = value
    value.withUTF8 { bytes in
      _ = bytes.withMemoryRebound(to: CChar.self) {
        // No address would bind NULL: an empty string stays an empty text.
        guard let base = $0.baseAddress else { return sqlite3_bind_text(statement, index, "", 0, Self.transient) }
        return sqlite3_bind_text(statement, index, base, CInt($0.count), Self.transient)
      }
    }
  }

  mutating func add(_ value: String?) {
    if let value { add(value) } else { addNull() }
  }

  private mutating func addNull() {
    index += 1
    sqlite3_bind_null(statement, index)
  }

  /// A blob, bound as GRDB binds one (bytes without an address bind NULL).
  mutating func add(_ value: Data) {
    index += 1
    value.withUnsafeBytes { bytes in
      _ = sqlite3_bind_blob(statement, index, bytes.baseAddress, CInt(bytes.count), Self.transient)
    }
  }

  /// A blob, or NULL.
  mutating func add(_ value: Data?) {
    if let value { add(value) } else { addNull() }
  }

  /// Steps the statement to its end (a write: no rows).
  func run() throws {
    while try step() {}
  }

  /// Moves to the next row: false at the end (the statement is then reset).
  func step() throws -> Bool {
    let code = sqlite3_step(statement)
    if code == SQLITE_ROW { return true }
    guard code == SQLITE_DONE else {
      let message = String(cString: sqlite3_errmsg(sqlite3_db_handle(statement)))
      sqlite3_reset(statement)
      throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message)
    }
    sqlite3_reset(statement)
    return false
  }

  /// Leaves the statement (a read stopped before its end).
  func reset() { sqlite3_reset(statement) }

  // The current row's columns, from 0, read in place (valid until the next step).

  func int64(_ column: CInt) -> Int64 { sqlite3_column_int64(statement, column) }

  func isNull(_ column: CInt) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }

  func text(orNil column: CInt) -> String? { isNull(column) ? nil : text(column) }

  func blob(orNil column: CInt) -> Data? { isNull(column) ? nil : blob(column) }

  /// Text as UTF-8 (NULL reads as empty).
  func text(_ column: CInt) -> String {
    guard let bytes = sqlite3_column_text(statement, column) else { return "" }
    let count = Int(sqlite3_column_bytes(statement, column))
    return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
  }

  /// A blob's bytes (NULL and empty read as empty).
  func blob(_ column: CInt) -> Data {
    guard let bytes = sqlite3_column_blob(statement, column) else { return Data() }
    return Data(bytes: bytes, count: Int(sqlite3_column_bytes(statement, column)))
  }
}
