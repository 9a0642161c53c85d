import Foundation
import HaatCore
import Testing

@testable import HaatStore

/// The backends the store conformance suite runs against: SQLite always, PostgreSQL when
/// `HAAT_POSTGRES_URL` names a server (`scripts/run-tests` starts one with
/// `scripts/postgres` and sets it, so `make test` always runs both).
enum StoreBackend: String, Sendable, CaseIterable, CustomTestStringConvertible {
  case sqlite, postgres

  static let postgresURL = ProcessInfo.processInfo.environment["HAAT_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
  static let all: [StoreBackend] = postgresURL == nil ? [.sqlite] : [.sqlite, .postgres]

  var testDescription: String { rawValue }
}

/// One store under test: a backend and a place of its own (a SQLite file in a temporary
/// directory, or a PostgreSQL schema), opened again as often as a test asks (a restart).
struct StoreHarness {
  let backend: StoreBackend
  /// The SQLite file, or the PostgreSQL URL with the test's own schema.
  let place: String

  /// Every SQLite harness's directory sits under one root of this test process, removed
  /// when it exits (a store may outlive its harness value, so not before).
  static let root: String = {
    let root = NSTemporaryDirectory() + "haat-store-tests-\(getpid())"
    atexit { try? FileManager.default.removeItem(atPath: StoreHarness.root) }
    return root
  }()

  init(_ backend: StoreBackend) throws {
    self.backend = backend
    let unique = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    switch backend {
    case .sqlite:
      let directory = Self.root + "/\(unique)"
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
      place = directory + "/haat.db"
    case .postgres:
      guard let url = StoreBackend.postgresURL else {
        throw HaatError(.unavailable, "HAAT_POSTGRES_URL is not set (scripts/run-tests sets it)")
      }
      place = url + (url.contains("?") ? "&" : "?") + "schema=t_\(unique.prefix(20))"
    }
  }

  func open(_ durability: Durability = .full) async throws -> any JobStore {
    switch backend {
    case .sqlite:
      return try SQLiteJobStore(path: place, durability: durability)
    case .postgres:
      guard case .postgres(let location) = try StoreLocation(parsing: place) else {
        throw HaatError(.internal, "not a PostgreSQL URL")
      }
      return try await PostgresJobStore(location)
    }
  }

  static func job(
    tasks: Int, priority: Int32 = 0, notBeforeMs: Int64 = 0, maxAttempts: UInt32 = 3, pool: Pool = .collect
  ) -> NewJob {
    NewJob(
      name: "test", priority: priority, notBeforeMs: notBeforeMs, maxAttempts: maxAttempts,
      retry: RetryPolicy(baseMs: 1000, capMs: 4000), reports: ["engagement"], spec: Data("{}".utf8),
      submittedBy: "admin:test",
      tasks: (0..<tasks).map { NewTask(pool: pool, source: "s\($0)", spec: Data("{\"index\":\($0)}".utf8)) })
  }

  func job(tasks: Int, priority: Int32 = 0, notBeforeMs: Int64 = 0, maxAttempts: UInt32 = 3, pool: Pool = .collect)
    -> NewJob
  {
    Self.job(tasks: tasks, priority: priority, notBeforeMs: notBeforeMs, maxAttempts: maxAttempts, pool: pool)
  }

  func submit(_ store: any JobStore, _ job: NewJob, now: Int64 = 1_000) async throws -> JobID {
    guard case .submitted(let id, _, _) = try await store.apply([.submit(job)], nowMs: now)[0] else {
      throw HaatError(.internal, "not submitted")
    }
    return id
  }

  func claim(_ store: any JobStore, _ limit: Int, owner: String = "w1", pool: Pool = .collect, now: Int64 = 1_000)
    async throws -> [ClaimedTask]
  {
    guard
      case .claimed(let tasks) = try await store.apply([.claim(owner: owner, pool: pool, limit: limit)], nowMs: now)[0]
    else {
      return []
    }
    return tasks
  }

  func change(_ result: StoreOpResult) -> TaskChange? {
    if case .changed(let change) = result { return change }
    return nil
  }
}
