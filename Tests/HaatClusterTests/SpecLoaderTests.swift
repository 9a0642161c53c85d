import Foundation
import HaatClient
import HaatCore
import Testing

/// The spec loader facing hostile YAML: bounded expansion, depth and error size.
@Suite struct SpecLoaderTests {
  /// A 500-byte billion-laughs spec is refused quickly instead of growing without bound.
  @Test func aliasExpansionIsBounded() throws {
    var yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    for level in 1...9 {
      let previous = "*a\(level - 1)"
      yaml += "a\(level): &a\(level) [\(Array(repeating: previous, count: 10).joined(separator: ", "))]\n"
    }
    yaml += "sources:\n  - url: https://example.com/x.csv\n"
    do {
      _ = try SpecLoader.parse(yaml)
    } catch let error as HaatError {
      #expect(error.message.contains("expands to more than"))
    }
  }

  /// A spec that does not parse says what and where in one line: not the document again,
  /// escaped, nor Foundation's "the data is not in the correct format".
  @Test(arguments: [
    (
      "name: a\nname: b\nsources:\n  - kind: noop\n", false,
      "the mapping that starts at line 1 has \"name\" more than once"
    ),
    ("sources:\n  - kind: noop\n   bad: [\n", false, "at line 3, column 4"),
    (#"{"sources":[{"kind":"noop"},]} x"#, true, "around character 31"),
  ])
  func aSpecThatDoesNotParseSaysWhere(text: String, json: Bool, says: String) throws {
    do {
      _ = try SpecLoader.parse(text, json: json)
      Issue.record("parsed")
    } catch let error as HaatError {
      #expect(error.message.contains(says), "\(error.message)")
      #expect(!error.message.contains("\\n") && !error.message.contains("\n"), "\(error.message)")
    }
  }

  /// Found by a tester: flow-style YAML nested past libyaml's bound was refused in libyaml's
  /// words (naming its C function), JSON past Foundation's in Foundation's; both are the
  /// spec's own depth bound.
  @Test(arguments: [false, true])
  func nestingPastTheParsersBoundSaysTheSpecsBound(json: Bool) throws {
    // 33 levels (a second tester: JSON was bound only at Foundation's 512) and 5,000.
    for depth in [33, 5_000] {
      try Self.refusesNesting(depth, json: json)
    }
  }

  static func refusesNesting(_ depth: Int, json: Bool) throws {
    let text =
      json
      ? #"{"labels":"# + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}"
      : "labels: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "\n"
    do {
      _ = try SpecLoader.parse(text, json: json)
      Issue.record("parsed")
    } catch let error as HaatError {
      #expect(error.message == "the spec nests deeper than 32 levels", "\(error.message)")
    }
  }

  /// Found by a tester: `every: ""` (an unset template variable) made a one-off job without
  /// a word, and `every: " 1h"` was stored with its space.
  @Test func anEmptyEveryIsRefusedAndSpacesAreTrimmed() throws {
    for empty in ["every: \"\"\n", "every: \"  \"\n"] {
      do {
        _ = try SpecLoader.parse("name: n\n" + empty + "sources:\n  - kind: noop\n")
        Issue.record("parsed: \(empty)")
      } catch let error as HaatError {
        #expect(error.code == .badSpec && error.field == "every" && error.message.contains("is empty"))
      }
    }
    let spec = try SpecLoader.parse("name: n\nevery: \" 1h \"\nsources:\n  - kind: noop\n")
    #expect(spec.every == "1h")
  }

  /// YAML allows lists, mappings and aliases as mapping keys; the spec refuses them with
  /// bad_spec (Yams trapped on them; found by `make fuzz`).
  @Test(arguments: [
    "[a]: 1\nsources: []\n",
    "? [a]\n: 1\nsources: []\n",
    "{a}: 1\nsources: []\n",
    "sources:\n  - {[x]: 1}\n",
    "k: &k [a]\n*k : 1\nsources: []\n",
    "k: &k [a]\nl: [*k, *k: 1]\nsources: []\n",
    "k: &k [a]\nl: {[*k]: 1}\nsources: []\n",
  ])
  func nonTextKeysAreRefused(yaml: String) {
    #expect(throws: HaatError.self) { try SpecLoader.parse(yaml) }
  }

  /// Keys made of aliases are refused before YAML composes them: composing hashes keys, in
  /// time exponential in the aliases' nesting (found by `make fuzz`: 13 s for 400 bytes).
  @Test func aliasesInKeysAreRefusedBeforeComposing() throws {
    var yaml = "a: &a [x, x, x, x, x, x, x, x, x]\n"
    for (level, name) in ["b", "c", "d", "e", "f", "g", "h", "i"].enumerated() {
      let previous = ["a", "b", "c", "d", "e", "f", "g", "h"][level]
      yaml += "\(name): &\(name) [\(Array(repeating: "*" + previous, count: 9).joined(separator: ", "))]\n"
    }
    yaml += "j: [*i, *i: *a]\nsources: []\n"
    #expect(throws: HaatError.self) { try SpecLoader.parse(yaml) }
    // Text that only looks like such keys is still fine.
    let plain = "name: \"*a: [x]: 1\" # ? [b]: *c\nsources:\n  - url: https://example.com/a.csv?x=*y\n"
    #expect(try SpecLoader.parse(plain).name == "*a: [x]: 1")
  }

  /// Deep nesting is refused, and the message does not echo the input back.
  @Test(arguments: [false, true])
  func deepNestingGivesAShortError(json: Bool) {
    let depth = 100_000
    let text =
      json
      ? "{\"sources\": " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}"
      : "sources: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "\n"
    do {
      _ = try SpecLoader.parse(text, json: json)
      Issue.record("a \(depth)-deep spec was accepted")
    } catch let error as HaatError {
      #expect(error.code == .badSpec)
      #expect(error.message.utf8.count < 1000)
    } catch {
      Issue.record("unexpected error \(error)")
    }
  }
}

/// The source fields of the platform kinds, in YAML and JSON.
@Suite struct PlatformSourceFieldTests {
  @Test func incrementalAndRateAreRead() throws {
    let yaml = try SpecLoader.parse(
      "sources:\n  - kind: facebook_posts\n    account: \"1\"\n    incremental: true\n    requests_per_second: 2.5\n")
    #expect(yaml.sources.first?.incremental == true && yaml.sources.first?.requestsPerSecond == 2.5)
    let json = try SpecLoader.parse(
      #"{"sources":[{"kind":"facebook_posts","account":"1","incremental":true,"requests_per_second":3}]}"#,
      json: true)
    #expect(json.sources.first?.incremental == true && json.sources.first?.requestsPerSecond == 3)
    #expect(throws: HaatError.self) { try SpecLoader.parse("sources:\n  - incremental: maybe\n") }
    #expect(throws: HaatError.self) { try SpecLoader.parse("sources:\n  - requests_per_second: fast\n") }
  }

  /// JSON's true and false reach the loader as numbers that also read as 1 and 0: a number
  /// or text field refuses them rather than taking `true` for 1.
  @Test(arguments: [
    (#"{"sources":[{"kind":"noop"}],"priority":true}"#, true, "priority", "must be a whole number, not true"),
    (#"{"sources":[{"kind":"noop","account":false}]}"#, true, "sources[0].account", "must be text, not false"),
    (#"{"sources":[{"kind":"noop","requests_per_second":true}]}"#, true, "", "must be a number, not true"),
    ("sources:\n  - kind: noop\npriority: true\n", false, "priority", "must be a whole number, not \"true\""),
  ])
  func aBooleanIsNotANumberOrText(text: String, json: Bool, field: String, says: String) throws {
    do {
      let spec = try SpecLoader.parse(text, json: json)
      Issue.record("read as priority \(spec.priority), account \(spec.sources.first?.account ?? "-")")
    } catch let error as HaatError {
      #expect(error.message == says)
      if !field.isEmpty { #expect(error.field == field) }
    }
  }

  @Test func daysAreReadQuotedOrNot() throws {
    let spec = try SpecLoader.parse(
      "sources:\n  - kind: tiktok_ads\n    account: \"1\"\n    since: 2026-01-01\n    until: \"2026-03-16\"\n")
    #expect(spec.sources.first?.since == "2026-01-01" && spec.sources.first?.until == "2026-03-16")
    #expect(throws: HaatError.self) { try SpecLoader.parse("sources:\n  - since: [1]\n") }
  }

  @Test func splitBytesTakesASizeWithAUnit() throws {
    for (text, bytes) in [("64MiB", UInt64(64 << 20)), ("1 GiB", 1 << 30), ("2MB", 2_000_000), ("1048576", 1 << 20)] {
      let spec = try SpecLoader.parse("sources:\n  - url: file:///x.csv\n    split_bytes: \(text)\n")
      #expect(spec.sources.first?.splitBytes == bytes, "\(text)")
    }
    let json = try SpecLoader.parse(#"{"sources":[{"url":"file:///x.csv","split_bytes":"8MiB"}]}"#, json: true)
    #expect(json.sources.first?.splitBytes == 8 << 20)
    for bad in ["lots", "64 XB", "-1", "99999999999999999999GiB"] {
      #expect(throws: HaatError.self, "\(bad)") {
        try SpecLoader.parse("sources:\n  - url: file:///x.csv\n    split_bytes: \"\(bad)\"\n")
      }
    }
  }

  /// Past 64 bits JSON gives a decimal number, whose `intValue` wrapped: 2^64 + 5 tasks were
  /// 5, a priority of 2^64 + 10 was 10, a split of 2^64 bytes was none.
  @Test(arguments: [
    (#"{"sources":[{"kind":"noop","tasks":18446744073709551621}]}"#, "sources[0].tasks"),
    (#"{"priority":18446744073709551626,"sources":[{"kind":"noop"}]}"#, "priority"),
    (#"{"max_attempts":36893488147419103235,"sources":[{"kind":"noop"}]}"#, "max_attempts"),
    (#"{"sources":[{"url":"file:///x.csv","split_bytes":18446744073709551616}]}"#, "sources[0].split_bytes"),
  ])
  func hugeJSONNumbersAreRefusedNotWrapped(json: String, field: String) {
    let error = #expect(throws: HaatError.self) { try SpecLoader.parse(json, json: true) }
    #expect(error?.field == field || error?.message.contains(field) == true, "\(String(describing: error))")
    #expect(error?.message.contains("1844674407370955") == true || error?.message.contains("3689348814741910") == true)
  }

  /// JSON keeps the last of a key given twice, so a second `sources` dropped the first;
  /// YAML refuses it, and so does JSON now. `1` is not `true` either.
  @Test func duplicateJSONKeysAndNumericBooleansAreRefused() throws {
    for json in [
      #"{"sources":[{"kind":"noop","tasks":5}],"sources":[{"kind":"noop"}]}"#,
      #"{"name":"a","name":"b","sources":[{"kind":"noop"}]}"#,
      #"{"sources":[{"kind":"noop","tasks":5,"tasks":1}]}"#,
      #"{"sources":[{"kind":"noop","ab":1,"a\u0062":2}]}"#,
    ] {
      let error = #expect(throws: HaatError.self, "\(json)") { try SpecLoader.parse(json, json: true) }
      #expect(error?.message.contains("twice in one object") == true, "\(String(describing: error))")
    }
    // The same key in two objects, or as a value, is no duplicate.
    let fine = try SpecLoader.parse(
      #"{"name":"name","sources":[{"kind":"noop","tasks":2},{"kind":"noop","tasks":3}]}"#, json: true)
    #expect(fine.sources.count == 2)
    #expect(throws: HaatError.self) {
      try SpecLoader.parse(#"{"sources":[{"kind":"noop","incremental":1}]}"#, json: true)
    }
    // Foundation's parser took trailing commas (found by a tester); a comma in a string is
    // no comma of the document.
    for json in [#"{"sources":[{"kind":"noop",}],}"#, #"{"sources":[{"kind":"noop"} , ]}"#] {
      let error = #expect(throws: HaatError.self, "\(json)") { try SpecLoader.parse(json, json: true) }
      #expect(error?.message.contains("a comma before a closing bracket") == true, "\(String(describing: error))")
    }
    #expect(try SpecLoader.parse(#"{"name":"a,}","sources":[{"kind":"noop"}]}"#, json: true).name == "a,}")
  }

  /// A spec may come from a pipe (`haat submit <(…)`): it used to be "cannot read /dev/fd/63".
  @Test func aSpecIsReadFromAPipeAndAMissingFileSaysWhy() throws {
    var fds: [Int32] = [0, 0]
    #expect(pipe(&fds) == 0)
    let text = "sources: [{kind: noop, tasks: 2}]\n"
    _ = text.withCString { write(fds[1], $0, strlen($0)) }
    close(fds[1])
    let spec = try SpecLoader.load(path: "/dev/fd/\(fds[0])")
    close(fds[0])
    #expect(spec.sources.first?.tasks == 2)
    let missing = #expect(throws: HaatError.self) { try SpecLoader.load(path: "/nonexistent/spec.yaml") }
    #expect(missing?.message.contains("No such file or directory") == true)
    // A directory opens; its read failed as "NSCocoaErrorDomain error 256".
    let directory = #expect(throws: HaatError.self) { try SpecLoader.load(path: NSTemporaryDirectory()) }
    #expect(
      directory?.message.hasSuffix("it is a directory; name a spec file") == true, "\(String(describing: directory))")
  }
}
