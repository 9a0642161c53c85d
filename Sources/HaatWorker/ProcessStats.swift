import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// The process's own resource use, for health reports and benchmarks.
public enum ProcessStats {
  /// Resident set size in bytes (from /proc/self/statm).
  public static func residentBytes() -> UInt64 {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = UInt64(fields[1]) else { return 0 }
    return pages * UInt64(sysconf(Int32(_SC_PAGESIZE)))
  }

  /// The peak resident set size in bytes (VmHWM), for a pid or this process.
  public static func peakResidentBytes(pid: Int32? = nil) -> UInt64 {
    let path = pid.map { "/proc/\($0)/status" } ?? "/proc/self/status"
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
      let digits = line.split(separator: " ").dropFirst().first.flatMap { UInt64($0) } ?? 0
      return digits * 1024
    }
    return 0
  }

  /// User plus system CPU time, in seconds.
  public static func cpuSeconds() -> Double {
    var usage = rusage()
    guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return 0 }
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1_000_000 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
  }
}
