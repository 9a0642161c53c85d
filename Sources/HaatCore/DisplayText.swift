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
}
