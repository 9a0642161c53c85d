import Foundation

/// A JSON document as values, for platform API pages. A page is bounded
/// (`PageBuffer`), so decoding it whole keeps a task's memory flat however many pages the
/// source has.
public enum JSONValue: Sendable, Equatable, Decodable {
  case null
  case bool(Bool)
  /// A non-negative integer that fits 64 bits, kept exact.
  case count(UInt64)
  /// Any other number.
  case number(Double)
  case string(String)
  case array([JSONValue])
  case object([String: JSONValue])

  public init(from decoder: any Decoder) throws {
    let container = try decoder.singleValueContainer()
    if container.decodeNil() {
      self = .null
    } else if let value = try? container.decode(Bool.self) {
      self = .bool(value)
    } else if let value = try? container.decode(UInt64.self) {
      self = .count(value)
    } else if let value = try? container.decode(Double.self) {
      self = .number(value)
    } else if let value = try? container.decode(String.self) {
      self = .string(value)
    } else if let value = try? container.decode([JSONValue].self) {
      self = .array(value)
    } else {
      self = .object(try container.decode([String: JSONValue].self))
    }
  }

  /// Parses a whole document; nil when it is not JSON.
  public static func parse(_ bytes: [UInt8]) -> JSONValue? {
    try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
  }

  public subscript(key: String) -> JSONValue? {
    if case .object(let object) = self { return object[key] }
    return nil
  }

  public var string: String? {
    if case .string(let text) = self { return text }
    return nil
  }

  public var array: [JSONValue]? {
    if case .array(let items) = self { return items }
    return nil
  }

  public var object: [String: JSONValue]? {
    if case .object(let object) = self { return object }
    return nil
  }

  /// Why a value is not a count (`count` is nil): a negative number, a whole number past
  /// 64 bits, or something else.
  public var countProblem: Values.Problem {
    switch self {
    case .number(let number) where number < 0: return .negative
    case .number(let number) where number == number.rounded(): return .outOfRange
    case .string(let text):
      let digits = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
      guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return .notAnInteger }
      return text.hasPrefix("-") ? .negative : .outOfRange
    default: return .notAnInteger
    }
  }

  /// A count written as a number or as a string of digits (platforms do both).
  public var count: UInt64? {
    switch self {
    case .count(let value): return value
    case .string(let text): return UInt64(text)
    default: return nil
    }
  }
}

/// Collects one page's body up to a bound; a page past it is refused, never truncated.
public struct PageBuffer: Sendable {
  let limit: Int
  private(set) var bytes: [UInt8] = []

  public init(limit: Int) { self.limit = limit }

  mutating func append(_ chunk: UnsafeRawBufferPointer) throws(ExportError) {
    guard bytes.count + chunk.count <= limit else {
      throw ExportError("a page is larger than \(limit) bytes; ask for fewer items per page")
    }
    bytes.append(contentsOf: chunk)
  }

  mutating func take() -> [UInt8] {
    defer { bytes = [] }
    return bytes
  }
}

/// Values as platform APIs write them: ids as numbers or strings, counts and money as
/// strings, `"-"` for none.
public enum APIValues {
  /// An id an API writes as a number or a string (TikTok, Meta).
  public static func id(_ value: JSONValue?) -> String? {
    switch value {
    case .count(let number)?: return String(number)
    case .string(let text)? where !text.isEmpty && text != "-": return text
    default: return nil
    }
  }

  /// A count metric, a number or a string (`"10505.0"` is 10505); `"-"`, absent or null is
  /// unknown.
  public static func count(_ value: JSONValue?) -> Result<UInt64?, Values.Problem> {
    switch decimal(value) {
    case .success(nil): return .success(nil)
    case .success(let number?):
      guard number >= 0 else { return .failure(.negative) }
      var value = number
      var whole = Decimal()
      NSDecimalRound(&whole, &value, 0, .down)
      guard whole == number else { return .failure(.notAnInteger) }
      guard number <= Decimal(UInt64.max) else { return .failure(.outOfRange) }
      return .success(UInt64(truncating: number as NSDecimalNumber))
    case .failure(let reason): return .failure(reason)
    }
  }

  /// A money or rate metric, a decimal string; `"-"`, absent or null is unknown.
  public static func decimal(_ value: JSONValue?) -> Result<Decimal?, Values.Problem> {
    switch value {
    case nil, .null?: return .success(nil)
    case .count(let number)?: return .success(Decimal(number))
    case .string(let text)?:
      if text == "-" || text.isEmpty { return .success(nil) }
      guard let number = Values.decimal(text) else { return .failure(.notADecimal) }
      return .success(number)
    default: return .failure(.notADecimal)
    }
  }
}
