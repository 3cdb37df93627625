import Foundation
import OrderlyDomain
import OrderlyEventStore

/// Recorded events made by hand, for feeding projections directly.
public enum TestEvents {
    public static func recorded(
        _ event: DomainEvent, stream: String, version: Int64, position: Int64, correlation: String? = nil, at: Date = Date()
    ) throws -> RecordedEvent {
        let encoded = try EventCodec.encode(event)
        return RecordedEvent(
            id: UUID(), streamID: stream, streamVersion: version, position: position, transactionID: UInt64(position), type: encoded.type,
            schemaVersion: encoded.schemaVersion, data: encoded.data, metadata: EventMetadata(correlationId: correlation), recordedAt: at)
    }
}
