/// This build's version, reported in handshakes and `haat --version`.
public enum HaatVersion {
  public static let current = "0.1.0"
}
