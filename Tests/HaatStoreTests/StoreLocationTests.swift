import Foundation
import HaatCore
import Logging
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
    // A scheme it does not know (a typo, another tool's URL): refused without echoing the
    // password (found by a tester).
    for url in [
      "POSTGRES://haat:hunter2@127.0.0.1/haat", "postgress://haat:hunter2@h/haat", "postgres:/haat:hunter2@h",
      " postgres://haat:hunter2@h/haat", "postgresql+psycopg://haat:hunter2@h/haat",
    ] {
      do {
        _ = try StoreLocation(parsing: url, environment: [:])
        Issue.record("\(url) was taken")
      } catch {
        #expect(!"\(error)".contains("hunter2"), "\(error)")
      }
    }
  }

  @Test(arguments: [
    "mysql://haat@127.0.0.1/haat", "sqlite:", "postgres:///haat", "postgres://haat@127.0.0.1/haat?schema=Bad-Name",
    "postgres://haat@127.0.0.1/haat?schema=x;drop", "postgres://haat@127.0.0.1/haat?sslmode=verify-full",
    "postgres://haat@127.0.0.1/haat?search_path=x", "postgres://haat@127.0.0.1/haat?password_file=/no/such/file",
    // Twice: the second would win without a word and open another, empty store.
    "postgres://haat@127.0.0.1/haat?schema=haat&schema=other",
    "postgres://haat@127.0.0.1/haat?sslmode=disable&sslmode=require",
    // PostgreSQL's own schemas.
    "postgres://haat@127.0.0.1/haat?schema=pg_x", "postgres://haat@127.0.0.1/haat?schema=information_schema",
    // Not a file a database can be.
    "sqlite:/dev/null", "sqlite:/tmp",
  ])
  func aBadStoreIsRefusedWithItsReason(value: String) {
    #expect(throws: HaatError.self) { try StoreLocation(parsing: value, environment: [:]) }
  }
}

/// A schema named like a number or an SQL keyword is a name like any other: it was written
/// into the SQL unquoted, and the coordinator failed with PostgreSQL's syntax error.
@Suite(.enabled(if: StoreBackend.postgresURL != nil, "needs HAAT_POSTGRES_URL (scripts/run-tests)"))
struct PostgresSchemaNameTests {
  @Test func aSchemaLikeANumberOrAKeywordHoldsAStore() async throws {
    let url = try #require(StoreBackend.postgresURL)
    let unique = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
    for schema in ["1\(unique)", "select"] {
      guard
        case .postgres(let location) = try StoreLocation(
          parsing: url + (url.contains("?") ? "&" : "?") + "schema=\(schema)")
      else { throw HaatError(.internal, "not PostgreSQL") }
      let store = try await PostgresJobStore(location)
      let submitted = try await store.apply([.submit(StoreHarness.job(tasks: 2))], nowMs: 1_000)
      guard case .submitted = submitted.first else {
        Issue.record("\(schema): \(submitted)")
        await store.close()
        continue
      }
      await store.close()
    }
  }

  /// A server that refuses for a reason waiting cannot fix is an exit with its reason, not
  /// a warning a second for ever.
  @Test func aRefusalWaitingCannotFixEndsTheWait() async throws {
    let url = try #require(StoreBackend.postgresURL)
    var components = try #require(URLComponents(string: url))
    components.user = "nobody_\(UUID().uuidString.lowercased().prefix(8).filter(\.isLetter))"
    guard case .postgres(let location) = try StoreLocation(parsing: try #require(components.string)) else {
      throw HaatError(.internal, "not PostgreSQL")
    }
    do {
      let leadership = try await PostgresLeadership.acquire(location, logger: Logger(label: "test")) {}
      await leadership.release()
      Issue.record("an unknown role got the lock")
    } catch let error as HaatError {
      #expect(error.message.contains("the store refused the connection") && error.message.contains("28"), "\(error)")
    }
  }
}
