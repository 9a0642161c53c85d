import Foundation
import HaatCore
import HaatProtocol

/// One canonical record, as a connector hands it to the reports.
public enum CanonicalRecord: Sendable {
  case post(PostRecord)
  case order(OrderRecord)
  case review(ReviewRecord)
  case message(MessageRecord)
  case adInsight(AdInsightRecord)

  public var type: RecordType {
    switch self {
    case .post: return .post
    case .order: return .order
    case .review: return .review
    case .message: return .message
    case .adInsight: return .adInsight
    }
  }
}

/// One ad's results on one day (records.proto `AdInsight`). Money stays a decimal.
public struct AdInsightRecord: Sendable, Equatable {
  public var platform: String
  public var account: String
  /// "YYYY-MM-DD" in the ad account's time zone.
  public var date: String
  public var campaign: String
  public var ad: String
  /// nil: the platform did not say.
  public var spend: Decimal?
  public var impressions: UInt64?
  public var clicks: UInt64?
  public var conversions: UInt64?
  /// The return on ad spend the platform claims, by its own attribution.
  public var claimedRoas: Decimal?
}

/// Days a task read in full for one platform account. A later read of the same days (a
/// lookback window the platform has revised since) replaces what this one found.
public struct DayCoverage: Sendable, Equatable {
  public var platform: String
  public var account: String
  /// Day numbers (days since 1970-01-01), both ends included.
  public var days: ClosedRange<Int>

  public init(platform: String, account: String, days: ClosedRange<Int>) {
    self.platform = platform
    self.account = account
    self.days = days
  }
}

/// One product review from a store's review app (records.proto `Review`). The reviewer's
/// name, email and text are not kept: no report needs them.
public struct ReviewRecord: Sendable, Equatable {
  public var platform: String
  public var account: String
  public var id: String
  public var createdAt: Values.Timestamp
  /// 1 to 5 stars.
  public var rating: UInt8
  public var product: String
  /// Whether the app marks the reviewer a verified buyer; nil when the export does not say.
  public var verified: Bool?
  /// Pictures and videos attached.
  public var media: UInt32
  /// Whether the store replied.
  public var replied: Bool
  /// The app's moderation state, lowercased ("published", "spam", "pending", …); "" if none.
  public var status: String
}

/// One message of a conversation (records.proto `Message`): who wrote it, when. Its text is
/// not kept.
public struct MessageRecord: Sendable, Equatable {
  public enum Direction: String, Sendable {
    /// From the customer to the business.
    case inbound
    /// From the business to the customer.
    case outbound
  }

  public var platform: String
  public var account: String
  public var conversation: String
  public var id: String
  public var direction: Direction
  public var at: Values.Timestamp
}

/// One order of a web store (records.proto `Order`). Money stays a decimal string in its
/// currency: it is never rounded through a float.
public struct OrderRecord: Sendable, Equatable {
  public var platform: String
  public var account: String
  public var id: String
  public var createdAt: Values.Timestamp
  /// Empty for a guest order.
  public var customer: String
  public var total: Decimal
  public var totalText: String
  public var currency: String
  public var landingSite: String
  public var referringSite: String

  public init(
    platform: String, account: String, id: String, createdAt: Values.Timestamp, customer: String, total: Decimal,
    totalText: String, currency: String, landingSite: String,
    referringSite: String
  ) {
    self.platform = platform
    self.account = account
    self.id = id
    self.createdAt = createdAt
    self.customer = customer
    self.total = total
    self.totalText = totalText
    self.currency = currency
    self.landingSite = landingSite
    self.referringSite = referringSite
  }

  /// utm_source, utm_medium and utm_campaign of the landing site, percent-decoded: read
  /// when asked (by attribution, once per order), not kept in every order read.
  public var utm: (source: String, medium: String, campaign: String) { Self.utm(landingSite) }

  /// utm_source and utm_medium alone: what an order's channel is read from (the campaign,
  /// percent-decoded, costs a copy).
  public var utmSourceAndMedium: (source: String, medium: String) {
    let tags = Self.utm(landingSite, campaign: false)
    return (tags.0, tags.1)
  }
}
