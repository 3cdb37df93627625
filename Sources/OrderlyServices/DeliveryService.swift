import Foundation
import Metrics
import OrderlyDomain
import OrderlyEventStore
import OrderlyHandling

/// Where shipments are booked: the simulated carrier here, a real one in its place. `book` must be
/// idempotent per order id (after a crash the same booking comes again and must get the same
/// answer); a thrown error is taken as transient and retried, a refusal is a decision.
public protocol Carrier: Sendable {
    /// The name shipments it dispatched carry (`ShipmentDispatched.carrier`).
    var name: String { get }
    func book(_ booking: ShipmentBooking) async throws -> CarrierBooking
    /// The updates this carrier reports by itself about a parcel it took: the simulated carrier's
    /// whole journey at once. A real carrier returns none; its updates arrive at
    /// `POST /shipments/{orderId}/events`. `address` is nil when it can no longer be read (the
    /// customer was forgotten after the parcel left).
    func updates(trackingNumber: String, address: ShippingAddress?, at now: Date) -> [CarrierUpdate]
    /// Withdraws the booking made for the order, if the carrier holds one: the shipment failed at
    /// its booking deadline (refunded, units back on the shelf) while the carrier may have taken the
    /// booking, or did so after. Idempotent per order id; with no booking there is nothing to do. A
    /// thrown error is taken as transient and retried.
    func cancel(orderId: String) async throws
}

/// The simulated carrier. Its rules are deterministic and documented (README), so every delivery
/// path can be driven from the REST api, and a repeat after a crash decides the same way:
/// - postal code `00000`: the booking is refused (`ADDRESS_REFUSED`);
/// - postal code `99999`: dispatched, then reported undeliverable (`UNDELIVERABLE`);
/// - postal code `88888`: the booking never answers (a carrier that is down): each try ends at the
///   service's time limit, and the booking deadline fails the shipment (`BOOKING_DEADLINE_EXCEEDED`);
/// - any other address: dispatched (tracking number `SIM-<orderId>`), then delivered.
/// With `advancesByItself` off it only books: updates come through the api, as a real carrier's do.
public struct SimulatedCarrier: Carrier {
    public static let refusedPostalCode = "00000"
    public static let undeliverablePostalCode = "99999"
    public static let unansweredPostalCode = "88888"
    public let name = "SIMULATED"
    let advancesByItself: Bool

    public init(advancesByItself: Bool = true) {
        self.advancesByItself = advancesByItself
    }

    public func book(_ booking: ShipmentBooking) async throws -> CarrierBooking {
        if booking.address.postalCode == Self.refusedPostalCode { return .refused(reason: ShipmentFailureReason.addressRefused) }
        if booking.address.postalCode == Self.unansweredPostalCode {
            // Until the caller gives up (its time limit cancels this).
            while true { try await Task.sleep(for: .seconds(3600)) }
        }
        return .accepted(carrier: self.name, trackingNumber: "SIM-\(booking.orderId)")
    }

    public func updates(trackingNumber: String, address: ShippingAddress?, at now: Date) -> [CarrierUpdate] {
        guard self.advancesByItself else { return [] }
        if address?.postalCode == Self.undeliverablePostalCode {
            return [CarrierUpdate(eventId: "\(trackingNumber)-failed", kind: .failed(reason: ShipmentFailureReason.undeliverable), occurredAt: now)]
        }
        return [CarrierUpdate(eventId: "\(trackingNumber)-delivered", kind: .delivered, occurredAt: now)]
    }

    /// Nothing to withdraw: the simulated carrier keeps no bookings (its answers follow from the address).
    public func cancel(orderId: String) async throws {}
}

/// Records carriers' updates about shipments: from the api (`POST /shipments/{orderId}/events`,
/// role `carrier`) and from a carrier that advances by itself. A resent update records nothing.
public struct ShipmentCommands: Sendable {
    let aggregates: AggregateStore

    init(aggregates: AggregateStore) {
        self.aggregates = aggregates
    }

    public struct Recorded: Sendable, Equatable {
        public var orderId: String
        /// The shipment's status after the update.
        public var status: Shipment.Status
        /// False when the update changed nothing (resent, or restating what is recorded).
        public var recorded: Bool
    }

    /// Records `update` about the order's shipment. Throws `ShipmentUpdateError` when there is no
    /// shipment to update or the update contradicts what is recorded.
    public func record(_ update: CarrierUpdate, orderId: String, metadata: EventMetadata) async throws -> Recorded {
        let stream = StreamNames.shipment(orderId)
        var after: Shipment?
        let result = try await self.aggregates.update(stream, as: Shipment.self, metadata: metadata) { shipment throws(ShipmentUpdateError) in
            guard shipment.status != nil else { throw .noShipment(orderId: orderId) }
            let events = try shipment.record(update)
            var next = shipment
            for event in events { next.apply(event) }
            after = next
            return events
        }
        guard let status = after?.status else { throw ShipmentUpdateError.noShipment(orderId: orderId) }
        return Recorded(orderId: orderId, status: status, recorded: result != nil)
    }
}

/// Ships paid orders: asks for a shipment when an order completes, books it with the carrier (the
/// address opened from the order's sealed personal data just before booking, never stored open),
/// and records what a carrier that advances by itself reports. The fifth saga service.
public struct DeliveryService: EventHandler {
    static let actor = "delivery-service"
    let aggregates: AggregateStore
    let vault: PersonalDataVault
    let carrier: any Carrier
    /// How long a booking may take before it counts as a transient failure (and is retried).
    let carrierTimeLimit: Duration
    let now: @Sendable () -> Date

    public init(
        store: any EventStore, vault: PersonalDataVault, carrier: any Carrier, carrierTimeLimit: Duration = .seconds(10),
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.aggregates = AggregateStore(store: store)
        self.vault = vault
        self.carrier = carrier
        self.carrierTimeLimit = carrierTimeLimit
        self.now = now
    }

    /// OrderPlaced only to learn the order (see `AggregateStore.learn`): where it goes is then known
    /// without reading its stream.
    public static let handledTypes: Set<String> = [
        OrderPlaced.typeName, OrderCompleted.typeName, ShipmentRequested.typeName, ShipmentDispatched.typeName, ShipmentFailed.typeName,
    ]
    /// Bookings withdrawn at the carrier after their shipment failed at the booking deadline or by an erasure.
    static let cancellations = Counter(label: "orderly_carrier_bookings_cancelled_total")

    public func handle(_ event: RecordedEvent) async throws {
        guard Self.handledTypes.contains(event.type) else { return }
        // Each step's events name the step before as their cause (the handled event for the first).
        var metadata = event.causing(actor: Self.actor)
        // Each step is taken as soon as the one before it is recorded, in this one call: a round
        // through the relay, the broker and this service's consumer per step cost about half a second
        // each. The step events are handled too, so a crash between steps is picked up again from
        // the redelivered event whichever it was (each step finds what is recorded and goes on).
        let orderId: String
        // Opened at most once per handled event: each opening reads the customer's key.
        var destination: Destination?
        let domainEvent = try event.domainEventForHandler()
        switch domainEvent {
        case .orderPlaced(let placed):
            self.aggregates.learn(.orderPlaced(placed), recorded: event, as: Order.self)
            return
        case .orderCompleted(let completed):
            let requested = try await self.request(completed, metadata: metadata, destination: &destination)
            metadata.causedBy(requested)
            orderId = completed.orderId
        case .shipmentRequested(let requested): orderId = requested.orderId
        case .shipmentDispatched(let dispatched): orderId = dispatched.orderId
        case .shipmentFailed(let failed):
            // The booking may have reached the carrier before the deadline or the erasure failed the
            // shipment (its answer lost to a crash or a time limit): it must not ship what was refunded.
            if Self.failuresThatMayFollowABooking.contains(failed.reason) { try await self.cancelBooking(orderId: failed.orderId) }
            return
        default: return
        }
        metadata.causedBy(try await self.book(orderId: orderId, metadata: metadata, destination: &destination))
        try await self.follow(orderId: orderId, metadata: metadata, destination: &destination)
    }

    /// Why a shipment may fail that this service recorded (or its deadline watcher did) while a booking
    /// it asked for may stand at the carrier; a carrier's own failures and refusals leave none.
    static let failuresThatMayFollowABooking: Set<String> = [
        ShipmentFailureReason.bookingDeadlineExceeded, ShipmentFailureReason.personalDataErased,
    ]

    /// Whether a shipment is past "requested" (dispatched, delivered, failed, skipped): it never goes back.
    static func isPastRequested(_ shipment: Shipment) -> Bool { shipment.status != nil && shipment.status != .requested }

    /// Where an order goes, as far as delivery can tell now.
    enum Destination: Equatable {
        /// Placed without an address (or before orders carried one).
        case none
        /// The customer was forgotten: the address can no longer be read.
        case erased
        case address(ShipmentBooking)
    }

    /// `known` if it was already opened for this event; otherwise opened now and kept in `known`.
    func destination(of orderId: String, known: inout Destination?) async throws -> Destination {
        if let known { return known }
        let found = try await self.openDestination(of: orderId)
        known = found
        return found
    }

    private func openDestination(of orderId: String) async throws -> Destination {
        let found = try await self.aggregates.personalData(ofOrder: orderId, vault: self.vault)
        switch found?.opened {
        case nil:
            return .none
        case .erased:
            // Sealed without an address: there was nothing to ship to before the erasure either.
            return found?.sealed.holdsShippingAddress == false ? .none : .erased
        case .available(let data):
            guard let address = data.shippingAddress else { return .none }
            return .address(ShipmentBooking(orderId: orderId, recipient: data.customer, address: address))
        }
    }

    /// The order is paid: a shipment is requested, or skipped when it has no address. A forgotten
    /// customer's order is requested too and fails at booking, so it is refunded with a clear reason.
    @discardableResult
    func request(_ completed: OrderCompleted, metadata: EventMetadata, destination: inout Destination?) async throws -> AppendResult? {
        let stream = StreamNames.shipment(completed.orderId)
        // The completion starts the shipment stream: not read (a repeat conflicts and is, and decides nothing).
        guard try await self.aggregates.lastKnown(stream, as: Shipment.self, assumingNew: true).status == nil else { return nil }
        let hasAddress = try await self.destination(of: completed.orderId, known: &destination) != .none
        let now = self.now()
        return try await self.aggregates.update(stream, as: Shipment.self, metadata: metadata, likelyNew: true) {
            $0.request(orderId: completed.orderId, customerId: completed.customerId, hasShippingAddress: hasAddress, at: now)
        }
    }

    /// Books the carrier, then records its answer. Booked before it is recorded: a crash in between
    /// books again, and the carrier's key (the order id) makes that one booking.
    @discardableResult
    func book(orderId: String, metadata: EventMetadata, destination: inout Destination?) async throws -> AppendResult? {
        let stream = StreamNames.shipment(orderId)
        // A shipment known to be past "requested" (dispatched, delivered, failed, skipped) is not read
        // again: it never goes back. One known as "requested" is: the booking deadline's watcher, in
        // another process, may have failed it, and booking it again would ask a carrier that did not
        // answer once more, for ever (`DeliveryFlowTests.aCarrierThatDoesNotAnswerIsGivenUpOnAtItsTimeLimit`).
        let known = try await self.aggregates.lastKnown(stream, as: Shipment.self, whenIt: Self.isPastRequested)
        guard known.status == .requested else { return nil }
        let answer: CarrierBooking
        let address: ShippingAddress
        let carrier = self.carrier
        switch try await self.destination(of: orderId, known: &destination) {
        case .none, .erased:
            let now = self.now()
            return try await self.aggregates.update(stream, as: Shipment.self, metadata: metadata) {
                $0.fail(because: ShipmentFailureReason.personalDataErased, at: now)
            }
        case .address(let booking):
            address = booking.address
            answer = try await withTimeLimit(self.carrierTimeLimit, call: "the carrier's booking") { try await carrier.book(booking) }
        }
        // The customer may have been forgotten while the carrier was asked: until the dispatch is
        // recorded the shipment can still fail, and then must. The booking is withdrawn at once (the
        // shipment may have failed meanwhile at its deadline, whose handling came before this
        // acceptance), and again when the failure is handled.
        if case .accepted = answer, try await self.openDestination(of: orderId) == .erased {
            let now = self.now()
            let failed = try await self.aggregates.update(stream, as: Shipment.self, metadata: metadata) {
                $0.fail(because: ShipmentFailureReason.personalDataErased, at: now)
            }
            try await self.cancelBooking(orderId: orderId)
            return failed
        }
        let now = self.now()
        // The answer and what a carrier that advances by itself reports about the parcel it took, in
        // one append (each step caused by the one before): one round trip to the store instead of two.
        let recorded = try await self.aggregates.update(stream, as: Shipment.self, metadata: metadata, causes: .chained) { shipment in
            let answered = shipment.record(answer, at: now)
            var next = shipment
            for event in answered { next.apply(event) }
            return answered + Self.selfReported(by: carrier, on: next, address: address, at: now)
        }
        if recorded == nil, case .accepted = answer,
            try await self.aggregates.load(stream, as: Shipment.self).state.status == .failed
        {
            // Accepted after the booking deadline failed the shipment while the carrier was asked.
            try await self.cancelBooking(orderId: orderId)
        }
        return recorded
    }

    /// Withdraws the order's booking at the carrier, within the carrier's time limit.
    func cancelBooking(orderId: String) async throws {
        let carrier = self.carrier
        try await withTimeLimit(self.carrierTimeLimit, call: "the carrier's cancellation") { try await carrier.cancel(orderId: orderId) }
        Self.cancellations.increment()
    }

    /// A parcel this service's carrier took: records what the carrier reports by itself (nothing for
    /// a real carrier), in one append. Each update has a fixed id, so a repeat records nothing. `book`
    /// records these with the dispatch; this finds them there, and takes a dispatch recorded without
    /// them (through the api, or by a build before that).
    func follow(orderId: String, metadata: EventMetadata, destination: inout Destination?) async throws {
        let stream = StreamNames.shipment(orderId)
        // Known dispatched or past it: not read again (each update is recorded once by its id).
        let shipment = try await self.aggregates.lastKnown(stream, as: Shipment.self, whenIt: Self.isPastRequested)
        guard shipment.status == .dispatched, shipment.carrier == self.carrier.name else { return }
        // The carrier holds the parcel: forgetting the customer now no longer stops it.
        var opened: ShippingAddress?
        if case .address(let booking) = try await self.destination(of: orderId, known: &destination) { opened = booking.address }
        let (carrier, address, now) = (self.carrier, opened, self.now())
        _ = try await self.aggregates.update(stream, as: Shipment.self, metadata: metadata, causes: .chained) {
            Self.selfReported(by: carrier, on: $0, address: address, at: now)
        }
    }

    /// What `carrier` reports by itself about a parcel it holds, as `shipment` records it: nothing for
    /// a real carrier or a shipment it does not hold as dispatched; an update the shipment refuses
    /// (it moved on: another update came first) ends the list.
    static func selfReported(by carrier: any Carrier, on shipment: Shipment, address: ShippingAddress?, at now: Date) -> [DomainEvent] {
        guard shipment.status == .dispatched, shipment.carrier == carrier.name, let trackingNumber = shipment.trackingNumber else { return [] }
        var next = shipment
        var events: [DomainEvent] = []
        for update in carrier.updates(trackingNumber: trackingNumber, address: address, at: now) {
            guard let reported = try? next.record(update) else { break }
            for event in reported { next.apply(event) }
            events += reported
        }
        return events
    }
}
