/// Every connector this build has. The one list a new platform is added to.
public enum Connectors {
  public static let all: [any Connector.Type] = [
    CanonicalExportConnector.self,
    NoopConnector.self,
    FacebookPostsConnector.self,
    InstagramMediaConnector.self,
    ShopifyOrdersConnector.self,
    TableExportConnector<ReviewsExport>.self,
    TableExportConnector<MessagesExport>.self,
    TikTokAdsConnector.self,
    LinkedInPostsConnector.self,
    YouTubeVideosConnector.self,
    MetaAdsConnector.self,
    TableExportConnector<ShopifyOrdersExport>.self,
    TableExportConnector<OrdersExport>.self,
    TableExportConnector<AdInsightsExport>.self,
    PinterestPinsConnector.self,
  ]

  private static let byName: [String: any Connector.Type] = Dictionary(
    uniqueKeysWithValues: all.map { ($0.kind.name, $0) })

  static func connector(named name: String) -> (any Connector.Type)? { byName[name] }

  /// The kinds, for messages: "noop, posts".
  public static var kindList: String { all.map { $0.kind.name }.sorted().joined(separator: ", ") }
}
