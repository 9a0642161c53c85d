/// Text that a remote party controls (export bodies, error pages, job, source and worker
/// names) on its way to a person's terminal: names that could disguise themselves are
/// refused, and everything else is shown with its control characters made visible.
public enum DisplayText {
  /// Whether a scalar could move the cursor, recolour, retitle or reorder what a terminal
  /// shows: C0 and C1 controls, DEL, line and paragraph separators, and format characters
  /// (bidi overrides and isolates, invisible marks) except ZWNJ and ZWJ, which Bengali,
  /// Urdu and emoji need.
  @inline(__always)
  public static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
    let value = scalar.value
    if value < 0x20 || (0x7F...0x9F).contains(value) { return true }
    if value < 0xA0 { return false }
    if value == 0x200C || value == 0x200D { return false }
    switch scalar.properties.generalCategory {
    case .format, .lineSeparator, .paragraphSeparator, .control, .surrogate: return true
    default: return false
    }
  }

  /// Whether `name` is fit to name a job, source or peer: no unsafe scalar at all.
  public static func isSafeName(_ name: String) -> Bool {
    !name.unicodeScalars.contains(where: isUnsafe)
  }

  /// The first unsafe scalar of `name`, as `U+XXXX`, for an error message.
  public static func firstUnsafe(_ name: String) -> String? {
    name.unicodeScalars.first(where: isUnsafe).map(codePoint)
  }

  /// `text` with every unsafe scalar shown as an escape (`\e`, `\x07`, `\u{202E}`); newlines
  /// (and tabs) are kept only when `keepNewlines` is set, for multi-line output.
  public static func escape(_ text: String, keepNewlines: Bool = false) -> String {
    guard text.unicodeScalars.contains(where: isUnsafe) else { return text }
    var out = String.UnicodeScalarView()
    for scalar in text.unicodeScalars {
      guard isUnsafe(scalar) else {
        out.append(scalar)
        continue
      }
      if keepNewlines, scalar == "\n" || scalar == "\t" {
        out.append(scalar)
        continue
      }
      out.append(contentsOf: visible(scalar).unicodeScalars)
    }
    return String(out)
  }

  static func visible(_ scalar: Unicode.Scalar) -> String {
    switch scalar.value {
    case 0x0A: return "\\n"
    case 0x0D: return "\\r"
    case 0x09: return "\\t"
    case 0x1B: return "\\e"
    case 0..<0x100:
      let hex = String(scalar.value, radix: 16)
      return "\\x" + (hex.count < 2 ? "0" : "") + hex
    default: return "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
    }
  }

  public static func codePoint(_ scalar: Unicode.Scalar) -> String {
    let hex = String(scalar.value, radix: 16, uppercase: true)
    return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
  }

  /// The columns `text` takes on a terminal: two for an East Asian wide or full-width
  /// character and an emoji, none for a character that is only format marks (ZWJ), one
  /// otherwise (a combining mark rides on its base). Tables pad by it (found by a tester:
  /// padded by characters, rows with CJK or emoji names pushed their columns right).
  public static func width(_ text: String) -> Int {
    var columns = 0
    for character in text {
      let scalars = character.unicodeScalars
      guard let first = scalars.first else { continue }
      if scalars.allSatisfy({ $0.properties.generalCategory == .format }) { continue }
      let emoji =
        first.properties.isEmojiPresentation
        || (first.properties.isEmoji && scalars.contains { $0.value == 0xFE0F })
      columns += emoji || isWide(first) ? 2 : 1
      // A spacing mark (Bengali's vowel signs, Unicode category Mc) takes a column of its
      // own in a terminal (glibc's wcwidth), though it joins its letter's grapheme: a
      // tester's Bengali account name pushed its row's columns five to the right.
      columns += scalars.dropFirst().filter { $0.properties.generalCategory == .spacingMark }.count
    }
    return columns
  }

  /// East Asian wide and full-width blocks (Unicode's EastAsianWidth W and F, by block).
  static func isWide(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xA000...0xA4CF,
      0xA960...0xA97F, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE10...0xFE19, 0xFE30...0xFE6F, 0xFF00...0xFF60,
      0xFFE0...0xFFE6, 0x1F300...0x1F64F, 0x1F900...0x1F9FF, 0x20000...0x2FFFD, 0x30000...0x3FFFD:
      return true
    default:
      return false
    }
  }
}
