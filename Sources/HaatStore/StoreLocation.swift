import Foundation
import HaatCore

/// Where the coordinator keeps its queue: `--store sqlite:PATH | postgres://USER@HOST:PORT/DB`.
public enum StoreLocation: Sendable, Equatable {
  case sqlite(path: String)
  case postgres(PostgresLocation)

  /// Parses a `--store` value. A PostgreSQL URL never carries its password (it would show in
  /// `ps` and in logs): the password comes from `PGPASSWORD` or from the file named by
  /// `password_file=`.
  public init(parsing value: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
    if value.hasPrefix("sqlite:") {
      let path = String(value.dropFirst("sqlite:".count))
      guard !path.isEmpty else {
        throw HaatError(.badRequest, "--store sqlite: needs a path (sqlite:/var/lib/haat/haat.db)")
      }
      // A device (/dev/null), a directory or a FIFO is no database: SQLite would fail at its
      // first commit, and leave its journal beside the device.
      var status = stat()
      if stat(path, &status) == 0, status.st_mode & S_IFMT != S_IFREG {
        throw HaatError(.badRequest, "--store sqlite:\(path) is not a regular file (a database file, or none yet)")
      }
      self = .sqlite(path: path)
    } else if value.hasPrefix("postgres://") || value.hasPrefix("postgresql://") {
      self = .postgres(try PostgresLocation(parsing: value, environment: environment))
    } else {
      // Only what comes before the first colon is shown: the rest of a URL with a scheme
      // this does not know may hold a password (`POSTGRES://haat:secret@…`).
      let shown = value.firstIndex(of: ":").map { "\(value[..<$0].prefix(40)):…" } ?? String(value.prefix(40))
      throw HaatError(
        .badRequest,
        "--store must be sqlite:PATH or postgres://USER@HOST:PORT/DATABASE (lowercase), not \"\(shown)\"")
    }
  }

  public var isSQLite: Bool {
    if case .sqlite = self { return true }
    return false
  }

  /// For logs and `status`: never a password.
  public var redacted: String {
    switch self {
    case .sqlite(let path): return "sqlite:\(path)"
    case .postgres(let location): return location.redacted
    }
  }
}

/// A PostgreSQL store's address. Haat keeps its tables in `schema` (default `haat`), so one
/// database can hold several clusters, or a test per schema.
public struct PostgresLocation: Sendable, Equatable {
  public var host: String
  public var port: Int
  public var user: String
  public var password: String?
  public var database: String
  public var schema: String
  /// `sslmode=require`: the connection to PostgreSQL must use TLS.
  public var requireTLS: Bool

  public init(parsing value: String, environment: [String: String]) throws {
    guard let components = URLComponents(string: value), let host = components.host, !host.isEmpty else {
      throw HaatError(.badRequest, "--store: cannot read the PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE)")
    }
    guard components.password == nil else {
      throw HaatError(
        .badRequest,
        "--store: the URL carries a password; give it in PGPASSWORD or in a file named by ?password_file=PATH instead")
    }
    self.host = host
    // URLComponents reads any number of digits as the port, and the socket layer would take
    // it modulo 65,536 (112935 → 47399): a wrong server, not an error.
    // The port as written: URLComponents reads one past Int as none (the default, 5432),
    // and an empty one too.
    let authority =
      value.components(separatedBy: "://").dropFirst().first?.split(
        whereSeparator: { $0 == "/" || $0 == "?" }
      ).first.map { String($0.split(separator: "@").last ?? "") } ?? ""
    let afterHost = authority.hasPrefix("[") ? String(authority.drop { $0 != "]" }.dropFirst()) : authority
    if let colon = afterHost.firstIndex(of: ":") {
      let text = afterHost[afterHost.index(after: colon)...]
      guard let port = Int(text), (1...65_535).contains(port), text.allSatisfy(\.isASCII) else {
        throw HaatError(.badRequest, "--store: the port must be 1 to 65535, not \"\(text.prefix(30))\"")
      }
    }
    port = components.port ?? 5432
    user = components.user ?? environment["PGUSER"] ?? "haat"
    let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
    database = path.isEmpty ? user : path
    schema = "haat"
    requireTLS = false
    password = environment["PGPASSWORD"]
    var seen = Set<String>()
    for item in components.queryItems ?? [] {
      let value = item.value ?? ""
      // A second value would win without a word: `schema=a&schema=b` opened another store.
      guard seen.insert(item.name).inserted else {
        throw HaatError(.badRequest, "--store: the parameter \"\(item.name.prefix(40))\" is given twice")
      }
      switch item.name {
      case "schema":
        guard !value.isEmpty, value.utf8.count <= 63,
          value.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F })
        else {
          throw HaatError(.badRequest, "--store: schema must be 1 to 63 of a-z, 0-9 and _, not \"\(value.prefix(70))\"")
        }
        // PostgreSQL's own schemas: pg_… cannot be made, information_schema is the catalog's.
        guard !value.hasPrefix("pg_"), value != "information_schema" else {
          throw HaatError(
            .badRequest, "--store: schema \"\(value)\" is one of PostgreSQL's own (pg_…, information_schema)")
        }
        schema = value
      case "sslmode":
        switch value {
        case "disable": requireTLS = false
        case "require": requireTLS = true
        default:
          throw HaatError(.badRequest, "--store: sslmode must be disable or require, not \"\(value.prefix(20))\"")
        }
      case "password_file":
        do {
          password = try String(contentsOfFile: value, encoding: .utf8).trimmingCharacters(in: .newlines)
        } catch {
          throw HaatError(.badRequest, "--store: cannot read password_file \(value): \(error.localizedDescription)")
        }
      default:
        throw HaatError(
          .badRequest, "--store: unknown parameter \"\(item.name.prefix(40))\" (schema, sslmode, password_file)")
      }
    }
  }

  public var redacted: String {
    "postgres://\(user)@\(host):\(port)/\(database)?schema=\(schema)\(requireTLS ? "&sslmode=require" : "")"
  }
}
