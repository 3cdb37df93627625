/// A stable 64-bit FNV-1a checksum of bytes, as 16 hex digits: the same across processes, builds
/// and restarts (Swift's `Hasher` is seeded per process). For noticing that content changed (a
/// migration file edited after it was applied, a console file's ETag), not against tampering.
public enum Checksum {
    public static func fnv1a64<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let hex = String(self.fnv1a64Value(bytes), radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    public static func fnv1a64Value<Bytes: Sequence>(_ bytes: Bytes) -> UInt64 where Bytes.Element == UInt8 {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            value ^= UInt64(byte)
            value &*= 0x0000_0100_0000_01B3
        }
        return value
    }
}
