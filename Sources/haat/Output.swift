import ArgumentParser
import CStdio
import Foundation
import HaatAnalytics
import HaatCore
import HaatProtocol
import SwiftProtobuf
import Synchronization

/// Everything the CLI prints goes through here: text from remote parties (export bodies,
/// error pages, job, source and worker names, log lines) reaches the terminal with its
/// control characters and bidi overrides shown as escapes, never obeyed. This shadows the
/// standard library's `print` for the whole module.
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
  let text = items.map { "\($0)" }.joined(separator: separator)
  writeOut(DisplayText.escape(text, keepNewlines: true) + terminator)
}

/// Prints a report's CSV: as it is into a file or a pipe (it is data: an account name's
/// direction marks stay, formats.md), escaped as everything else only on a terminal.
func printCSV(_ csv: String) {
  if isatty(STDOUT_FILENO) == 1 {
    print(csv, terminator: "")
  } else {
    writeOut(csv)
  }
}

/// The reason (errno) of the first flush of the output that failed, 0 for none: kept for
/// the exit status, so that a flush made only to order stdout before stderr does not hide a
/// full disk under `> file` from it.
private let outputFailure = Atomic<Int32>(0)

/// Writes to stdout: every write the CLI makes there comes through here, and the first that
/// fails is kept for `flushOrEndWhenUnread` (a write of a full buffer that failed left the
/// flush at the end nothing to fail on: a report over 4 KiB to a full disk exited 0).
func writeOut(_ text: String) {
  var text = text
  let failure = text.withUTF8 { cstdio_write_stdout($0.baseAddress, $0.count) }
  if failure != 0 { _ = outputFailure.compareExchange(expected: 0, desired: failure, ordering: .relaxed) }
}

/// Flushes what was printed; a failure's reason is kept for `flushOrEndWhenUnread`.
func flushOutput() {
  guard fflush(nil) != 0 else { return }
  _ = outputFailure.compareExchange(expected: 0, desired: errno, ordering: .relaxed)
}

/// Flushes what was printed, and ends the process if any of it could not be written. When
/// the output's reader has gone (a pipe to `head` that ended, EPIPE), exits 141 as a process
/// ended by SIGPIPE would, as `tail -f | head` does: this process ignores SIGPIPE (its
/// sockets need that), so a follow loop (`logs -f`, `top`) would print into the void for
/// ever. Another write error (a full disk) exits 74, saying why (docs/cli.md, exit codes):
/// every command's output is checked so when it ends, not only the follow loops'.
func flushOrEndWhenUnread() {
  flushOutput()
  let reason = outputFailure.load(ordering: .relaxed)
  guard reason != 0 else { return }
  if reason == EPIPE { exit(141) }
  FileHandle.standardError.write(Data("haat: cannot write the output: \(String(cString: strerror(reason)))\n".utf8))
  exit(74)
}

/// Prints a message as one JSON document (protobuf's JSON mapping, proto field names).
func printJSON(_ message: some SwiftProtobuf.Message) {
  var options = JSONEncodingOptions()
  options.preserveProtoFieldNames = true
  writeOut(jsonSafe((try? message.jsonString(options: options)) ?? "{}") + "\n")
}

/// JSON with every terminal-unsafe character written as a `\uXXXX` escape: still the same
/// JSON to a parser, harmless on a terminal.
func jsonSafe(_ json: String) -> String {
  guard json.unicodeScalars.contains(where: { DisplayText.isUnsafe($0) && $0 != "\n" }) else { return json }
  var out = ""
  for scalar in json.unicodeScalars {
    guard DisplayText.isUnsafe(scalar), scalar != "\n" else {
      out.unicodeScalars.append(scalar)
      continue
    }
    for unit in String(scalar).utf16 {
      let hex = String(unit, radix: 16)
      out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }
  }
  return out
}

/// Prints a list of messages as a JSON array.
func printJSON(_ messages: [some SwiftProtobuf.Message]) {
  var options = JSONEncodingOptions()
  options.preserveProtoFieldNames = true
  let items = messages.map { (try? $0.jsonString(options: options)) ?? "{}" }
  writeOut(jsonSafe("[" + items.joined(separator: ",\n ") + "]") + "\n")
}

func time(_ ms: Int64) -> String {
  guard ms > 0 else { return "–" }
  let formatter = DateFormatter()
  formatter.locale = Locale(identifier: "en_US_POSIX")
  formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
  return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
}

func ago(_ ms: Int64) -> String {
  guard ms > 0 else { return "never" }
  let seconds = max(0, (Date().timeIntervalSince1970 * 1000 - Double(ms)) / 1000)
  if seconds < 60 { return String(format: "%.1fs ago", seconds) }
  if seconds < 3600 { return "\(Int(seconds / 60))m ago" }
  return "\(Int(seconds / 3600))h ago"
}

func counts(_ counts: Haat_V1_TaskCounts) -> String {
  var parts = ["\(counts.done)/\(counts.total) done"]
  if counts.leased > 0 { parts.append("\(counts.leased) running") }
  if counts.ready > 0 { parts.append("\(counts.ready) ready") }
  if counts.scheduled > 0 { parts.append("\(counts.scheduled) scheduled") }
  if counts.dead > 0 { parts.append("\(counts.dead) dead") }
  if counts.cancelled > 0 { parts.append("\(counts.cancelled) cancelled") }
  return parts.joined(separator: ", ")
}

/// "1 task", "2 tasks"; "2 processes".
func plural(_ count: Int, _ noun: String) -> String {
  "\(count) \(noun)\(count == 1 ? "" : noun.hasSuffix("s") ? "es" : "s")"
}

/// Renders a report in the format asked for.
/// `only`: that report's section alone (table and csv; JSON is the whole report).
func render(_ report: Report, format: ReportFormat, only name: String? = nil, csvSafe: Bool = false) {
  switch format {
  case .table: print(ReportRendering.table(report, only: name), terminator: "")
  case .csv: printCSV(ReportRendering.csv(report, named: name, escapingFormulas: csvSafe))
  case .json: printJSON(report)
  }
}

/// `--csv-safe`, on every command that prints a report as CSV (found by a tester: `haat
/// schedules report` and `haat submit --wait` printed formula cells with no way to escape them).
struct CSVSafeOption: ParsableArguments {
  @Flag(
    name: .customLong("csv-safe"),
    help:
      "With --format csv: prefix ' to text cells starting with = + - @, a tab or CR (spreadsheet formulas); numbers are never changed."
  )
  var enabled = false
}

enum ReportFormat: String, CaseIterable {
  case table, json, csv
}

/// A job's progress on the terminal: a live bar on a TTY, plain lines otherwise.
struct ProgressDisplay {
  let interactive: Bool
  let started = Date()
  private var lastLine = Date.distantPast
  private var lastState = ""

  init(interactive: Bool = isatty(STDERR_FILENO) == 1) {
    self.interactive = interactive
  }

  mutating func show(_ event: Haat_V1_JobEvent) {
    flushOutput()  // keep stdout and the progress on stderr in order when both go to one place
    let counts = event.counts
    let ended = Int(counts.done + counts.dead + counts.cancelled)
    let total = max(1, Int(counts.total))
    let elapsed = max(0.001, Date().timeIntervalSince(started))
    let rate = Double(ended) / elapsed
    let remaining = total - ended
    let eta = rate > 0 && remaining > 0 ? Self.duration(Double(remaining) / rate) : (remaining == 0 ? "0s" : "–")
    let rateText = rate >= 100 ? String(format: "%.0f", rate) : String(format: "%.1f", rate)
    var status = "\(ended)/\(counts.total) tasks · \(rateText) tasks/s · ETA \(eta) · \(event.state)"
    if counts.dead > 0 { status += " · \(counts.dead) dead" }
    if interactive {
      let width = 30
      let filled = min(width, ended * width / total)
      let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
      let line = "\r\u{1B}[2Kjob \(event.job) [\(bar)] \(status)"
      try? FileHandle.standardError.write(contentsOf: Data(line.utf8))
      if event.final { try? FileHandle.standardError.write(contentsOf: Data("\n".utf8)) }
    } else {
      // Plain lines for logs and pipes: on state changes, every 2 s, and at the end. A job
      // reaches its end state an event before the final one: that change waits for it, so
      // the end is one line.
      let ending = JobState(rawValue: event.state)?.isFinal ?? false
      guard event.final || (!ending && (event.state != lastState || Date().timeIntervalSince(lastLine) >= 2)) else {
        return
      }
      lastLine = Date()
      lastState = event.state
      try? FileHandle.standardError.write(contentsOf: Data("job \(event.job): \(status)\n".utf8))
    }
  }

  static func duration(_ seconds: Double) -> String {
    if seconds < 60 { return "\(Int(seconds.rounded(.up)))s" }
    if seconds < 3600 { return "\(Int(seconds / 60))m\(Int(seconds) % 60)s" }
    return "\(Int(seconds / 3600))h\(Int(seconds / 60) % 60)m"
  }
}
