import Foundation
import OrderlyDomain

/// A small JSON writer for the hottest document, the order view: Foundation's `JSONEncoder` took a
/// fifth of the projector's CPU (perf), which on 2 cores it takes from the document server. What it
/// writes decodes to the same value (a test holds the two encoders equal).
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    private var needsComma = false

    init(capacity: Int = 1024) {
        self.bytes.reserveCapacity(capacity)
    }

    mutating func object(_ body: (inout JSONWriter) -> Void) {
        self.separate()
        self.bytes.append(UInt8(ascii: "{"))
        self.needsComma = false
        body(&self)
        self.bytes.append(UInt8(ascii: "}"))
        self.needsComma = true
    }

    mutating func array<Element>(_ elements: [Element], _ write: (inout JSONWriter, Element) -> Void) {
        self.separate()
        self.bytes.append(UInt8(ascii: "["))
        self.needsComma = false
        for element in elements { write(&self, element) }
        self.bytes.append(UInt8(ascii: "]"))
        self.needsComma = true
    }

    /// A key; the next value written is its value.
    mutating func key(_ key: String) {
        self.separate()
        self.writeString(key)
        self.bytes.append(UInt8(ascii: ":"))
        self.needsComma = false
    }

    mutating func value(_ value: String) {
        self.separate()
        self.writeString(value)
        self.needsComma = true
    }

    mutating func value(_ value: Int64) {
        self.separate()
        self.bytes.append(contentsOf: String(value).utf8)
        self.needsComma = true
    }

    mutating func field(_ key: String, _ value: String) {
        self.key(key)
        self.value(value)
    }

    mutating func field(_ key: String, _ value: Int64) {
        self.key(key)
        self.value(value)
    }

    /// Written only when present, like `JSONEncoder` does with optionals.
    mutating func field(_ key: String, _ value: String?) {
        if let value { self.field(key, value) }
    }

    mutating func field(_ key: String, _ value: Int64?) {
        if let value { self.field(key, value) }
    }

    private mutating func separate() {
        if self.needsComma { self.bytes.append(UInt8(ascii: ",")) }
    }

    private mutating func writeString(_ text: String) {
        self.bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): self.bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): self.bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                self.bytes.append(contentsOf: Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xf)]])
            default: self.bytes.append(byte)
            }
        }
        self.bytes.append(UInt8(ascii: "\""))
    }
}

/// Views that write their own JSON (the same fields `Codable` would).
protocol JSONWritable {
    func write(to writer: inout JSONWriter)
}

extension OrderView: JSONWritable {
    func write(to writer: inout JSONWriter) {
        writer.object { json in
            json.field("orderId", self.orderId)
            json.field("customerId", self.customerId)
            json.field("status", self.status)
            json.field("currency", self.currency)
            json.key("lines")
            json.array(self.lines) { json, line in
                json.object { json in
                    json.field("sku", line.sku)
                    json.field("quantity", Int64(line.quantity))
                    json.field("unitPrice", line.unitPrice)
                }
            }
            json.field("total", self.total)
            json.field("placedAt", self.placedAt)
            json.field("updatedAt", self.updatedAt)
            json.key("timeline")
            json.array(self.timeline) { json, entry in
                json.object { json in
                    json.field("type", entry.type)
                    json.field("at", entry.at)
                    json.field("position", entry.position)
                }
            }
            json.field("cancellationReason", self.cancellationReason)
            if let payment = self.payment {
                json.key("payment")
                json.object { json in
                    json.field("status", payment.status)
                    json.field("amount", payment.amount)
                    json.field("reason", payment.reason)
                }
            }
            if let notified = self.notified {
                json.key("notified")
                json.array(notified) { json, outcome in json.value(outcome) }
            }
            json.field("version", self.version)
            json.field("position", self.position)
            if let applied = self.applied {
                json.key("applied")
                json.object { json in
                    for (stream, version) in applied.sorted(by: { $0.key < $1.key }) { json.field(stream, version) }
                }
            }
            json.field("revision", self.revision)
            json.field("statusChangedAt", self.statusChangedAt)
            json.field("pageKey", self.pageKey)
            json.field("placedAtMs", self.placedAtMs)
        }
    }
}
