import Foundation
import HaatCore

/// What Meta's Graph API connectors share: the error object, throttling, time stamps and
/// cursor paging (https://developers.facebook.com/docs/graph-api/results,
/// …/guides/error-handling, …/overview/rate-limiting).
enum MetaGraph {
  static let defaultBaseURL = "https://graph.facebook.com/v21.0"

  /// The Graph error codes that mean "too many calls" (4, 17, 32, 613, and the business
  /// use case family 80000–80014).
  static func isThrottling(_ code: UInt64) -> Bool {
    [4, 17, 32, 613].contains(code) || (80_000...80_014).contains(code)
  }

  /// The platform's error object, classified; nil when the body is not one.
  static func classify(_ response: PageResponse, body: [UInt8]) -> ExportError? {
    guard let error = JSONValue.parse(body)?["error"], let code = error["code"]?.count else { return nil }
    let message = error["message"]?.string ?? "no message"
    let subcode = error["error_subcode"]?.count.map { " (subcode \($0))" } ?? ""
    let trace = error["fbtrace_id"]?.string.map { ", fbtrace_id \($0)" } ?? ""
    let said = "Meta Graph error \(code)\(subcode): \(message)\(trace); HTTP \(response.status)"
    if code == 190 {
      return ExportError(
        "\(said). The access token was refused (expired or invalid): renew the credential on the workers",
        code: "token_expired")
    }
    if isThrottling(code) {
      return ExportError(said, code: "throttled", retryable: true, retryAfterMs: waitMs(response))
    }
    // 1 and 2 are Meta's "temporary issue" codes; `is_transient` says so for others.
    let transient = code == 1 || code == 2 || error["is_transient"] == .bool(true)
    return ExportError(said, code: "platform_error", retryable: transient)
  }

  /// How long Meta says to wait: the longer of `estimated_time_to_regain_access` (minutes)
  /// in X-Business-Use-Case-Usage and a `Retry-After`, else a minute (X-App-Usage gives
  /// percentages, no time).
  static func waitMs(_ response: PageResponse) -> UInt64 {
    var minutes: UInt64 = 0
    if let text = response.header("x-business-use-case-usage"),
      let usage = JSONValue.parse(Array(text.utf8))?.object
    {
      for entries in usage.values {
        for entry in entries.array ?? [] {
          minutes = max(minutes, entry["estimated_time_to_regain_access"]?.count ?? 0)
        }
      }
    }
    let retryAfter = response.header("retry-after").flatMap(RetryPolicy.retryAfterMs) ?? 0
    let longest = max(minutes.multipliedReportingOverflow(by: 60_000).partialValue, retryAfter)
    return longest > 0 ? longest : 60_000
  }

  /// Graph time stamps are `2019-01-02T18:31:28+0000` (no colon in the offset): the
  /// timestamp, or nil.
  static func timestamp(_ text: String) -> Values.Timestamp? {
    var canonical = text
    let bytes = Array(text.utf8)
    if bytes.count == 24, bytes[19] == UInt8(ascii: "+") || bytes[19] == UInt8(ascii: "-") {
      canonical = String(text.prefix(22)) + ":" + String(text.suffix(2))
    }
    return Array(canonical.utf8).withUnsafeBytes { Values.timestamp($0) }
  }

  /// The next page's URL: `paging.next`, and only that. An empty page may still carry
  /// `next`; the end is its absence, never a short page.
  static func next(_ page: JSONValue) -> String? {
    guard let next = page["paging"]?["next"]?.string, !next.isEmpty else { return nil }
    return next
  }

  /// A metric a Graph error refuses (code 100), if the message names one of `metrics`, or
  /// the first of them when it refuses "a metric" without saying which.
  static func refusedMetric(_ body: [UInt8], among metrics: [String]) -> String? {
    guard let error = JSONValue.parse(body)?["error"], error["code"]?.count == 100,
      let message = error["message"]?.string, message.lowercased().contains("metric")
    else { return nil }
    return metrics.first { message.contains($0) } ?? metrics.first
  }

  /// Percent-encodes a query value, keeping what Graph field expansion writes plainly.
  static func encode(_ text: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~,()")
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
  }

  /// A Graph node id or account: ASCII letters, digits, `_` and `.` (it goes into a URL path).
  static func isNodeID(_ text: String) -> Bool {
    !text.isEmpty && text.utf8.count <= 128
      && text.utf8.allSatisfy { isalnum(Int32($0)) != 0 || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
  }
}
