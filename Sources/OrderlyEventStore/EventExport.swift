import Foundation
import OrderlyDomain

/// How events leave Orderly for analysts: the JSON shape of the events API and of JSON Lines exports,
/// and the CSV rows. Events come out in their type's current schema version (older ones go through
/// `EventCodec.upcast`), so every consumer of history reads one shape per type.
public enum EventExportFormat: String, Sendable, CaseIterable {
    case jsonLines = "jsonl"
    case csv
}

public enum EventJSON {
    /// The event as the current schema version, with its secrets withheld (`withheld`). An event that
    /// cannot be upcast (a broken row) comes out as stored, with its stored version, rather than
    /// being dropped from history.
    public static func current(_ event: RecordedEvent) -> RecordedEvent {
        let stored = EncodedEvent(type: event.type, schemaVersion: event.schemaVersion, data: event.data)
        guard let upcast = try? EventCodec.upcast(stored), upcast.schemaVersion != event.schemaVersion else { return Self.withheld(event) }
        var current = event
        current.schemaVersion = upcast.schemaVersion
        current.data = upcast.data
        return Self.withheld(current)
    }

    /// What stands in for a withheld secret: the field keeps its place and type, so the event
    /// still reads as its type.
    public static let withheldValue = "withheld"

    /// The payment token is a secret for the payment service, not history: the events API, exports,
    /// `orders history` and the console get `withheldValue` in its place, in the two events that
    /// carry it (OrderPlaced, PaymentRequested). Personal data needs no such step: events hold it
    /// only sealed.
    static func withheld(_ event: RecordedEvent) -> RecordedEvent {
        let data: Data?
        switch event.type {
        case OrderPlaced.typeName:
            data = Self.reencoded(event.data, as: OrderPlaced.self) { $0.payment.token = Self.withheldValue }
        case PaymentRequested.typeName:
            data = Self.reencoded(event.data, as: PaymentRequested.self) { $0.paymentToken = Self.withheldValue }
        default:
            return event
        }
        guard let data else { return event }
        var shown = event
        shown.data = data
        return shown
    }

    private static func reencoded<Payload: EventPayload>(_ data: Data, as type: Payload.Type, _ change: (inout Payload) -> Void) -> Data? {
        guard var payload = try? EventCodec.makeDecoder().decode(Payload.self, from: data) else { return nil }
        change(&payload)
        return try? EventCodec.makeEncoder().encode(payload)
    }

    /// `{"position", "eventId", "streamId", "streamVersion", "type", "schemaVersion", "recordedAt",
    /// "metadata": {...}, "data": {...}}`; `data` is the event's JSON as stored (or upcast).
    public static func write(_ event: RecordedEvent, to json: inout JSONWriter) {
        let event = Self.current(event)
        json.object { json in
            json.field("position", event.position)
            json.field("eventId", event.id)
            json.field("streamId", event.streamID)
            json.field("streamVersion", event.streamVersion)
            json.field("type", event.type)
            json.field("schemaVersion", Int64(event.schemaVersion))
            json.field("recordedAt", event.recordedAt)
            json.key("metadata")
            json.object { json in
                json.field("correlationId", event.metadata.correlationId)
                json.field("causationId", event.metadata.causationId)
                json.field("actor", event.metadata.actor)
            }
            json.key("data")
            json.raw(event.data)
        }
    }

    public static func bytes(_ event: RecordedEvent) -> [UInt8] {
        var json = JSONWriter(capacity: 512)
        Self.write(event, to: &json)
        return json.bytes
    }
}

/// Writes events one after another in an export format into a byte buffer that the caller drains
/// (to a file, stdout, a socket) whenever it grows past a threshold: memory stays flat.
public struct EventExportWriter: Sendable {
    public let format: EventExportFormat
    private var json = JSONWriter(capacity: 1 << 20)

    public static let csvHeader =
        "position,event_id,stream_id,stream_version,type,schema_version,recorded_at,correlation_id,causation_id,actor,data\n"

    public init(format: EventExportFormat) {
        self.format = format
    }

    /// What is written so far and not yet taken.
    public var pending: Int { self.json.bytes.count }

    public mutating func header() {
        if self.format == .csv { self.json.text(Self.csvHeader.utf8) }
    }

    public mutating func append(_ event: RecordedEvent) {
        switch self.format {
        case .jsonLines:
            EventJSON.write(event, to: &self.json)
            self.json.text([UInt8(ascii: "\n")])
        case .csv:
            let event = EventJSON.current(event)
            var row = "\(event.position),\(event.id.uuidString.lowercased()),\(Self.csvField(event.streamID)),\(event.streamVersion),"
            row += "\(Self.csvField(event.type)),\(event.schemaVersion),\(UTCTime.iso8601(event.recordedAt)),"
            row += "\(Self.csvField(event.metadata.correlationId ?? "")),\(Self.csvField(event.metadata.causationId ?? "")),"
            row += "\(Self.csvField(event.metadata.actor ?? "")),"
            self.json.text(row.utf8)
            self.json.text(Self.csvQuoted(event.data))
            self.json.text([UInt8(ascii: "\n")])
        }
    }

    /// Hands over what was written and starts an empty buffer (keeping its capacity).
    public mutating func take(_ body: ([UInt8]) throws -> Void) rethrows {
        try body(self.json.bytes)
        self.json.removeAll()
    }

    /// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.
    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func csvQuoted(_ bytes: Data) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "\"")]
        out.reserveCapacity(bytes.count + 8)
        for byte in bytes {
            if byte == UInt8(ascii: "\"") { out.append(byte) }
            out.append(byte)
        }
        out.append(UInt8(ascii: "\""))
        return out
    }
}
