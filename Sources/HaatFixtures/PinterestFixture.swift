import Foundation
import Synchronization

/// Pinterest's API v5 `GET /v5/pins` as the fixture server plays it, under
/// `/pinterest/v5/pins`: `{"items": […], "bookmark": …|null}` from Pinterest's OpenAPI
/// description (docs/fixtures.md), pins generated from the token's account, `page_size` up
/// to 250, an opaque `bookmark`, `pin_metrics` only with `pin_metrics=true`, 401 and 429 as
/// `{"code", "message"}` (429 without Retry-After).
public final class PinterestFixture: Sendable {
  public struct Settings: Sendable {
    public var pinsPerAccount = 120
    /// Token → the account whose pins it reads.
    public var tokens: [String: String] = ["fixture-pinterest-token": "dhaka_threads"]
    /// Requests (counted from 1 over the fixture's life) answered 429.
    public var throttledRequests: Set<Int> = []
    public init() {}
  }

  public let settings = Mutex(Settings())
  private let requestCount = Atomic<Int>(0)

  init() {}

  public struct Pin: Sendable, Equatable {
    public var id: String
    public var createdEpoch: Int64
    public var mediaType: String
    /// nil: the pin has no metrics yet.
    public var impressions: UInt64?
    public var clicks: UInt64
    public var reactions: UInt64
    public var comments: UInt64
    public var saves: UInt64
  }

  public static func pin(account: String, index: Int) -> Pin {
    let salt = UInt64(account.utf8.reduce(0) { ($0 &* 31 &+ Int($1)) & 0xFFFF })
    let seed = UInt64(index) &* 7_919 &+ salt
    let types = ["image", "video", "multiple_images", "image"]
    return Pin(
      id: "81374422642\(100_000 + index)", createdEpoch: 1_780_000_000 - Int64(index) * 5_400,
      mediaType: types[index % types.count], impressions: index % 17 == 5 ? nil : 100 + seed % 9_000,
      clicks: seed % 300, reactions: seed % 120, comments: seed % 15, saves: seed % 40)
  }

  func answer(path: String, query: [String: String], authorization: String) -> (Int, [(String, String)], String) {
    let settings = self.settings.withLock { $0 }
    let json = ("Content-Type", "application/json")
    let number = requestCount.add(1, ordering: .relaxed).newValue
    guard authorization.hasPrefix("Bearer "), let account = settings.tokens[String(authorization.dropFirst(7))] else {
      return (401, [json], #"{"code":2,"message":"Authentication failed."}"#)
    }
    if settings.throttledRequests.contains(number) {
      return (
        429, [json],
        #"{"code":29,"message":"You have exceeded your rate limit. Try again later."}"#
      )
    }
    guard path == "/pinterest/v5/pins" else { return (404, [json], #"{"code":404,"message":"Not found"}"#) }
    let size = min(250, max(1, Int(query["page_size"] ?? "") ?? 25))
    var offset = 0
    if let bookmark = query["bookmark"] {
      guard let text = Data(base64Encoded: bookmark).flatMap({ String(data: $0, encoding: .utf8) }),
        text.hasPrefix("off:"), let at = pagingCount(text.dropFirst(4))
      else { return (400, [json], #"{"code":1,"message":"Invalid parameters: bookmark"}"#) }
      offset = at
    }
    let end = min(settings.pinsPerAccount, offset + size)
    let metrics = query["pin_metrics"] == "true"
    let items = (offset..<max(offset, end)).map { index -> String in
      let pin = Self.pin(account: account, index: index)
      let formatter = ISO8601DateFormatter()
      formatter.formatOptions = [.withFullDate, .withFullTime, .withColonSeparatorInTime]
      formatter.timeZone = TimeZone(identifier: "UTC")
      // Pinterest's date-time without an offset.
      let created = String(
        formatter.string(from: Date(timeIntervalSince1970: TimeInterval(pin.createdEpoch))).prefix(19))
      var text =
        #"{"id":"\#(pin.id)","created_at":"\#(created)","board_owner":{"username":"\#(account)"},"media":{"media_type":"\#(pin.mediaType)"}"#
      if metrics, let impressions = pin.impressions {
        text +=
          #","pin_metrics":{"90d":{"pin_click":\#(pin.clicks),"impression":\#(impressions)},"lifetime_metrics":{"pin_click":\#(pin.clicks),"impression":\#(impressions),"reaction":\#(pin.reactions),"comment":\#(pin.comments),"save":\#(pin.saves)}}"#
      }
      return text + "}"
    }
    let bookmark =
      end < settings.pinsPerAccount ? "\"" + Data("off:\(end)".utf8).base64EncodedString() + "\"" : "null"
    return (200, [json], #"{"items":[\#(items.joined(separator: ","))],"bookmark":\#(bookmark)}"#)
  }
}
