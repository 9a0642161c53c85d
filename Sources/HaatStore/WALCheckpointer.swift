import Foundation
import GRDB

/// Copies the WAL's pages into the database file on its own connection and thread.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses its threshold, so one
/// commit in a few hundred waited for it (and its fsync of the database file): the tail of
/// the coordinator's reply latency. The writer's automatic checkpoint is off; this one runs
/// every 200 ms once the WAL holds more than 1 MiB, as a PASSIVE checkpoint, which never
/// blocks the writer or readers. A failed checkpoint (a full disk) is tried again next time.
final class WALCheckpointer: @unchecked Sendable {
  // @unchecked: `timer` is set once in init and only cancelled after; `connection` is a
  // GRDB DatabaseQueue (serialised by GRDB) used only from the timer's serial queue.
  private let timer: any DispatchSourceTimer
  private let connection: DatabaseQueue

  init(path: String, synchronous: String) throws {
    var configuration = Configuration()
    configuration.busyMode = .timeout(1)
    configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = \(synchronous)") }
    connection = try DatabaseQueue(path: path, configuration: configuration)
    timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "haat.store.checkpoint", qos: .utility))
    let wal = path + "-wal"
    let connection = self.connection
    timer.schedule(deadline: .now() + .milliseconds(200), repeating: .milliseconds(200))
    timer.setEventHandler {
      let size = (try? FileManager.default.attributesOfItem(atPath: wal))?[.size] as? UInt64 ?? 0
      guard size > 1 << 20 else { return }
      _ = try? connection.writeWithoutTransaction { db in try db.checkpoint(.passive) }
    }
    timer.resume()
  }

  deinit { timer.cancel() }
}
