import ArgumentParser
import Foundation
import Logging

/// Structured logs: one JSON object per line on stderr (`at`, `level`, `label`, `message`
/// and the metadata), never a secret (callers log references and redacted URLs only).
struct JSONLogHandler: LogHandler {
  let label: String
  var logLevel: Logger.Level
  var metadata: Logger.Metadata = [:]

  init(label: String, level: Logger.Level) {
    self.label = label
    logLevel = level
  }

  subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  func log(event: LogEvent) {
    var object: [String: String] = [:]
    for (key, value) in metadata { object[key] = "\(value)" }
    for (key, value) in event.metadata ?? [:] { object[key] = "\(value)" }
    object["at"] = Self.timestamp()
    object["level"] = event.level.rawValue
    object["label"] = label
    object["message"] = event.message.description
    guard
      var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    else { return }
    data.append(UInt8(ascii: "\n"))
    // A line that cannot be written (its disk is full) is lost, never a crash.
    try? FileHandle.standardError.write(contentsOf: data)
  }

  static func timestamp() -> String {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    var time = now.tv_sec
    var parts = tm()
    gmtime_r(&time, &parts)
    return String(
      format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
      parts.tm_hour, parts.tm_min, parts.tm_sec, now.tv_nsec / 1_000_000)
  }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
