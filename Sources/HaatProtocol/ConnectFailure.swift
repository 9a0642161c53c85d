import Foundation
import NIOCore
import NIOPosix

/// Why a connection to the coordinator could not be made, as a person reads it ("Connection
/// refused"), not NIO's nested dump of every address tried.
public enum ConnectFailure {
  public static func describe(_ error: any Error) -> String {
    if let connection = error as? NIOConnectionError {
      if let first = connection.connectionErrors.first { return describe(first.error) }
      if let lookup = connection.dnsAError ?? connection.dnsAAAAError {
        return "cannot resolve \(connection.host): \(lookup)"
      }
      return "no address for \(connection.host)"
    }
    if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
    if let channel = error as? ChannelError, case .connectTimeout(let after) = channel {
      return "no answer within \(after.nanoseconds / 1_000_000) ms"
    }
    return "\(error)"
  }
}
