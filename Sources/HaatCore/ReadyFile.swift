import Foundation

/// Files Haat writes for others to read (a ready file, a credential): only ever a regular
/// file. Writing one replaces it by a rename, so a device, a FIFO or a directory at the
/// path would be replaced too (a root `--out /dev/null` once left a regular file there).
public enum RegularFile {
  /// Why `path` is no place for a file Haat writes; nil when nothing or a regular file (or
  /// a symbolic link, which the rename replaces, not its target) is there.
  public static func refusal(_ path: String) -> String? {
    if path.isEmpty { return "an empty path names no file" }
    var status = stat()
    guard lstat(path, &status) == 0 else { return nil }
    switch status.st_mode & S_IFMT {
    case S_IFREG, S_IFLNK: return nil
    case S_IFDIR: return "\(path) is a directory"
    default: return "\(path) is not a regular file (a device, FIFO or socket)"
    }
  }

  /// Writes `text` to `path` (a new file renamed over the old one), after `refusal`.
  public static func write(_ text: String, to path: String) throws {
    if let refusal = refusal(path) { throw HaatError(.badRequest, "cannot write \(path): \(refusal)") }
    do {
      try text.write(toFile: path, atomically: true, encoding: .utf8)
    } catch {
      throw HaatError(.unavailable, "cannot write \(path): \(HaatError.systemReason(error))")
    }
  }
}
