import Foundation
import OrderlyDomain
import OrderlyEventStore

/// The result of a command: which order, and the log position of its last event (a read-side client
/// can wait until a read model has reached it).
public struct CommandResult: Sendable, Equatable {
    public var orderId: String
    public var position: Int64
    /// True when an idempotency key matched an earlier command: this is its result, nothing new happened.
    public var isReplay: Bool
}

/// A command the order's state does not allow.
public enum OrderCommandError: Error, Sendable, Equatable {
    case orderNotFound(String)
    /// The order already completed or was cancelled.
    case orderEnded(String, status: String)
}

/// Handles order commands: load the aggregate from its stream, let it decide, append its events with
/// optimistic concurrency. Commands never read the read models.
public struct OrderCommands: Sendable {
    let store: any EventStore
    let aggregates: AggregateStore
    let now: @Sendable () -> Date
    let makeOrderID: @Sendable () -> String
    /// Seals an order's personal data before it is appended; without one, orders that carry
    /// personal data are refused (`PersonalDataUnavailable`).
    let vault: PersonalDataVault?
    /// Seals payment tokens for the payment service; nil: they are stored as sent (and only withheld
    /// from readers).
    let paymentTokens: PaymentTokenSealer?

    public init(
        store: any EventStore, vault: PersonalDataVault? = nil, paymentTokens: PaymentTokenSealer? = nil,
        now: @escaping @Sendable () -> Date = { Date() },
        makeOrderID: @escaping @Sendable () -> String = { Identifiers.random().uuidString.lowercased() }
    ) {
        self.store = store
        self.aggregates = AggregateStore(store: store)
        self.vault = vault
        self.paymentTokens = paymentTokens
        self.now = now
        self.makeOrderID = makeOrderID
    }

    public static func streamID(forOrder orderID: String) -> String { StreamNames.order(orderID) }

    public struct PlaceOrderInput: Sendable, Codable {
        public var customerId: String
        public var currency: String
        public var lines: [OrderLine]
        public var paymentToken: String
        /// In plain form only until `placeOrder` seals it.
        public var personalData: PersonalData?

        public init(customerId: String, currency: String, lines: [OrderLine], paymentToken: String, personalData: PersonalData? = nil) {
            self.customerId = customerId
            self.currency = currency
            self.lines = lines
            self.paymentToken = paymentToken
            self.personalData = personalData
        }
    }

    /// An order came with personal data but this process has no key store to seal it with.
    public struct PersonalDataUnavailable: Error, Sendable {}

    /// Places a new order. Throws `ValidationError` for a command the domain rejects. With an
    /// idempotency key, a repeat of the same input returns the first order and places nothing.
    public func placeOrder(_ input: PlaceOrderInput, actor: String?, idempotencyKey: String? = nil) async throws -> CommandResult {
        let orderID = self.makeOrderID()
        var command = PlaceOrder(
            orderId: orderID, customerId: input.customerId, currency: input.currency, lines: input.lines,
            paymentToken: input.paymentToken)
        if let personalData = input.personalData, personalData != PersonalData() {
            // Refused input makes no key: everything is checked before the key store is asked.
            try Order.validate(command)
            try personalData.validate()
            guard let vault else { throw PersonalDataUnavailable() }
            command.personalData = try await vault.seal(personalData, customerId: input.customerId)
        }
        if let paymentTokens {
            try Order.validate(command)
            command.sealedPaymentToken = try paymentTokens.seal(input.paymentToken, orderId: orderID)
        }
        // A new id has no history, so the aggregate starts empty; the append insists on no stream.
        let events = try Order().place(command, at: self.now())
        let commandID = Identifiers.random().uuidString.lowercased()
        let metadata = EventMetadata(correlationId: orderID, causationId: commandID, actor: actor)
        let newEvents = try events.map { try NewEvent($0, metadata: metadata) }
        let idempotency = try idempotencyKey.map { key in
            IdempotencyKey(key: "orders.place:\(actor ?? ""):\(key)", request: try Self.canonical(input))
        }
        let result = try await self.store.append(
            newEvents, to: Self.streamID(forOrder: orderID), expecting: .noStream, idempotency: idempotency)
        return CommandResult(orderId: Self.orderID(fromStream: result.streamID), position: result.position, isReplay: result.isReplay)
    }

    /// Loads an order by folding its stream; also returns the stream's version for an exact-version append.
    public func loadOrder(_ orderID: String) async throws -> (order: Order, version: Int64) {
        let (order, version) = try await self.aggregates.load(Self.streamID(forOrder: orderID), as: Order.self)
        return (order, version)
    }

    /// A customer cancels an order that has not ended; the inventory and payment services then
    /// release its stock and refund or void its payment. With `ownedBy`, an order of another
    /// customer is reported as not found (its existence is not revealed).
    public func cancelOrder(_ orderID: String, actor: String?, ownedBy owner: String? = nil) async throws -> CommandResult {
        let metadata = EventMetadata(correlationId: orderID, causationId: Identifiers.random().uuidString.lowercased(), actor: actor)
        let now = self.now()
        let result = try await self.aggregates.update(Self.streamID(forOrder: orderID), as: Order.self, metadata: metadata) {
            order throws(OrderCommandError) in
            guard order.status != nil, owner == nil || order.customerId == owner else { throw .orderNotFound(orderID) }
            guard !order.isTerminal else { throw .orderEnded(orderID, status: order.status?.rawValue ?? "") }
            return order.cancel(because: .customerRequest, at: now)
        }
        guard let result else { throw OrderCommandError.orderEnded(orderID, status: "") }
        return CommandResult(orderId: orderID, position: result.position, isReplay: false)
    }

    /// A carrier reports on an order's shipment (dispatched, delivered, failed). Idempotent by the
    /// carrier's event id: a resent update records nothing and answers the same.
    public func recordCarrierUpdate(_ update: CarrierUpdate, orderId: String, actor: String?) async throws -> ShipmentCommands.Recorded {
        let metadata = EventMetadata(correlationId: orderId, causationId: Identifiers.random().uuidString.lowercased(), actor: actor)
        return try await ShipmentCommands(aggregates: self.aggregates).record(update, orderId: orderId, metadata: metadata)
    }

    /// Staff add units of a SKU and set its catalog price. With an idempotency key, a repeat of the
    /// same restock returns the first result and adds nothing.
    public func restock(sku: String, quantity: Int, unitPrice: MinorUnits, actor: String?, idempotencyKey: String? = nil) async throws
        -> AppendResult
    {
        let events = try Stock.restock(sku: sku, quantity: quantity, unitPrice: unitPrice)
        let idempotency = idempotencyKey.map { key in
            IdempotencyKey(key: "inventory.restock:\(sku):\(key)", request: "{\"quantity\":\(quantity),\"unitPrice\":\(unitPrice)}")
        }
        let metadata = EventMetadata(
            correlationId: StreamNames.stock(sku), causationId: Identifiers.random().uuidString.lowercased(), actor: actor,
            partitionKey: StreamNames.stock(sku))
        // A restock does not depend on the stock's state: a plain append, no fold, no version to expect.
        return try await self.store.append(
            try events.map { try NewEvent($0, metadata: metadata) }, to: StreamNames.stock(sku), expecting: .any, idempotency: idempotency)
    }

    static func orderID(fromStream stream: String) -> String {
        stream.hasPrefix("order-") ? String(stream.dropFirst("order-".count)) : stream
    }

    /// The same command always gives the same text (sorted keys), whatever the client's JSON layout.
    static func canonical(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
