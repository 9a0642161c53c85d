import Foundation
import HaatCore

#if canImport(Glibc)
  import Glibc
#endif

/// An exclusive lock on `<store>.lock`, beside a SQLite store, held while a coordinator
/// runs on it: a second coordinator on the same file would serve the same queue (dispatch
/// tasks twice, rewrite the admin credential) with nothing to say so. `flock`, so the
/// kernel frees it when the process ends, kill -9 included. (A PostgreSQL store has its
/// own lock, `PostgresLeadership`.)
final class StoreFileLock: Sendable {
  private let descriptor: Int32

  init(store path: String) throws(HaatError) {
    let lockPath = path + ".lock"
    let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    guard descriptor >= 0 else {
      throw HaatError(
        .unavailable, "cannot open the store's lock file \(lockPath): \(String(cString: strerror(errno)))")
    }
    guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
      let reason = errno
      close(descriptor)
      if reason == EWOULDBLOCK {
        throw HaatError(
          .unavailable,
          "another coordinator is running on the store \(path) (it holds \(lockPath)); stop it first, or give this one a --data-dir of its own"
        )
      }
      throw HaatError(.unavailable, "cannot lock \(lockPath): \(String(cString: strerror(reason)))")
    }
    self.descriptor = descriptor
  }

  /// Frees the lock (closing the descriptor releases it).
  func release() { close(descriptor) }
}
