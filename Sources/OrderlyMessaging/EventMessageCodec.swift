import Foundation
import OrderlyEventStore

public enum EventMessageError: Error, Sendable, CustomStringConvertible {
    case missingHeader(String)
    case badHeader(String, String)

    public var description: String {
        switch self {
        case .missingHeader(let name): "message has no \(name) header"
        case .badHeader(let name, let value): "message header \(name) has an unreadable value \(value)"
        }
    }
}

/// How an event travels on Kafka: the value is the event's JSON data as stored; everything else
/// (ids, type, versions, position, metadata) rides in headers, so consumers can route and drop
/// duplicates without parsing the value. The key is the order id (the correlation id), which keeps
/// one order's events in one partition, in order; a stream shared by orders names its own key
/// (`EventMetadata.partitionKey`).
public enum EventMessageCodec {
    public static func message(for event: RecordedEvent, topic: String) -> KafkaOutgoingMessage {
        let key = event.metadata.partitionKey ?? event.metadata.correlationId ?? event.streamID
        var headers: [(String, [UInt8])] = [
            ("event-id", Array(event.id.uuidString.lowercased().utf8)),
            ("event-type", Array(event.type.utf8)),
            ("schema-version", Array(String(event.schemaVersion).utf8)),
            ("stream-id", Array(event.streamID.utf8)),
            ("stream-version", Array(String(event.streamVersion).utf8)),
            ("position", Array(String(event.position).utf8)),
            ("transaction-id", Array(String(event.transactionID).utf8)),
            ("recorded-at", Array(String(event.recordedAt.timeIntervalSince1970).utf8)),
        ]
        if let value = event.metadata.correlationId { headers.append(("correlation-id", Array(value.utf8))) }
        if let value = event.metadata.causationId { headers.append(("causation-id", Array(value.utf8))) }
        if let value = event.metadata.actor { headers.append(("actor", Array(value.utf8))) }
        if let value = event.metadata.partitionKey { headers.append(("partition-key", Array(value.utf8))) }
        if let value = event.metadata.traceparent { headers.append(("traceparent", Array(value.utf8))) }
        return KafkaOutgoingMessage(topic: topic, key: Array(key.utf8), value: Array(event.data), headers: headers)
    }

    public static func event(from record: KafkaRecord) throws -> RecordedEvent {
        func required(_ name: String) throws -> String {
            guard let value = record.header(name) else { throw EventMessageError.missingHeader(name) }
            return value
        }
        func number<T: LosslessStringConvertible>(_ name: String, as type: T.Type) throws -> T {
            let text = try required(name)
            guard let value = T(text) else { throw EventMessageError.badHeader(name, text) }
            return value
        }
        let idText = try required("event-id")
        guard let id = UUID(uuidString: idText) else { throw EventMessageError.badHeader("event-id", idText) }
        return RecordedEvent(
            id: id, streamID: try required("stream-id"), streamVersion: try number("stream-version", as: Int64.self),
            position: try number("position", as: Int64.self), transactionID: try number("transaction-id", as: UInt64.self),
            type: try required("event-type"), schemaVersion: try number("schema-version", as: Int.self), data: Data(record.value),
            metadata: EventMetadata(
                correlationId: record.header("correlation-id"), causationId: record.header("causation-id"),
                actor: record.header("actor"), partitionKey: record.header("partition-key"), traceparent: record.header("traceparent")),
            recordedAt: Date(timeIntervalSince1970: try number("recorded-at", as: Double.self))
        )
    }
}
