import Foundation
import HaatCore
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// Which coordinator is active on a PostgreSQL store: the one holding a session-level
/// advisory lock, keyed by the store's schema, on a connection of its own. The others wait
/// as standbys and take over when the lock is freed — at once when the active process dies
/// (its connection closes), within about 11 s when its machine does (TCP keepalives on
/// the lock's connection).
public final class PostgresLeadership: Sendable {
  private let connection: PostgresConnection
  private let pings: Task<Void, Never>

  /// A frozen active (a paused VM, SIGSTOP) keeps its connection open, its kernel answering
  /// keepalives, and so the lock, for as long as it is frozen: the lock's session is ended
  /// by PostgreSQL once it is idle this long (`idle_session_timeout`, PostgreSQL 14 and
  /// later), and the active runs a query on it every `pingPeriod`, so only a frozen one idles.
  static let idleSessionTimeout = Duration.seconds(10)
  static let pingPeriod = Duration.seconds(2)

  private init(connection: PostgresConnection, logger: Logger) {
    self.connection = connection
    pings = Task {
      while !Task.isCancelled {
        try? await Task.sleep(for: Self.pingPeriod)
        guard !Task.isCancelled else { return }
        do {
          _ = try await Self.guarded(connection) {
            try await connection.query("SELECT 1", logger: logger).first(decoding: Int32.self)
          }
        } catch {
          // The lock's session is gone (ended while this process was frozen, or the store
          // restarted): `lost` completes, and the coordinator stops.
          logger.warning(
            "the active coordinator's lock did not answer; letting it go",
            metadata: ["error": "\(PostgresJobStore.describe(error))"])
          let closing: EventLoopFuture<Void> = connection.close()
          _ = closing
          return
        }
      }
    }
  }

  /// The lock's key: one per schema, so clusters sharing a database do not wait on each other.
  static func key(schema: String) -> Int64 { lockKey("haat-active:\(schema)") }

  /// An advisory lock's key for a name (FNV-1a, 64 bits).
  static func lockKey(_ name: String) -> Int64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in name.utf8 {
      hash = (hash ^ UInt64(byte)) &* 0x0100_0000_01b3
    }
    return Int64(bitPattern: hash)
  }

  /// Waits until this coordinator holds the lock. `standby` is called once, the first time
  /// another coordinator is found holding it. Ends early only by cancellation.
  public static func acquire(
    _ location: PostgresLocation, logger: Logger, standby: @Sendable () -> Void
  ) async throws -> PostgresLeadership {
    var configuration = PostgresConnection.Configuration(
      host: location.host, port: location.port, username: location.user, password: location.password,
      database: location.database,
      tls: location.requireTLS ? .require(try .init(configuration: .makeClientConfiguration())) : .disable)
    configuration.options.connectTimeout = .seconds(5)
    // A dead machine's lock is freed when PostgreSQL notices: keepalives make that seconds.
    configuration.options.additionalStartupParameters = [
      ("tcp_keepalives_idle", "5"), ("tcp_keepalives_interval", "2"), ("tcp_keepalives_count", "3"),
      ("application_name", "haat-coordinator"),
    ]
    let key = key(schema: location.schema)
    var saidStandby = false
    var checked = false
    var connectionID = 0
    while true {
      try Task.checkCancellation()
      connectionID += 1
      let connection: PostgresConnection
      do {
        connection = try await PostgresConnection.connect(
          on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration, id: connectionID,
          logger: logger)
      } catch {
        if let refusal = PostgresJobStore.refusal(error) {
          throw HaatError(.unavailable, "the store refused the connection: \(refusal)")
        }
        logger.warning(
          "cannot reach the store for the active coordinator's lock; retrying in 1 s",
          metadata: ["store": "\(location.redacted)", "error": "\(PostgresJobStore.describe(error))"])
        try await Task.sleep(for: .seconds(1))
        continue
      }
      do {
        if !checked {
          try await checkPrivileges(connection, location, logger: logger)
          checked = true
        }
        try await limitIdleSession(connection, logger: logger)
        while true {
          let held = try await guarded(connection) {
            try await connection.query("SELECT pg_try_advisory_lock(\(key))", logger: logger).first(decoding: Bool.self)
          }
          if held == true { return PostgresLeadership(connection: connection, logger: logger) }
          if !saidStandby {
            saidStandby = true
            standby()
          }
          try await Task.sleep(for: .milliseconds(500))
        }
      } catch let error as CancellationError {
        try? await connection.close()
        throw error
      } catch let refusal as Refusal {
        // No retry can give the role its rights or unmigrate the store; a connection that
        // closed during the check is retried as any other.
        try? await connection.close()
        throw refusal.error
      } catch {
        try? await connection.close()
        logger.warning(
          "lost the store while waiting for the active coordinator's lock; retrying in 1 s",
          metadata: ["error": "\(PostgresJobStore.describe(error))"])
        try await Task.sleep(for: .seconds(1))
      }
    }
  }

  /// What `checkPrivileges` finds that no retry can mend.
  struct Refusal: Error {
    let error: HaatError
    init(_ error: HaatError) { self.error = error }
  }

  /// Refuses, at once, a role that could never open the store: one that can neither create
  /// the schema nor use it would wait as a standby and fail only when it took over.
  static func checkPrivileges(_ connection: PostgresConnection, _ location: PostgresLocation, logger: Logger)
    async throws
  {
    let schema = location.schema
    // A schema that exists is used as it is: USAGE and CREATE on it, whoever may create
    // schemas (has_schema_privilege with two privileges asks for either, not both); one
    // that does not is made, which needs CREATE on the database.
    let row = try await guarded(connection) {
      try await connection.query(
        """
        SELECT CASE WHEN n.oid IS NULL THEN has_database_privilege(current_database(), 'CREATE')
          ELSE has_schema_privilege(n.oid, 'USAGE') AND has_schema_privilege(n.oid, 'CREATE') END,
          n.oid IS NOT NULL AND to_regclass(quote_ident(\(schema)) || '.migrations') IS NOT NULL
        FROM (SELECT 1) AS one LEFT JOIN pg_namespace n ON n.nspname = \(schema)
        """, logger: logger
      ).first(decoding: (Bool, Bool).self)
    }
    guard let (usable, migrated) = row, usable else {
      throw Refusal(
        HaatError(
          .unavailable,
          "the store's role \"\(location.user)\" can neither create the schema \"\(schema)\" in database \"\(location.database)\" nor use it: grant it CREATE on the database (for a schema not yet made), or USAGE and CREATE on the schema (docs/configuration.md)"
        ))
    }
    guard migrated else { return }
    // A standby checks what the active one would refuse on taking over: a store a newer
    // Haat migrated, or tables it cannot read.
    let names: [String]
    do {
      names = try await guarded(connection) {
        var names: [String] = []
        let rows = try await connection.query(
          PostgresQuery(unsafeSQL: "SELECT name FROM \"\(schema)\".migrations"), logger: logger)
        for try await name in rows.decode(String.self) { names.append(name) }
        return names
      }
    } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42501" {
      throw Refusal(
        HaatError(
          .unavailable,
          "the store's role \"\(location.user)\" cannot read the schema \"\(schema)\"'s tables: \(PostgresJobStore.describe(error)); grant it their privileges (docs/configuration.md)"
        ))
    }
    let known = Set(PostgresSchema.migrations.map(\.name))
    if let unknown = names.filter({ !known.contains($0) }).sorted().first {
      throw Refusal(PostgresSchema.newer(unknown))
    }
  }

  /// Asks PostgreSQL to end the lock's session once it idles `idleSessionTimeout` (see
  /// `pings`). A server older than 14 does not know the setting: a frozen active then
  /// keeps the lock until it thaws, as before, and that is said.
  static func limitIdleSession(_ connection: PostgresConnection, logger: Logger) async throws {
    let milliseconds = idleSessionTimeout.components.seconds * 1000
    do {
      _ = try await guarded(connection) {
        try await connection.query(
          PostgresQuery(unsafeSQL: "SET idle_session_timeout = \(milliseconds)"), logger: logger
        ).first(decoding: String.self)
      }
    } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42704" {
      logger.notice(
        "the store's PostgreSQL is older than 14 (no idle_session_timeout): a frozen active coordinator keeps the lock until it thaws"
      )
    }
  }

  /// `body`'s result, or an error as soon as the connection closes, 10 s pass, or the task is
  /// cancelled. postgres-nio drops a query written to a connection that has just closed (the
  /// store restarted) without a word, and its caller would wait for ever: a standby that
  /// never took over, deaf to SIGTERM.
  static func guarded<T: Sendable>(
    _ connection: PostgresConnection, _ body: @escaping @Sendable () async throws -> T
  ) async throws -> T {
    guard !connection.isClosed else { throw HaatError(.unavailable, "the store's connection closed") }
    let promise = connection.eventLoop.makePromise(of: T.self)
    let work = Task {
      do { promise.succeed(try await body()) } catch { promise.fail(error) }
    }
    let deadline = connection.eventLoop.scheduleTask(in: .seconds(10)) {
      promise.fail(HaatError(.unavailable, "the store did not answer within 10 s"))
    }
    connection.closeFuture.whenComplete { _ in promise.fail(HaatError(.unavailable, "the store's connection closed")) }
    defer {
      deadline.cancel()
      work.cancel()
    }
    // A promise completes once: whichever comes first decides.
    return try await withTaskCancellationHandler {
      try await promise.futureResult.get()
    } onCancel: {
      promise.fail(CancellationError())
    }
  }

  /// Completes when the lock is lost: its connection closed (the store restarted, or the
  /// network between them failed).
  public var lost: EventLoopFuture<Void> { connection.closeFuture }

  public func release() async {
    pings.cancel()
    try? await connection.close()
  }

  /// Lets the lock go now, from any thread: the store found another coordinator took over
  /// (its fence), so `lost` completes and this one stops.
  public func abandon() {
    pings.cancel()
    let closing: EventLoopFuture<Void> = connection.close()
    _ = closing
  }
}
