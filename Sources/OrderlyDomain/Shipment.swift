import Foundation

/// What a carrier is asked to ship: the order, who it is for and where it goes (opened from the
/// order's sealed personal data just before booking, never stored in this form).
public struct ShipmentBooking: Sendable, Equatable {
    public var orderId: String
    public var recipient: CustomerDetails?
    public var address: ShippingAddress

    public init(orderId: String, recipient: CustomerDetails?, address: ShippingAddress) {
        self.orderId = orderId
        self.recipient = recipient
        self.address = address
    }
}

/// A carrier's answer to a booking: it takes the parcel (its name and tracking number), or refuses.
public enum CarrierBooking: Sendable, Equatable {
    case accepted(carrier: String, trackingNumber: String)
    case refused(reason: String)
}

/// An update a carrier reports about a shipment, with its own id: the same id again is the same
/// update (carriers resend), recorded once.
public struct CarrierUpdate: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case dispatched(carrier: String, trackingNumber: String)
        case delivered
        case failed(reason: String)
    }

    public var eventId: String
    public var kind: Kind
    public var occurredAt: Date

    public init(eventId: String, kind: Kind, occurredAt: Date) {
        self.eventId = eventId
        self.kind = kind
        self.occurredAt = occurredAt
    }
}

extension CarrierUpdate {
    /// An update as a carrier sends it (`type` DISPATCHED, DELIVERED or FAILED; `occurredAt` RFC 3339,
    /// default `now`), checked: the field that breaks a rule is named.
    public static func parse(
        eventId: String, type: String, carrier: String?, trackingNumber: String?, reason: String?, occurredAt: String?, now: Date
    ) throws(ValidationError) -> CarrierUpdate {
        try IdentifierRules.check(eventId, field: "eventId")
        var at = now
        if let occurredAt {
            // A time with its offset (a bare day is not when something happened).
            guard occurredAt.contains("T"), let parsed = UTCTime.parseInput(occurredAt) else {
                throw ValidationError(field: "occurredAt", reason: "must be an RFC 3339 time such as 2026-12-04T10:00:00Z")
            }
            at = parsed
        }
        switch type {
        case "DISPATCHED":
            guard let carrier else { throw ValidationError(field: "carrier", reason: "is required for DISPATCHED") }
            guard let trackingNumber else { throw ValidationError(field: "trackingNumber", reason: "is required for DISPATCHED") }
            try IdentifierRules.check(carrier, field: "carrier")
            try IdentifierRules.check(trackingNumber, field: "trackingNumber")
            return CarrierUpdate(eventId: eventId, kind: .dispatched(carrier: carrier, trackingNumber: trackingNumber), occurredAt: at)
        case "DELIVERED":
            return CarrierUpdate(eventId: eventId, kind: .delivered, occurredAt: at)
        case "FAILED":
            guard let reason else { throw ValidationError(field: "reason", reason: "is required for FAILED (e.g. UNDELIVERABLE)") }
            try IdentifierRules.check(reason, field: "reason")
            return CarrierUpdate(eventId: eventId, kind: .failed(reason: reason), occurredAt: at)
        default:
            throw ValidationError(field: "type", reason: "must be DISPATCHED, DELIVERED or FAILED")
        }
    }
}

/// Why a carrier's update cannot be recorded.
public enum ShipmentUpdateError: Error, Sendable, Equatable {
    /// No shipment was requested for the order (unknown, unpaid, or skipped).
    case noShipment(orderId: String)
    /// The update contradicts what is recorded (delivered after a failure, failed after delivery).
    case conflict(orderId: String, status: Shipment.Status)
}

/// The Shipment aggregate of one order (`shipment-<orderId>`): requested once the order is paid,
/// dispatched by a carrier, then delivered or failed. One terminal state; each carrier update is
/// recorded once.
public struct Shipment: Aggregate, Equatable {
    public enum Status: String, Sendable, Codable, CaseIterable {
        case requested = "REQUESTED"
        case skipped = "SKIPPED"
        case dispatched = "DISPATCHED"
        case delivered = "DELIVERED"
        case failed = "FAILED"

        /// Whether the shipment is over: delivered, failed or skipped (nothing more will happen to it).
        public var hasEnded: Bool {
            switch self {
            case .skipped, .delivered, .failed: true
            case .requested, .dispatched: false
            }
        }
    }

    public private(set) var status: Status?
    public private(set) var orderId: String?
    public private(set) var customerId: String?
    public private(set) var carrier: String?
    public private(set) var trackingNumber: String?
    /// The carrier update ids already recorded: a resent update changes nothing.
    public private(set) var carrierEvents: Set<String> = []

    public init() {}

    public mutating func apply(_ event: DomainEvent) {
        switch event {
        case .shipmentRequested(let requested):
            self.status = .requested
            self.orderId = requested.orderId
            self.customerId = requested.customerId
        case .shipmentSkipped(let skipped):
            self.status = .skipped
            self.orderId = skipped.orderId
            self.customerId = skipped.customerId
        case .shipmentDispatched(let dispatched):
            self.status = .dispatched
            self.carrier = dispatched.carrier
            self.trackingNumber = dispatched.trackingNumber
            if let id = dispatched.carrierEventId { self.carrierEvents.insert(id) }
        case .shipmentDelivered(let delivered):
            self.status = .delivered
            if let id = delivered.carrierEventId { self.carrierEvents.insert(id) }
        case .shipmentFailed(let failed):
            self.status = .failed
            if let id = failed.carrierEventId { self.carrierEvents.insert(id) }
        default:
            break
        }
    }

    /// The order is paid: ship it, or record why it will not be (no address to ship to). Once.
    public func request(orderId: String, customerId: String, hasShippingAddress: Bool, at now: Date) -> [DomainEvent] {
        guard self.status == nil else { return [] }
        guard hasShippingAddress else {
            return [.shipmentSkipped(ShipmentSkipped(orderId: orderId, customerId: customerId, reason: "NO_SHIPPING_ADDRESS"))]
        }
        return [.shipmentRequested(ShipmentRequested(orderId: orderId, customerId: customerId, requestedAt: now))]
    }

    /// The carrier's answer to the booking, recorded once (a repeat after a crash books again: the
    /// carrier keys bookings by order id, and this records nothing the second time).
    public func record(_ booking: CarrierBooking, at now: Date) -> [DomainEvent] {
        guard self.status == .requested, let orderId, let customerId else { return [] }
        switch booking {
        case .accepted(let carrier, let trackingNumber):
            return [
                .shipmentDispatched(
                    ShipmentDispatched(orderId: orderId, customerId: customerId, carrier: carrier, trackingNumber: trackingNumber, dispatchedAt: now))
            ]
        case .refused(let reason):
            return [.shipmentFailed(ShipmentFailed(orderId: orderId, customerId: customerId, reason: reason, failedAt: now))]
        }
    }

    /// The shipment cannot be booked (e.g. the customer was forgotten): it fails before dispatch.
    public func fail(because reason: String, at now: Date) -> [DomainEvent] {
        guard self.status == .requested, let orderId, let customerId else { return [] }
        return [.shipmentFailed(ShipmentFailed(orderId: orderId, customerId: customerId, reason: reason, failedAt: now))]
    }

    /// A carrier's update. A resent update (same id) and one that restates what is recorded change
    /// nothing; one that contradicts it (delivered after failing, failed after delivery, delivered
    /// before dispatch, a dispatch by another carrier or under another tracking number) is refused.
    public func record(_ update: CarrierUpdate) throws(ShipmentUpdateError) -> [DomainEvent] {
        guard let status, status != .skipped, let orderId, let customerId else {
            throw .noShipment(orderId: self.orderId ?? "")
        }
        if self.carrierEvents.contains(update.eventId) { return [] }
        switch (update.kind, status) {
        case (.dispatched(let carrier, let trackingNumber), .requested):
            return [
                .shipmentDispatched(
                    ShipmentDispatched(
                        orderId: orderId, customerId: customerId, carrier: carrier, trackingNumber: trackingNumber,
                        dispatchedAt: update.occurredAt, carrierEventId: update.eventId))
            ]
        case (.dispatched(let carrier, let trackingNumber), .dispatched) where carrier == self.carrier && trackingNumber == self.trackingNumber:
            return []
        case (.delivered, .delivered), (.failed, .failed):
            return []
        case (.delivered, .dispatched):
            return [
                .shipmentDelivered(
                    ShipmentDelivered(orderId: orderId, customerId: customerId, deliveredAt: update.occurredAt, carrierEventId: update.eventId))
            ]
        case (.failed(let reason), .requested), (.failed(let reason), .dispatched):
            return [
                .shipmentFailed(
                    ShipmentFailed(
                        orderId: orderId, customerId: customerId, reason: reason, failedAt: update.occurredAt, carrierEventId: update.eventId))
            ]
        default:
            throw .conflict(orderId: orderId, status: status)
        }
    }
}
