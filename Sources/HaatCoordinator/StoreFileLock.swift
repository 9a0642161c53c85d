import Foundation
import HaatCore

#if canImport(Glibc)
  import Glibc
#endif

/// An exclusive `flock` on the SQLite store's own file, held while a coordinator runs on
/// it: a second coordinator on the same file would serve the same queue (dispatch tasks
/// twice, rewrite the admin credential, lose jobs) with nothing to say so. On the file
/// itself, not on a name beside it, so a symlink to it is the same file (a store with a
/// hard link is refused: its WAL would not follow).
/// The kernel frees it when the process ends, kill -9 included. SQLite's own locks are
/// `fcntl` locks, which a `flock` does not touch (on a local file system). The descriptor
/// is closed only after the store is (closing a descriptor of a file drops the process's
/// `fcntl` locks on it). (A PostgreSQL store has its own lock, `PostgresLeadership`.)
final class StoreFileLock: Sendable {
  private let descriptor: Int32

  init(store path: String) throws(HaatError) {
    let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    guard descriptor >= 0 else {
      throw HaatError(.unavailable, "cannot open the store \(path): \(String(cString: strerror(errno)))")
    }
    guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
      let reason = errno
      close(descriptor)
      if reason == EWOULDBLOCK {
        throw HaatError(
          .unavailable,
          "another coordinator is running on the store \(path) (it holds its lock); stop it first, or give this one a store of its own (--store, or a --data-dir of its own when --store is not given)"
        )
      }
      throw HaatError(.unavailable, "cannot lock the store \(path): \(String(cString: strerror(reason)))")
    }
    // The lock follows a hard link, but SQLite's write-ahead log is found by the name the
    // store was opened by: a coordinator started under another name after a crash read the
    // store without its last commits, and gave their job ids again (found by a tester).
    var info = stat()
    if fstat(descriptor, &info) == 0, info.st_nlink > 1 {
      close(descriptor)
      throw HaatError(
        .unavailable,
        "the store \(path) has \(info.st_nlink) hard links; SQLite finds its write-ahead log by the name the store is opened by, so each name would hold different data: remove the other links (a symlink is fine)"
      )
    }
    self.descriptor = descriptor
  }

  /// Frees the lock (closing the descriptor releases it).
  func release() { close(descriptor) }
}
