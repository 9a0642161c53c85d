import Foundation
import HaatAnalytics
import HaatCore
import HaatProtocol
import Yams

/// Reads a job spec from YAML or JSON. Every mistake is reported with the field's path and
/// the reason (`sources[1].url: …`); unknown fields are errors here, unlike on the wire,
/// because in a hand-written spec they are typos.
public enum SpecLoader {
  /// Loads a spec file (`.json`, or YAML for anything else): a regular file, a pipe
  /// (`<(…)`) or a device alike, read up to `maxSpecBytes`.
  public static func load(path: String) throws -> JobSpec {
    let descriptor = open(path, O_RDONLY)
    guard descriptor >= 0 else {
      throw HaatError(.badSpec, "cannot read \(path): \(String(cString: strerror(errno)))")
    }
    let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
    // A directory opens, but its read fails with an error Foundation words for no one.
    var status = stat()
    if fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFDIR {
      throw HaatError(.badSpec, "cannot read \(path): it is a directory; name a spec file")
    }
    return try parse(read(handle, named: path), json: path.lowercased().hasSuffix(".json"))
  }

  /// A spec read from standard input (`haat submit -`), YAML or JSON (JSON is YAML's subset
  /// as far as a spec goes, but read as JSON when it starts with `{`).
  public static func loadStandardInput() throws -> JobSpec {
    let text = try read(FileHandle.standardInput, named: "the spec on standard input")
    return try parse(text, json: text.drop { $0.isWhitespace }.first == "{")
  }

  /// A spec's text: at most `maxSpecBytes` read (never the whole of an endless stream), and
  /// UTF-8 or refused.
  static func read(_ handle: FileHandle, named name: String) throws -> String {
    var data = Data()
    while true {
      let chunk: Data
      do {
        chunk = try handle.read(upToCount: 1 << 20) ?? Data()
      } catch {
        throw HaatError(.badSpec, "cannot read \(name): \(error.localizedDescription)")
      }
      if chunk.isEmpty { break }
      data.append(chunk)
      guard data.count <= maxSpecBytes else {
        throw HaatError(.badSpec, "\(name) is over \(maxSpecBytes) bytes, the most a spec may be")
      }
    }
    guard let text = String(data: data, encoding: .utf8) else {
      throw HaatError(.badSpec, "\(name) is not UTF-8 text")
    }
    return text
  }

  /// The most values (scalars, lists and mappings, aliases counted each time they are used)
  /// and the deepest nesting a spec may have; 10,000 sources of ten fields fit easily.
  public static let maxValues = 1_000_000
  public static let maxDepth = 32
  /// The largest spec file read.
  public static let maxSpecBytes = 64 << 20

  /// Parses spec text.
  public static func parse(_ text: String, json: Bool = false) throws -> JobSpec {
    guard text.utf8.count <= maxSpecBytes else {
      throw HaatError(.badSpec, "the spec is \(text.utf8.count) bytes; the most is \(maxSpecBytes)")
    }
    let root: Any?
    if json {
      do {
        root = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        // The bound YAML has, for JSON too: only Foundation's own (512) held it (a tester).
        if let root, !fits(root, depth: 0) {
          throw HaatError(.badSpec, "the spec nests deeper than \(maxDepth) levels")
        }
        try refuseDuplicateKeys(json: text)
      } catch let error as HaatError {
        throw error
      } catch {
        // The parser's own account ("… around line 2, column 5"), not Foundation's summary.
        let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
        // Deeper than the parser goes: said as the spec's own bound (a tester).
        if detail?.contains("Too many nested") == true {
          throw HaatError(.badSpec, "the spec nests deeper than \(maxDepth) levels")
        }
        throw HaatError(.badSpec, "the spec is not valid JSON: \(brief(detail ?? error.localizedDescription))")
      }
    } else {
      do {
        // Aliases let a few hundred bytes stand for billions of values: count what the
        // document expands to, on the composed tree (shared, not copied), before building it.
        // Composing hashes mapping keys, so a key that is an alias or a collection of
        // aliases costs time exponential in their nesting: such keys are refused first.
        try refuseComplexKeys(text)
        if let node = try Yams.compose(yaml: text, Resolver.basic) {
          var budget = maxValues
          try checkExpansion(node, depth: 0, budget: &budget)
        }
        // Every scalar stays text as written (so `account: 0042` is "0042", not 34, and
        // `not_before` stays RFC 3339); numbers are read where numbers belong.
        root = try Yams.load(yaml: text, Resolver.basic)
      } catch let error as HaatError {
        throw error
      } catch {
        // libyaml's own bound, worded with its function's name (found by a tester).
        if "\(error)".contains("Maximum nesting level reached") {
          throw HaatError(.badSpec, "the spec nests deeper than \(maxDepth) levels")
        }
        throw HaatError(.badSpec, "the spec is not valid YAML: \(brief(yaml: error))")
      }
    }
    guard let object = root as? [String: Any] else {
      throw HaatError(.badSpec, "the spec must be a mapping with at least `sources`")
    }
    return try jobSpec(object)
  }

  static let jobFields = [
    "name", "sources", "reports", "priority", "not_before", "max_attempts", "retry_base_ms",
    "retry_cap_ms", "labels", "every",
  ]
  static let sourceFields = [
    "name", "platform", "kind", "account", "url", "format", "credential", "pool", "tasks", "requests_per_second",
    "incremental", "split_bytes", "since", "until", "timezone", "business_hours",
  ]

  static func jobSpec(_ object: [String: Any]) throws -> JobSpec {
    try checkKeys(object, known: jobFields, path: "")
    var spec = JobSpec()
    spec.name = try string(object["name"], "name") ?? ""
    spec.priority = Int32(try integer(object["priority"], "priority", range: -1000...1000) ?? 0)
    spec.notBefore = try string(object["not_before"], "not_before") ?? ""
    if let every = try string(object["every"], "every") {
      // An empty `every` (an unset template variable) would make a one-off job without a word.
      spec.every = every.trimmingCharacters(in: .whitespaces)
      guard !spec.every.isEmpty else {
        throw HaatError(
          .badSpec, "is empty: give an interval (6h) or a cron line (\"0 6 * * *\"), or leave it out for a one-off job",
          field: "every")
      }
    }
    spec.maxAttempts = UInt32(try integer(object["max_attempts"], "max_attempts", range: 0...100) ?? 0)
    spec.retryBaseMs = UInt32(try integer(object["retry_base_ms"], "retry_base_ms", range: 0...86_400_000) ?? 0)
    spec.retryCapMs = UInt32(try integer(object["retry_cap_ms"], "retry_cap_ms", range: 0...86_400_000) ?? 0)
    if let reports = object["reports"] {
      guard let list = reports as? [Any] else { throw bad("reports", "must be a list of report names") }
      spec.reports = try list.enumerated().map { index, item in
        // A null is no report name (it was refused as `unknown report ""`: a tester).
        guard let name = try string(item, "reports[\(index)]") else {
          throw bad("reports[\(index)]", "is empty: name a report, one of \(Reports.names)")
        }
        return name
      }
    }
    if let labels = object["labels"] {
      guard let map = labels as? [String: Any] else { throw bad("labels", "must be a mapping of names to text") }
      for (key, value) in map { spec.labels[key] = try string(value, "labels.\(key)") ?? "" }
    }
    guard let sources = object["sources"] else { throw bad("sources", "is required: a list of sources to collect") }
    guard let list = sources as? [Any] else { throw bad("sources", "must be a list") }
    spec.sources = try list.enumerated().map { index, item in
      let path = "sources[\(index)]"
      guard let source = item as? [String: Any] else {
        throw bad(path, "must be a mapping (url, platform, account, …)")
      }
      try checkKeys(source, known: sourceFields, path: path + ".")
      var out = Source()
      out.name = try string(source["name"], "\(path).name") ?? ""
      out.platform = try string(source["platform"], "\(path).platform") ?? ""
      out.kind = try string(source["kind"], "\(path).kind") ?? ""
      out.account = try string(source["account"], "\(path).account") ?? ""
      out.url = try string(source["url"], "\(path).url") ?? ""
      out.format = try string(source["format"], "\(path).format") ?? ""
      out.credential = try string(source["credential"], "\(path).credential") ?? ""
      out.pool = try string(source["pool"], "\(path).pool") ?? ""
      out.tasks = UInt32(try integer(source["tasks"], "\(path).tasks", range: 0...1_000_000) ?? 0)
      out.requestsPerSecond = try number(source["requests_per_second"], "\(path).requests_per_second") ?? 0
      out.incremental = try boolean(source["incremental"], "\(path).incremental") ?? false
      out.splitBytes = try bytes(source["split_bytes"], "\(path).split_bytes") ?? 0
      out.since = try day(source["since"], "\(path).since") ?? ""
      out.until = try day(source["until"], "\(path).until") ?? ""
      out.timezone = try string(source["timezone"], "\(path).timezone") ?? ""
      out.businessHours = try string(source["business_hours"], "\(path).business_hours") ?? ""
      return out
    }
    return spec
  }

  static func checkExpansion(_ node: Node, depth: Int, budget: inout Int) throws {
    budget -= 1
    guard budget >= 0 else {
      throw HaatError(
        .badSpec, "the spec expands to more than \(maxValues) values (YAML aliases repeating a large value?)")
    }
    guard depth <= maxDepth else { throw HaatError(.badSpec, "the spec nests deeper than \(maxDepth) levels") }
    switch node {
    case .mapping(let mapping):
      for (key, value) in mapping {
        // Field names are text; YAML also allows lists, mappings and aliases as keys, which
        // the loader cannot represent (Yams traps on them), so they are refused here.
        guard case .scalar = key else {
          throw HaatError(.badSpec, "a mapping key must be plain text, not a list, a mapping or an alias")
        }
        try checkExpansion(key, depth: depth + 1, budget: &budget)
        try checkExpansion(value, depth: depth + 1, budget: &budget)
      }
    case .sequence(let sequence):
      for value in sequence { try checkExpansion(value, depth: depth + 1, budget: &budget) }
    case .scalar, .alias:
      break
    }
  }

  /// Refuses mapping keys that are not plain text, read from the text before any YAML
  /// parsing: an explicit key (`? `), or a `:` after an alias (`*a: 1`) or after a flow
  /// collection (`[a]: 1`, `{a}: 1`). Quoted text and comments are skipped. Specs never need
  /// such keys (the loader refuses them after parsing too).
  static func refuseComplexKeys(_ text: String) throws {
    let bytes = Array(text.utf8)
    func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }
    func isFlow(_ byte: UInt8) -> Bool {
      byte == UInt8(ascii: ",") || byte == UInt8(ascii: "[") || byte == UInt8(ascii: "]") || byte == UInt8(ascii: "{")
        || byte == UInt8(ascii: "}")
    }
    let refusal = HaatError(
      .badSpec, "a mapping key must be plain text, not a list, a mapping or an alias (YAML `? `, `[…]:`, `*name:`)")
    var index = 0
    while index < bytes.count {
      let byte = bytes[index]
      switch byte {
      case UInt8(ascii: "\""), UInt8(ascii: "'"):
        // Quoted text (a backslash escapes only inside double quotes).
        let quote = byte
        index += 1
        while index < bytes.count, bytes[index] != quote {
          if quote == UInt8(ascii: "\""), bytes[index] == UInt8(ascii: "\\") { index += 1 }
          index += 1
        }
      case UInt8(ascii: "#") where index == 0 || isSpace(bytes[index - 1]):
        while index < bytes.count, bytes[index] != 0x0A { index += 1 }
      case UInt8(ascii: "?")
      where (index == 0 || isSpace(bytes[index - 1]) || isFlow(bytes[index - 1]))
        && (index + 1 == bytes.count || isSpace(bytes[index + 1])):
        throw refusal
      case UInt8(ascii: ":") where index + 1 == bytes.count || isSpace(bytes[index + 1]) || isFlow(bytes[index + 1]):
        // The key before this ":": its last character, then its first.
        var end = index - 1
        while end >= 0, isSpace(bytes[end]) { end -= 1 }
        guard end >= 0 else { break }
        if bytes[end] == UInt8(ascii: "]") || bytes[end] == UInt8(ascii: "}") { throw refusal }
        var start = end
        while start > 0, !isSpace(bytes[start - 1]), !isFlow(bytes[start - 1]) { start -= 1 }
        if bytes[start] == UInt8(ascii: "*") { throw refusal }
      default:
        break
      }
      index += 1
    }
  }

  /// A parser's message, cut short: some echo the whole input back.
  /// A YAML error in one line: the problem and where, without the document Yams quotes.
  static func brief(yaml error: any Error) -> String {
    switch error as? YamlError {
    case .duplicatedKeysInMapping(let duplicates, let context)?:
      let keys = duplicates.map { "\"\($0)\"" }.joined(separator: ", ")
      return brief("the mapping that starts at line \(context.mark.line) has \(keys) more than once")
    case .scanner(_, let problem, let mark, _)?, .parser(_, let problem, let mark, _)?,
      .composer(_, let problem, let mark, _)?:
      return brief("\(problem) at line \(mark.line), column \(mark.column)")
    default:
      return brief(error)
    }
  }

  static func brief(_ error: Any) -> String {
    let text = DisplayText.escape("\(error)")
    return text.count > 300 ? String(text.prefix(300)) + "…" : text
  }

  /// Whether `value` nests no deeper than `maxDepth` below `depth`.
  static func fits(_ value: Any, depth: Int) -> Bool {
    guard depth <= maxDepth else { return false }
    if let list = value as? [Any] { return list.allSatisfy { fits($0, depth: depth + 1) } }
    if let map = value as? [String: Any] { return map.values.allSatisfy { fits($0, depth: depth + 1) } }
    return true
  }

  static func bad(_ field: String, _ reason: String) -> HaatError {
    HaatError(.badSpec, reason, field: field)
  }

  static func checkKeys(_ object: [String: Any], known: [String], path: String) throws {
    for key in object.keys.sorted() where !known.contains(key) {
      let snake = key.reduce(into: "") { out, character in
        if character.isUppercase { out += "_" + character.lowercased() } else { out.append(character) }
      }
      // Also a field written in another case or with other separators (`timeZone`, `Name`,
      // `URL` for timezone, name, url: a tester).
      func folded(_ name: String) -> String { name.lowercased().filter { $0 != "_" && $0 != "-" } }
      let match = known.contains(snake) ? snake : known.first { folded($0) == folded(key) }
      let hint = match.map { " (did you mean \($0)?)" } ?? "; known fields: \(known.joined(separator: ", "))"
      throw bad(path + key, "unknown field\(hint)")
    }
  }

  /// Refuses JSON's and YAML's true and false. Foundation hands JSON's over as numbers that also
  /// read as 1 and 0, so a number or text field checks for them first: `"priority": true`
  /// is a mistake to report, not a priority of 1.
  static func refuseBoolean(_ value: Any?, _ field: String, must: String) throws {
    guard let value else { return }
    if let flag = value as? Bool, type(of: value) == Bool.self {
      throw bad(field, "\(must), not \(flag)")
    }
    if let number = value as? NSNumber, String(cString: number.objCType) == "c" {
      throw bad(field, "\(must), not \(number.boolValue)")
    }
  }

  static func string(_ value: Any?, _ field: String) throws -> String? {
    try refuseBoolean(value, field, must: "must be text")
    switch value {
    case nil, is NSNull: return nil
    case let text as String: return text
    // JSON `"account": 123` is a number; an account name is text all the same.
    case let number as Int: return String(number)
    default: throw bad(field, "must be text")
    }
  }

  static func boolean(_ value: Any?, _ field: String) throws -> Bool? {
    // A JSON number bridges to Bool (1 as true): only `true` and `false` are booleans.
    if let number = value as? NSNumber, String(cString: number.objCType) != "c" {
      throw bad(field, "must be true or false, not \(number.stringValue)")
    }
    switch value {
    case nil, is NSNull: return nil
    case let flag as Bool: return flag
    case let text as String where ["true", "false"].contains(text.lowercased()):
      return text.lowercased() == "true"
    default:
      throw bad(field, "must be true or false, not \(String(describing: value.map { "\($0)" } ?? ""))")
    }
  }

  static func number(_ value: Any?, _ field: String) throws -> Double? {
    try refuseBoolean(value, field, must: "must be a number")
    switch value {
    case nil, is NSNull: return nil
    case let text as String:
      guard let number = Double(text.trimmingCharacters(in: .whitespaces)), number.isFinite else {
        throw bad(field, "must be a number, not \"\(text)\"")
      }
      return number
    case let number as Int: return Double(number)
    case let number as Double where number.isFinite: return number
    case let number as NSNumber where number.doubleValue.isFinite: return number.doubleValue
    default:
      throw bad(field, "must be a number, not \(String(describing: value.map { "\($0)" } ?? ""))")
    }
  }

  /// A day, "YYYY-MM-DD": YAML reads an unquoted one as a date, so it may come as one.
  static func day(_ value: Any?, _ field: String) throws -> String? {
    switch value {
    case nil, is NSNull: return nil
    case let text as String: return text.trimmingCharacters(in: .whitespaces)
    case let date as Date:
      let formatter = DateFormatter()
      formatter.locale = Locale(identifier: "en_US_POSIX")
      formatter.timeZone = TimeZone(identifier: "UTC")
      formatter.dateFormat = "yyyy-MM-dd"
      return formatter.string(from: date)
    default:
      throw bad(field, "must be a day, YYYY-MM-DD, not \(String(describing: value.map { "\($0)" } ?? ""))")
    }
  }

  /// A size: a whole number of bytes, or one with a unit ("64MiB", "1 GiB", "512KiB", "64MB").
  static func bytes(_ value: Any?, _ field: String) throws -> UInt64? {
    guard let text = value as? String else {
      return try integer(value, field, range: 0...Int.max).map { UInt64($0) }
    }
    let units: [(String, UInt64)] = [
      ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
      ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000), ("B", 1),
    ]
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    let (number, scale) =
      units.first { trimmed.hasSuffix($0.0) }.map {
        (trimmed.dropLast($0.0.count).trimmingCharacters(in: .whitespaces), $0.1)
      } ?? (trimmed, 1)
    guard let count = UInt64(number) else {
      throw bad(field, "must be a size like 64MiB, 1GiB or a number of bytes, not \"\(text)\"")
    }
    let (total, overflow) = count.multipliedReportingOverflow(by: scale)
    guard !overflow else { throw bad(field, "is too large: \"\(text)\"") }
    return total
  }

  static func integer(_ value: Any?, _ field: String, range: ClosedRange<Int>) throws -> Int? {
    try refuseBoolean(value, field, must: "must be a whole number")
    switch value {
    case nil, is NSNull: return nil
    case let text as String:
      guard let number = Int(text.trimmingCharacters(in: .whitespaces)) else {
        throw bad(field, "must be a whole number, not \"\(text)\"")
      }
      guard range.contains(number) else {
        throw bad(field, "must be between \(range.lowerBound) and \(range.upperBound), not \(number)")
      }
      return number
    case let number as Int:
      guard range.contains(number) else {
        throw bad(field, "must be between \(range.lowerBound) and \(range.upperBound), not \(number)")
      }
      return number
    case let number as NSNumber where number.doubleValue == number.doubleValue.rounded():
      // Past 64 bits JSON gives a decimal number, whose `intValue` wraps: 2^64 + 5 was 5.
      let double = number.doubleValue
      guard double >= Double(range.lowerBound), double <= Double(range.upperBound) else {
        throw bad(field, "must be between \(range.lowerBound) and \(range.upperBound), not \(number.stringValue)")
      }
      return number.intValue
    default:
      throw bad(field, "must be a whole number, not \(String(describing: value.map { "\($0)" } ?? ""))")
    }
  }

  /// JSON leaves a key given twice to the parser, which keeps the last: `"sources"` twice
  /// lost the first list. YAML refuses it; so does this, naming the key and the line. The
  /// text is valid JSON already (parsed first).
  static func refuseDuplicateKeys(json text: String) throws {
    let bytes = Array(text.utf8)
    // One entry per open object (its keys) or array (nil).
    var open: [Set<String>?] = []
    var index = 0
    var line = 1
    while index < bytes.count {
      let byte = bytes[index]
      switch byte {
      case UInt8(ascii: "\n"): line += 1
      case UInt8(ascii: "{"): open.append([])
      case UInt8(ascii: "["): open.append(nil)
      case UInt8(ascii: "}"), UInt8(ascii: "]"): _ = open.popLast()
      case UInt8(ascii: ","):
        // Foundation's parser takes `[1,]` and `{"a":1,}`; JSON does not (found by a tester).
        var next = index + 1
        while next < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[next]) { next += 1 }
        if next < bytes.count, bytes[next] == UInt8(ascii: "}") || bytes[next] == UInt8(ascii: "]") {
          throw HaatError(.badSpec, "the spec is not valid JSON: a comma before a closing bracket (line \(line))")
        }
      case UInt8(ascii: "\""):
        let start = index
        var escaped = false
        index += 1
        while index < bytes.count, bytes[index] != UInt8(ascii: "\"") || escaped {
          escaped = !escaped && bytes[index] == UInt8(ascii: "\\")
          index += 1
        }
        let token = bytes[start...min(index, bytes.count - 1)]
        var next = index + 1
        while next < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[next]) { next += 1 }
        if next < bytes.count, bytes[next] == UInt8(ascii: ":"), let keys = open.last, var keys {
          let raw = String(decoding: token, as: UTF8.self)
          let key =
            token.contains(UInt8(ascii: "\\"))
            ? ((try? JSONSerialization.jsonObject(with: Data(token), options: [.fragmentsAllowed])) as? String ?? raw)
            : String(raw.dropFirst().dropLast())
          guard keys.insert(key).inserted else {
            throw HaatError(
              .badSpec,
              "the spec has \"\(DisplayText.escape(String(key.prefix(64))))\" twice in one object (line \(line)); JSON keeps only the last, so nothing is read"
            )
          }
          open[open.count - 1] = keys
        }
      default: break
      }
      index += 1
    }
  }
}
