import Foundation

/// UUIDs made from the standard library's system generator. Foundation's `UUID()` on Linux opens,
/// reads and closes /dev/urandom for every one: three system calls and a file descriptor, a visible
/// share of an append's CPU when every event, order and command needs one.
public enum Identifiers {
    /// A random UUID (version 4).
    public static func random() -> UUID {
        var generator = SystemRandomNumberGenerator()
        return self.uuid(high: generator.next(), low: generator.next(), version: 4)
    }

    /// A time-ordered UUID (version 7, RFC 9562): the milliseconds since 1970 first, then random bits.
    /// Event ids are made this way so that new ids land at the right edge of the `event_id` index
    /// instead of on a random page of it.
    public static func timeOrdered(at date: Date = Date()) -> UUID {
        var generator = SystemRandomNumberGenerator()
        let milliseconds = UInt64(max(0, (date.timeIntervalSince1970 * 1000).rounded(.down)))
        let random: UInt64 = generator.next()
        let high = (milliseconds << 16) | (random & 0xFFFF)
        return self.uuid(high: high, low: generator.next(), version: 7)
    }

    /// The 16 bytes, big-endian, with the version nibble and the RFC 4122 variant bits set.
    private static func uuid(high: UInt64, low: UInt64, version: UInt64) -> UUID {
        let high = (high & ~0xF000) | (version << 12)
        let low = (low & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        func byte(_ word: UInt64, _ index: Int) -> UInt8 { UInt8(truncatingIfNeeded: word >> (56 - 8 * index)) }
        return UUID(
            uuid: (
                byte(high, 0), byte(high, 1), byte(high, 2), byte(high, 3), byte(high, 4), byte(high, 5), byte(high, 6), byte(high, 7),
                byte(low, 0), byte(low, 1), byte(low, 2), byte(low, 3), byte(low, 4), byte(low, 5), byte(low, 6), byte(low, 7)
            ))
    }
}
