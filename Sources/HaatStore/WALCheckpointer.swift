import Foundation
import GRDB

/// Copies the WAL's pages into the database file on its own connection and thread.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses its threshold, so one
/// commit in a few hundred waited for it (and its fsync of the database file): the tail of
/// the coordinator's reply latency. The writer's automatic checkpoint is off; this one runs
/// every 200 ms once the WAL holds more than 1 MiB, as a PASSIVE checkpoint, which never
/// blocks the writer or readers. A failed checkpoint (a full disk) is tried again next time.
///
/// SQLite starts the WAL over (writes it from its beginning again) only at a commit that
/// finds every frame copied. Under steady writes commits land while this checkpoint runs,
/// so it never copies them all, and the WAL grew by every commit for as long as the load
/// lasted (285 MB in a 200,000-task run). So once the WAL holds more than `restartFrames`,
/// the writer itself copies the few frames left (`topUp`, between two commits, where none
/// can land; this thread waits for it, so the two checkpoints never contend); the writer's
/// next commit then starts the WAL over.
final class WALCheckpointer: @unchecked Sendable {
  /// About 4 MiB of frames: past it, the writer finishes the checkpoint.
  static let restartFrames = 1024

  // @unchecked: `timer` is set once in init and only cancelled after; `connection` is a
  // GRDB DatabaseQueue (serialised by GRDB) used only from the timer's serial queue.
  private let timer: any DispatchSourceTimer
  private let connection: DatabaseQueue

  init(path: String, synchronous: String, topUp: @escaping @Sendable () throws -> Void) throws {
    var configuration = Configuration()
    configuration.busyMode = .timeout(1)
    configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = \(synchronous)") }
    connection = try DatabaseQueue(path: path, configuration: configuration)
    timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "haat.store.checkpoint", qos: .utility))
    let wal = path + "-wal"
    let connection = self.connection
    timer.schedule(deadline: .now() + .milliseconds(200), repeating: .milliseconds(200))
    timer.setEventHandler {
      // stat(2): FileManager's attributes would look the owner's name up five times a second.
      var info = stat()
      guard stat(wal, &info) == 0, info.st_size > 1 << 20 else { return }
      // The frame counts are as of the checkpoint's start: they cannot tell whether commits
      // landed meanwhile, so a WAL still past the bound is topped up whatever they say.
      guard let (frames, _) = try? connection.writeWithoutTransaction({ db in try db.checkpoint(.passive) })
      else { return }
      if frames > Self.restartFrames { try? topUp() }
    }
    timer.resume()
  }

  deinit { timer.cancel() }
}
