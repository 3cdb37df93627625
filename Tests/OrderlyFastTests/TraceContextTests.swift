import Foundation
import OrderlyEventStore
import OrderlyServices
import Testing

/// The rules by which a trace travels with events (the spans themselves are checked end to end by
/// scripts/trace-test against every real process).
@Suite struct TraceContextTests {
    @Test func onlyATraceparentWithItsSampledFlagIsSampled() {
        #expect(TraceContext.isSampled("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
        #expect(TraceContext.isSampled("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03"))
        #expect(!TraceContext.isSampled("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"))
        #expect(!TraceContext.isSampled("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02"))
        #expect(!TraceContext.isSampled("garbage"))
        #expect(!TraceContext.isSampled(""))
    }

    @Test func anEventCausedByAnotherContinuesItsTrace() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let cause = RecordedEvent(
            id: UUID(), streamID: "order-1", streamVersion: 1, position: 7, transactionID: 1, type: "OrderPlaced", schemaVersion: 1,
            data: Data("{}".utf8),
            metadata: EventMetadata(correlationId: "o-1", traceparent: traceparent), recordedAt: Date())
        let caused = cause.causing(actor: "inventory")
        #expect(caused.traceparent == traceparent)
        #expect(caused.correlationId == "o-1")
        #expect(caused.causationId == cause.id.uuidString.lowercased())
        let untraced = RecordedEvent(
            id: UUID(), streamID: "order-2", streamVersion: 1, position: 8, transactionID: 1, type: "OrderPlaced", schemaVersion: 1,
            data: Data("{}".utf8),
            metadata: EventMetadata(correlationId: "o-2"), recordedAt: Date())
        #expect(untraced.causing(actor: "inventory").traceparent == nil)
    }
}
