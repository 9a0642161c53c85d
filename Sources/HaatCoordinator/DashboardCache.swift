import Foundation

/// The dashboard's JSON, made at most once a second per page, one page at a time. The
/// pages poll every second and a job's counts cost a read of all its task rows (140 ms for
/// 200,000 tasks): every viewer, or a flood of requests, made that read again, took the
/// store's reader connections from the coordinator, and failed `/readyz`. Now any number of
/// viewers costs one read a second per page shown, on one reader at a time.
actor DashboardCache {
  private struct Entry {
    var at: ContinuousClock.Instant
    /// nil: no such page (a 404).
    var data: Data?
  }

  private var entries: [String: Entry] = [:]
  private var making: [String: Task<Data?, any Error>] = [:]
  /// The page being made last: the next waits for it.
  private var last: Task<Void, Never>?
  let maxAge: Duration
  /// Pages kept: distinct job ids cannot grow the cache without bound.
  static let maxEntries = 256

  /// Finished jobs' report parts, by page, with the version of the job they were made
  /// from: a few, as each holds up to `Dashboard.rowsShown` rows of every table.
  private var finished: [String: (version: String, part: Dashboard.ReportPart)] = [:]
  static let maxFinished = 16

  init(maxAge: Duration = .seconds(1)) {
    self.maxAge = maxAge
  }

  /// The page at `key`, made by `make` unless one made within `maxAge` is kept, or is being
  /// made (then its result is shared).
  func page(_ key: String, make: @escaping @Sendable () async throws -> Data?) async throws -> Data? {
    if let entry = entries[key], ContinuousClock.now - entry.at < maxAge { return entry.data }
    if let running = making[key] { return try await running.value }
    let previous = last
    let task = Task { () async throws -> Data? in
      await previous?.value
      return try await make()
    }
    last = Task { _ = try? await task.value }
    making[key] = task
    defer { making[key] = nil }
    let data = try await task.value
    let now = ContinuousClock.now
    if entries.count >= Self.maxEntries {
      entries = entries.filter { now - $0.value.at < maxAge }
      if entries.count >= Self.maxEntries { entries = [:] }
    }
    entries[key] = Entry(at: now, data: data)
    return data
  }

  /// The report part kept for `key` if it was made from `version` of its job.
  func finished(_ key: String, version: String) -> Dashboard.ReportPart? {
    finished[key].flatMap { $0.version == version ? $0.part : nil }
  }

  func keep(_ key: String, version: String, _ part: Dashboard.ReportPart) {
    if finished[key] == nil, finished.count >= Self.maxFinished { finished.removeAll() }
    finished[key] = (version, part)
  }
}
