import Foundation
import HaatCore
import Testing

@testable import HaatStore

/// `--store`: what it accepts, and that a password never rides in the URL.
@Suite struct StoreLocationTests {
  @Test func sqliteAndPostgresURLsAreRead() throws {
    #expect(
      try StoreLocation(parsing: "sqlite:/var/lib/haat/haat.db", environment: [:])
        == .sqlite(path: "/var/lib/haat/haat.db"))
    guard
      case .postgres(let location) = try StoreLocation(
        parsing: "postgres://haat@db.internal:6432/jobs?schema=cluster_a&sslmode=require", environment: [:])
    else {
      Issue.record("not PostgreSQL")
      return
    }
    #expect(location.host == "db.internal" && location.port == 6432 && location.user == "haat")
    #expect(location.database == "jobs" && location.schema == "cluster_a" && location.requireTLS)
    #expect(location.password == nil)
    #expect(location.redacted == "postgres://haat@db.internal:6432/jobs?schema=cluster_a&sslmode=require")
  }

  @Test func thePasswordComesFromTheEnvironmentOrAFileNeverTheURL() throws {
    #expect(throws: HaatError.self) {
      try StoreLocation(parsing: "postgres://haat:hunter2@127.0.0.1/haat", environment: [:])
    }
    let fromEnvironment = try StoreLocation(
      parsing: "postgresql://haat@127.0.0.1/haat", environment: ["PGPASSWORD": "s3cret"])
    guard case .postgres(let location) = fromEnvironment else { throw HaatError(.internal, "not PostgreSQL") }
    #expect(location.password == "s3cret")
    #expect(!location.redacted.contains("s3cret") && !"\(fromEnvironment.redacted)".contains("s3cret"))
    let file = NSTemporaryDirectory() + "haat-pgpass-\(UUID().uuidString)"
    try "from-a-file\n".write(toFile: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: file) }
    guard
      case .postgres(let fromFile) = try StoreLocation(
        parsing: "postgres://haat@127.0.0.1/haat?password_file=\(file)", environment: [:])
    else { throw HaatError(.internal, "not PostgreSQL") }
    #expect(fromFile.password == "from-a-file")
  }

  @Test(arguments: [
    "mysql://haat@127.0.0.1/haat", "sqlite:", "postgres:///haat", "postgres://haat@127.0.0.1/haat?schema=Bad-Name",
    "postgres://haat@127.0.0.1/haat?schema=x;drop", "postgres://haat@127.0.0.1/haat?sslmode=verify-full",
    "postgres://haat@127.0.0.1/haat?search_path=x", "postgres://haat@127.0.0.1/haat?password_file=/no/such/file",
  ])
  func aBadStoreIsRefusedWithItsReason(value: String) {
    #expect(throws: HaatError.self) { try StoreLocation(parsing: value, environment: [:]) }
  }
}
