import Foundation

/// A small JSON writer for the hottest documents (the order view, exported events): Foundation's
/// `JSONEncoder` took a fifth of the projector's CPU (perf), which on 2 cores it takes from the
/// document server. What it writes decodes to the same value (a test holds the two encoders equal).
public struct JSONWriter: Sendable {
    public internal(set) var bytes: [UInt8] = []
    private var needsComma = false

    public init(capacity: Int = 1024) {
        self.bytes.reserveCapacity(capacity)
    }

    public mutating func object(_ body: (inout JSONWriter) -> Void) {
        self.separate()
        self.bytes.append(UInt8(ascii: "{"))
        self.needsComma = false
        body(&self)
        self.bytes.append(UInt8(ascii: "}"))
        self.needsComma = true
    }

    public mutating func array<Element>(_ elements: [Element], _ write: (inout JSONWriter, Element) -> Void) {
        self.separate()
        self.bytes.append(UInt8(ascii: "["))
        self.needsComma = false
        for element in elements { write(&self, element) }
        self.bytes.append(UInt8(ascii: "]"))
        self.needsComma = true
    }

    /// A key; the next value written is its value.
    public mutating func key(_ key: String) {
        self.separate()
        self.writeString(key)
        self.bytes.append(UInt8(ascii: ":"))
        self.needsComma = false
    }

    public mutating func value(_ value: String) {
        self.separate()
        self.writeString(value)
        self.needsComma = true
    }

    public mutating func value(_ value: Int64) {
        self.separate()
        self.bytes.append(contentsOf: String(value).utf8)
        self.needsComma = true
    }

    public mutating func field(_ key: String, _ value: String) {
        self.key(key)
        self.value(value)
    }

    public mutating func field(_ key: String, _ value: Int64) {
        self.key(key)
        self.value(value)
    }

    /// Written only when present, like `JSONEncoder` does with optionals.
    public mutating func field(_ key: String, _ value: String?) {
        if let value { self.field(key, value) }
    }

    public mutating func field(_ key: String, _ value: Int64?) {
        if let value { self.field(key, value) }
    }

    private mutating func separate() {
        if self.needsComma { self.bytes.append(UInt8(ascii: ",")) }
    }

    private mutating func writeString(_ text: String) {
        self.bytes.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { utf8 in
            // Most strings (keys, ids, times) need no escaping: one bulk copy.
            if !utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
                self.bytes.append(contentsOf: utf8)
                return
            }
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "\""): self.bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
                case UInt8(ascii: "\\"): self.bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case 0..<0x20:
                    self.bytes.append(contentsOf: Array("\\u00".utf8) + [Self.hexDigits[Int(byte >> 4)], Self.hexDigits[Int(byte & 0xf)]])
                default: self.bytes.append(byte)
                }
            }
        }
        self.bytes.append(UInt8(ascii: "\""))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// A UUID as JSON text, lowercase, without going through `uuidString` (which formats with printf).
    public mutating func value(_ id: UUID) {
        self.separate()
        self.bytes.append(UInt8(ascii: "\""))
        withUnsafeBytes(of: id.uuid) { raw in
            for (index, byte) in raw.enumerated() {
                if index == 4 || index == 6 || index == 8 || index == 10 { self.bytes.append(UInt8(ascii: "-")) }
                self.bytes.append(Self.hexDigits[Int(byte >> 4)])
                self.bytes.append(Self.hexDigits[Int(byte & 0xf)])
            }
        }
        self.bytes.append(UInt8(ascii: "\""))
        self.needsComma = true
    }

    /// A time as ISO 8601 text (`UTCTime.iso8601`).
    public mutating func field(_ key: String, _ date: Date) {
        self.key(key)
        self.separate()
        self.bytes.append(UInt8(ascii: "\""))
        UTCTime.appendISO8601(date, to: &self.bytes)
        self.bytes.append(UInt8(ascii: "\""))
        self.needsComma = true
    }

    public mutating func field(_ key: String, _ value: UUID) {
        self.key(key)
        self.value(value)
    }

    /// Already encoded JSON (a stored event's data), written as it is.
    public mutating func raw(_ json: some Sequence<UInt8>) {
        self.separate()
        self.bytes.append(contentsOf: json)
        self.needsComma = true
    }

    public mutating func field(_ key: String, _ value: Bool) {
        self.key(key)
        self.separate()
        self.bytes.append(contentsOf: (value ? "true" : "false").utf8)
        self.needsComma = true
    }

    /// Bytes outside any JSON value (a line break between JSON Lines, a CSV row): no comma before
    /// them, none after.
    public mutating func text(_ bytes: some Sequence<UInt8>) {
        self.bytes.append(contentsOf: bytes)
        self.needsComma = false
    }

    /// Starts over with the same storage (a writer reused line after line).
    public mutating func removeAll() {
        self.bytes.removeAll(keepingCapacity: true)
        self.needsComma = false
    }
}
