import Foundation
import NIOCore
import NIOPosix

/// Why a connection could not be made or a port listened on, as a person reads it
/// ("Connection refused", "Address already in use"), not NIO's nested dump of every address
/// tried or its `bind(descriptor:ptr:bytes:): …) (errno: 98)`.
public enum SocketFailure {
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
