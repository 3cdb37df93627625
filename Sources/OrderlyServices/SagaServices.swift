import Foundation
import Logging
import Metrics
import OrderlyDomain
import OrderlyEventStore
import OrderlyHandling

// The order saga is choreographed: each service reacts to facts on the event topic and decides with
// its own aggregate only (Order, Stock per SKU and the per-order Reservation, Payment, Notifications),
// appending its own events through the event store, never to Kafka. Only the order service writes the
// order's terminal events, so "exactly one terminal state" is one aggregate's invariant, guarded by
// optimistic concurrency. Choreography over an orchestrator because every step already has one
// natural owner and a single orchestrator would be one more stateful process to crash mid-saga; the
// price is that the flow is spread out, so it is written down here:
//
//   OrderPlaced ─► inventory: StockItemReserved per SKU, then StockReserved | StockReservationFailed
//               ─► payment: PaymentRequested (keeps the token)
//   StockReserved ─► payment: PaymentProcessed | PaymentFailed (through the PaymentGateway port)
//   PaymentProcessed ─► order: OrderCompleted ─► inventory: StockItemCommitted; notification
//   StockReservationFailed ─► order: OrderCancelled(OUT_OF_STOCK | PRICE_CHANGED)
//   PaymentFailed ─► inventory: StockReleased; order: OrderCancelled(PAYMENT_DECLINED)
//   OrderCancelled (customer, deadline, any reason) ─► inventory: StockReleased if reserved;
//                  payment: PaymentRefunded if charged, else PaymentVoided; notification
//   OrderCompleted ─► delivery: ShipmentRequested | ShipmentSkipped(NO_SHIPPING_ADDRESS)
//   ShipmentRequested ─► delivery: books the carrier ─► ShipmentDispatched | ShipmentFailed
//   carrier updates (api or the simulated carrier) ─► ShipmentDelivered | ShipmentFailed
//   ShipmentDispatched, ShipmentDelivered ─► notification
//   ShipmentFailed ─► payment: PaymentRefunded; inventory: StockItemReturned per SKU, StockReturned;
//                     notification
//
// Events of one order share a Kafka key (the order id), so each service sees them in log order.
// Every reaction is idempotent: the aggregate remembers what it decided, and a repeat decides nothing.

/// Reserves, releases and commits stock for orders.
public struct InventoryService: EventHandler {
    static let actor = "inventory-service"
    let aggregates: AggregateStore

    public init(store: any EventStore) {
        self.aggregates = AggregateStore(store: store)
    }

    public static let handledTypes: Set<String> = [
        OrderPlaced.typeName, OrderCancelled.typeName, PaymentFailed.typeName, OrderCompleted.typeName, ShipmentFailed.typeName,
    ]

    public func handle(_ event: RecordedEvent) async throws {
        guard Self.handledTypes.contains(event.type) else { return }
        let metadata = event.causing(actor: Self.actor)
        switch try event.domainEventForHandler() {
        case .orderPlaced(let placed): try await self.reserve(placed, metadata: metadata)
        case .orderCancelled(let cancelled): try await self.release(orderId: cancelled.orderId, metadata: metadata)
        case .paymentFailed(let failed): try await self.release(orderId: failed.orderId, metadata: metadata)
        case .orderCompleted(let completed): try await self.commit(orderId: completed.orderId, metadata: metadata)
        case .shipmentFailed(let failed): try await self.takeBack(orderId: failed.orderId, metadata: metadata)
        default: return
        }
    }

    func reserve(_ placed: OrderPlaced, metadata: EventMetadata) async throws {
        let reservation = StreamNames.reservation(placed.orderId)
        guard try await self.aggregates.load(reservation, as: Reservation.self).state.state == .undecided else { return }
        var refusal: (reason: CancellationReason, sku: String)?
        for line in placed.lines {
            var decision = Stock.ReservationDecision.alreadyReserved
            try await self.aggregates.update(StreamNames.stock(line.sku), as: Stock.self, metadata: metadata.keyed(by: StreamNames.stock(line.sku))) {
                stock in
                decision = stock.reserve(line, for: placed.orderId)
                guard case .reserve(let events) = decision else { return [] }
                return events
            }
            if case .refuse(let reason) = decision {
                refusal = (reason, line.sku)
                break
            }
        }
        if let refusal {
            // All or nothing: give back what this order got before the refusal.
            for line in placed.lines {
                try await self.aggregates.update(
                    StreamNames.stock(line.sku), as: Stock.self, metadata: metadata.keyed(by: StreamNames.stock(line.sku))
                ) {
                    $0.release(for: placed.orderId)
                }
            }
            try await self.aggregates.update(reservation, as: Reservation.self, metadata: metadata) { state in
                guard state.state == .undecided else { return [] }
                return [.stockReservationFailed(StockReservationFailed(orderId: placed.orderId, reason: refusal.reason, sku: refusal.sku))]
            }
        } else {
            let total = placed.lines.reduce(MinorUnits(0)) { $0 + $1.subtotal }
            try await self.aggregates.update(reservation, as: Reservation.self, metadata: metadata) { state in
                guard state.state == .undecided else { return [] }
                return [.stockReserved(StockReserved(orderId: placed.orderId, lines: placed.lines, total: total))]
            }
        }
    }

    func release(orderId: String, metadata: EventMetadata) async throws {
        let reservation = StreamNames.reservation(orderId)
        switch try await self.aggregates.load(reservation, as: Reservation.self).state.state {
        case .failed, .released, .returned:
            return
        case .undecided:
            // Closed before it was decided: a late reservation attempt will find it decided.
            try await self.aggregates.update(reservation, as: Reservation.self, metadata: metadata) { state in
                state.state == .undecided ? [.stockReleased(StockReleased(orderId: orderId, lines: []))] : []
            }
        case .reserved(let lines):
            for line in lines {
                try await self.aggregates.update(
                    StreamNames.stock(line.sku), as: Stock.self, metadata: metadata.keyed(by: StreamNames.stock(line.sku))
                ) {
                    $0.release(for: orderId)
                }
            }
            try await self.aggregates.update(reservation, as: Reservation.self, metadata: metadata) { state in
                guard case .reserved = state.state else { return [] }
                return [.stockReleased(StockReleased(orderId: orderId, lines: lines))]
            }
        }
    }

    func commit(orderId: String, metadata: EventMetadata) async throws {
        // A reservation this service knows to be reserved is not read again: whatever may have come
        // after (released, returned) leaves the stock nothing to commit for the order. Any other state
        // it knows might be behind one it reserved elsewhere, so that is read.
        let reservation = try await self.aggregates.lastKnown(StreamNames.reservation(orderId), as: Reservation.self) {
            if case .reserved = $0.state { true } else { false }
        }
        guard case .reserved(let lines) = reservation.state else { return }
        for line in lines {
            try await self.aggregates.update(StreamNames.stock(line.sku), as: Stock.self, metadata: metadata.keyed(by: StreamNames.stock(line.sku))) {
                $0.commit(for: orderId)
            }
        }
    }

    /// The order's shipment failed: its units go back on the shelf, once (each SKU's stock remembers
    /// the orders it took back; the reservation records that the order's stock came back).
    func takeBack(orderId: String, metadata: EventMetadata) async throws {
        let reservation = StreamNames.reservation(orderId)
        guard case .reserved(let lines) = try await self.aggregates.load(reservation, as: Reservation.self).state.state else { return }
        for line in lines {
            try await self.aggregates.update(StreamNames.stock(line.sku), as: Stock.self, metadata: metadata.keyed(by: StreamNames.stock(line.sku))) {
                $0.takeBack(line.quantity, for: orderId)
            }
        }
        try await self.aggregates.update(reservation, as: Reservation.self, metadata: metadata) { state in
            guard case .reserved = state.state else { return [] }
            return [.stockReturned(StockReturned(orderId: orderId, lines: lines))]
        }
    }
}

/// Charges, refunds and voids payments through a `PaymentGateway`. The gateway is asked before the
/// decision is recorded (a crash in between asks again: the order id is its idempotency key); a
/// refund is recorded first (`PaymentRefunded`) and carried out when this service reads that event,
/// so it happens at least once whatever crashes, and once at the gateway (the charge id is its key).
public struct PaymentService: EventHandler {
    static let actor = "payment-service"
    let aggregates: AggregateStore
    let gateway: any PaymentGateway
    /// Opens tokens the api sealed for this service; nil: only unsealed tokens can be charged.
    let paymentTokens: PaymentTokenOpener?
    /// How long a gateway call may take before it counts as a transient failure (and is retried).
    let gatewayTimeLimit: Duration

    public init(
        store: any EventStore, gateway: any PaymentGateway, paymentTokens: PaymentTokenOpener? = nil, gatewayTimeLimit: Duration = .seconds(10)
    ) {
        self.aggregates = AggregateStore(store: store)
        self.gateway = gateway
        self.paymentTokens = paymentTokens
        self.gatewayTimeLimit = gatewayTimeLimit
    }

    /// The gateway's decision, with the token opened for it only here. A token this service cannot
    /// open (sealed for another key) is declined with a clear reason rather than retried for ever.
    func charge(_ request: ChargeRequest) async throws -> PaymentDecision {
        var opened = request
        if PaymentTokenSealing.isSealed(request.token) {
            guard let token = self.paymentTokens?.open(request.token, orderId: request.orderId) else {
                return .declined(reason: "PAYMENT_TOKEN_UNREADABLE")
            }
            opened.token = token
        }
        let gateway = self.gateway
        return try await withTimeLimit(self.gatewayTimeLimit, call: "the payment gateway's charge") { [opened] in
            try await gateway.charge(opened)
        }
    }

    public static let handledTypes: Set<String> = [
        OrderPlaced.typeName, StockReserved.typeName, OrderCancelled.typeName, PaymentRefunded.typeName, ShipmentFailed.typeName,
    ]

    public func handle(_ event: RecordedEvent) async throws {
        guard Self.handledTypes.contains(event.type) else { return }
        let metadata = event.causing(actor: Self.actor)
        switch try event.domainEventForHandler() {
        case .orderPlaced(let placed):
            // The placement starts the order's payment stream: not read first (a repeat conflicts and is).
            try await self.aggregates.update(StreamNames.payment(placed.orderId), as: Payment.self, metadata: metadata, likelyNew: true) {
                $0.request(placed)
            }
        case .stockReserved(let reserved):
            let stream = StreamNames.payment(reserved.orderId)
            // On the state this service last wrote: one behind at worst asks the gateway again (keyed by
            // the order, so charged once) and the recording, expecting the version, decides again.
            guard let request = try await self.aggregates.lastKnown(stream, as: Payment.self).chargeRequest(for: reserved) else { return }
            let decision = try await self.charge(request)
            try await self.aggregates.update(stream, as: Payment.self, metadata: metadata) { $0.record(decision, of: request) }
        case .orderCancelled(let cancelled):
            try await self.aggregates.update(StreamNames.payment(cancelled.orderId), as: Payment.self, metadata: metadata) {
                $0.compensate(orderId: cancelled.orderId)
            }
        case .shipmentFailed(let failed):
            // Paid and never delivered: the charge is paid back.
            try await self.aggregates.update(StreamNames.payment(failed.orderId), as: Payment.self, metadata: metadata) {
                $0.compensate(orderId: failed.orderId)
            }
        case .paymentRefunded(let refunded):
            let gateway = self.gateway
            try await withTimeLimit(self.gatewayTimeLimit, call: "the payment gateway's refund") {
                try await gateway.refund(chargeId: refunded.chargeId, amount: refunded.amount)
            }
        default:
            return
        }
    }
}

/// Where payments are charged and refunded: the simulated gateway here, a real one in its place.
/// Both calls must be idempotent (per order id for a charge, per charge id for a refund): after a
/// crash the same call can come again. A thrown error is taken as transient and retried; a declined
/// card is a decision, not an error.
public protocol PaymentGateway: Sendable {
    func charge(_ request: ChargeRequest) async throws -> PaymentDecision
    func refund(chargeId: String, amount: MinorUnits) async throws
}

/// The simulated gateway. Its rules are deterministic and documented (README) so every path of the
/// saga can be driven from the REST api, and a repeat after a crash decides the same way:
/// - a total above 1,000,000 minor units is declined whatever the token;
/// - `tok_ok` is approved (charge id `ch_<orderId>`); `tok_declined` and every other token are declined.
/// Refunds always succeed.
public struct SimulatedPaymentGateway: PaymentGateway {
    public static let approveLimit: MinorUnits = 1_000_000

    public init() {}

    public func charge(_ request: ChargeRequest) async throws -> PaymentDecision { Self.decide(request) }

    public func refund(chargeId: String, amount: MinorUnits) async throws {}

    public static func decide(_ request: ChargeRequest) -> PaymentDecision {
        if request.amount > Self.approveLimit { return .declined(reason: "AMOUNT_LIMIT_EXCEEDED") }
        switch request.token {
        case "tok_ok": return .approved(chargeId: "ch_\(request.orderId)")
        case "tok_declined": return .declined(reason: "CARD_DECLINED")
        default: return .declined(reason: "UNKNOWN_TOKEN")
        }
    }
}

/// Owns the order's outcome: completes it when paid, cancels it when stock or payment fails, and
/// measures every saga from placement to its terminal event.
public struct OrderService: EventHandler {
    static let actor = "order-service"
    let aggregates: AggregateStore
    let now: @Sendable () -> Date

    public init(store: any EventStore, now: @escaping @Sendable () -> Date = { Date() }) {
        self.aggregates = AggregateStore(store: store)
        self.now = now
    }

    /// OrderPlaced only to learn the order (see `AggregateStore.learn`): completing or cancelling it
    /// then needs no read of its stream.
    public static let handledTypes: Set<String> = [
        OrderPlaced.typeName, PaymentProcessed.typeName, StockReservationFailed.typeName, PaymentFailed.typeName, OrderCompleted.typeName,
        OrderCancelled.typeName,
    ]
    /// The types among them that are events of the order's own stream.
    static let orderStreamTypes: Set<String> = [OrderPlaced.typeName, OrderCompleted.typeName, OrderCancelled.typeName]

    public func handle(_ event: RecordedEvent) async throws {
        guard Self.handledTypes.contains(event.type) else { return }
        let metadata = event.causing(actor: Self.actor)
        let now = self.now()
        let domainEvent = try event.domainEventForHandler()
        if let domainEvent, Self.orderStreamTypes.contains(event.type) {
            self.aggregates.learn(domainEvent, recorded: event, as: Order.self)
        }
        switch domainEvent {
        case .orderPlaced:
            return
        case .paymentProcessed(let paid):
            try await self.aggregates.update(StreamNames.order(paid.orderId), as: Order.self, metadata: metadata) {
                $0.complete(charged: paid.amount, at: now)
            }
        case .stockReservationFailed(let failed):
            try await self.aggregates.update(StreamNames.order(failed.orderId), as: Order.self, metadata: metadata) {
                $0.cancel(because: failed.reason, at: now)
            }
        case .paymentFailed(let failed):
            try await self.aggregates.update(StreamNames.order(failed.orderId), as: Order.self, metadata: metadata) {
                $0.cancel(because: .paymentDeclined, at: now)
            }
        case .orderCompleted(let completed):
            try await self.recordDuration(orderId: completed.orderId, outcome: "completed", reason: "", endedAt: event.recordedAt)
        case .orderCancelled(let cancelled):
            try await self.recordDuration(
                orderId: cancelled.orderId, outcome: "cancelled", reason: cancelled.reason.rawValue, endedAt: event.recordedAt)
        default:
            return
        }
    }

    func recordDuration(orderId: String, outcome: String, reason: String, endedAt: Date) async throws {
        // When an order was placed never changes: the state last known here will do.
        guard let placedAt = try await self.aggregates.lastKnown(StreamNames.order(orderId), as: Order.self).placedAt else { return }
        Metrics.Timer(label: "orderly_saga_duration_seconds", dimensions: [("outcome", outcome), ("reason", reason)])
            .recordSeconds(max(0, endedAt.timeIntervalSince(placedAt)))
    }
}
