import Foundation

/// The canonical export formats (docs/formats.md).
public enum ExportFormat: String, Sendable, CaseIterable {
  case csv
  case ndjson

  /// The format a URL's path suggests (`.csv`, `.ndjson`, `.jsonl`), ignoring query and
  /// fragment and a `.gz` suffix.
  public init?(path: String) {
    var path = Substring(path)
    if let cut = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = path[..<cut] }
    var lower = path.lowercased()
    if lower.hasSuffix(".gz") { lower.removeLast(3) }
    if lower.hasSuffix(".csv") {
      self = .csv
    } else if lower.hasSuffix(".ndjson") || lower.hasSuffix(".jsonl") {
      self = .ndjson
    } else {
      return nil
    }
  }

  /// The format a Content-Type names, if any.
  public init?(contentType: String) {
    let type = contentType.split(separator: ";").first.map {
      $0.trimmingCharacters(in: .whitespaces).lowercased()
    }
    switch type {
    case "text/csv", "application/csv": self = .csv
    case "application/x-ndjson", "application/ndjson", "application/jsonl",
      "application/x-jsonlines", "application/jsonlines":
      self = .ndjson
    default: return nil
    }
  }
}
