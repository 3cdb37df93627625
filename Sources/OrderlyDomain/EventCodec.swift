import Foundation

/// An event in the form the event store keeps: a type name, a schema version and JSON data.
public struct EncodedEvent: Sendable, Equatable {
    public var type: String
    public var schemaVersion: Int
    public var data: Data

    public init(type: String, schemaVersion: Int, data: Data) {
        self.type = type
        self.schemaVersion = schemaVersion
        self.data = data
    }
}

public enum EventDecodingError: Error, Sendable, Equatable {
    case unknownType(String)
    case unsupportedSchemaVersion(type: String, version: Int)
    case malformed(type: String, reason: String)
}

/// Turns domain events into stored events and back. Dates are ISO 8601 with fractional seconds, so
/// the stored JSON reads well in SQL and in exports.
public enum EventCodec {
    public static func encode(_ event: DomainEvent) throws -> EncodedEvent {
        let payload = event.payload
        return EncodedEvent(type: type(of: payload).typeName, schemaVersion: type(of: payload).schemaVersion, data: try makeEncoder().encode(payload))
    }

    private static let payloadTypesByName: [String: any EventPayload.Type] = Dictionary(
        uniqueKeysWithValues: DomainEvent.payloadTypes.map { ($0.typeName, $0) })

    /// The domain event; `upcasters` are those of this build unless a reader brings others.
    public static func decode(_ encoded: EncodedEvent, upcasters: UpcasterChain = .standard) throws(EventDecodingError) -> DomainEvent {
        guard let payloadType = payloadTypesByName[encoded.type] else { throw .unknownType(encoded.type) }
        return try decodePayload(payloadType, try upcast(encoded, upcasters: upcasters)).asEvent
    }

    /// The event in its type's current schema version: older versions go through their upcasters one
    /// step at a time; the current version comes back untouched (no decoding). Unknown types are
    /// returned as they are; a version newer than this build knows, or one with no upcaster, is an error.
    public static func upcast(_ encoded: EncodedEvent, upcasters: UpcasterChain = .standard) throws(EventDecodingError) -> EncodedEvent {
        guard let payloadType = payloadTypesByName[encoded.type] else { return encoded }
        let current = payloadType.schemaVersion
        if encoded.schemaVersion == current { return encoded }
        guard encoded.schemaVersion < current else {
            throw .unsupportedSchemaVersion(type: encoded.type, version: encoded.schemaVersion)
        }
        var event = encoded
        while event.schemaVersion < current {
            guard let step = upcasters.step(from: event.schemaVersion, of: event.type) else {
                throw .unsupportedSchemaVersion(type: encoded.type, version: encoded.schemaVersion)
            }
            do {
                event = EncodedEvent(type: event.type, schemaVersion: event.schemaVersion + 1, data: try step.upcast(event.data))
            } catch {
                throw .malformed(type: event.type, reason: "version \(event.schemaVersion) cannot be upcast: \(error)")
            }
        }
        return event
    }

    /// Decodes a stored event, or returns nil for a type this version of Orderly does not know.
    public static func decodeIfKnown(
        type: String, schemaVersion: Int, data: Data, upcasters: UpcasterChain = .standard
    ) throws(EventDecodingError) -> DomainEvent? {
        do {
            return try decode(EncodedEvent(type: type, schemaVersion: schemaVersion, data: data), upcasters: upcasters)
        } catch .unknownType {
            return nil
        }
    }

    private static func decodePayload<T: Decodable>(_ type: T.Type, _ encoded: EncodedEvent) throws(EventDecodingError) -> T {
        do {
            return try makeDecoder().decode(type, from: encoded.data)
        } catch {
            throw .malformed(type: encoded.type, reason: String(describing: error))
        }
    }

    public static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(UTCTime.iso8601(date))
        }
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    public static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            if let date = UTCTime.parse(text) { return date }
            if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) {
                return date
            }
            if let date = try? Date(text, strategy: Date.ISO8601FormatStyle()) {
                return date
            }
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an ISO 8601 date: \(text)")
        }
        return decoder
    }
}
