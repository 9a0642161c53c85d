import Foundation
import HaatCore
import Logging
import Testing

@testable import HaatStore

/// Found by a tester: a role that can neither create the store's schema nor use it waited
/// as a standby and failed only when it took over (no coordinator at all at that moment);
/// and a role given a schema made for it, without CREATE on the database, could not open
/// the store (CREATE SCHEMA IF NOT EXISTS asks for that right even when the schema exists).
@Suite(.serialized) struct PostgresPrivilegeTests {
  static let url = StoreBackend.postgresURL

  /// Runs SQL as the test server's superuser.
  static func psql(_ sql: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
    process.arguments = [url ?? "", "-v", "ON_ERROR_STOP=1", "-qtAc", sql]
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw HaatError(.internal, "psql failed: \(sql)") }
  }

  static func location(user: String, schema: String) throws -> PostgresLocation {
    var components = try #require(URLComponents(string: url ?? ""))
    components.user = user
    components.queryItems = [URLQueryItem(name: "schema", value: schema)]
    guard case .postgres(let location) = try StoreLocation(parsing: try #require(components.string)) else {
      throw HaatError(.internal, "not a PostgreSQL URL")
    }
    return location
  }

  @Test(.enabled(if: url != nil))
  func aRoleWithoutRightsIsRefusedAtOnceAndOneGivenItsSchemaOpensTheStore() async throws {
    let suffix = UUID().uuidString.prefix(8).lowercased().replacingOccurrences(of: "-", with: "")
    let role = "haat_limited_\(suffix)"
    let schema = "limited_\(suffix)"
    try Self.psql("CREATE ROLE \(role) LOGIN")
    defer {
      try? Self.psql("DROP SCHEMA IF EXISTS \(schema) CASCADE; DROP OWNED BY \(role); DROP ROLE IF EXISTS \(role)")
    }
    let location = try Self.location(user: role, schema: schema)
    // No CREATE on the database and no schema: refused before it stands by.
    await #expect(throws: HaatError.self) {
      let leadership = try await PostgresLeadership.acquire(location, logger: Logger(label: "test")) {}
      await leadership.release()
    }
    // USAGE on a schema made by another role, without CREATE on it: refused too (a
    // tester's role waited as a standby and failed at the takeover).
    try Self.psql("CREATE SCHEMA \(schema); GRANT USAGE ON SCHEMA \(schema) TO \(role)")
    await #expect(throws: HaatError.self) {
      let leadership = try await PostgresLeadership.acquire(location, logger: Logger(label: "test")) {}
      await leadership.release()
    }
    try Self.psql("DROP SCHEMA \(schema)")
    // A schema made for it, with no CREATE on the database: the store opens and migrates.
    try Self.psql("CREATE SCHEMA \(schema) AUTHORIZATION \(role)")
    let leadership = try await PostgresLeadership.acquire(location, logger: Logger(label: "test")) {}
    let store = try await PostgresJobStore(location)
    #expect(try await store.jobs(state: nil, before: nil, limit: 10, nowMs: 1_000).isEmpty)
    await store.close()
    await leadership.release()
  }
}

/// Found by a tester (on SQLite): an older Haat opened a store a newer one had migrated,
/// without a word. PostgreSQL alike: refused, saying why and what to do.
@Suite struct PostgresDowngradeTests {
  @Test(.enabled(if: StoreBackend.postgresURL != nil))
  func aSchemaANewerHaatMigratedIsRefused() async throws {
    let tests = try StoreHarness(.postgres)
    guard case .postgres(let location) = try StoreLocation(parsing: tests.place) else {
      throw HaatError(.internal, "not a PostgreSQL URL")
    }
    let store = try await PostgresJobStore(location)
    await store.close()
    try PostgresPrivilegeTests.psql(
      "INSERT INTO \"\(location.schema)\".migrations (name) VALUES ('v99-from-the-future')")
    // A standby checks before it waits (it took over, and only then failed).
    await #expect(throws: HaatError.self) {
      let leadership = try await PostgresLeadership.acquire(location, logger: Logger(label: "test")) {}
      await leadership.release()
    }
    do {
      let again = try await PostgresJobStore(location)
      await again.close()
      Issue.record("the store was opened")
    } catch {
      #expect("\(error)".contains("migrated by a newer Haat"), "\(error)")
    }
  }
}
