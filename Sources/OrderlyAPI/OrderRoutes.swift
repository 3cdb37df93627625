import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import OrderlyDomain
import OrderlyEventStore
import OrderlyReadModels
import OrderlyServices
import Synchronization

/// `POST /orders`, `GET /orders/{id}`, `POST /orders/{id}/cancel` and `POST /inventory/{sku}/restock`.
struct OrderRoutes {
    let dependencies: APIDependencies

    struct PlaceOrderBody: RequestBody {
        static let shape = BodyShape.object([
            "customerId": .string, "currency": .string, "paymentToken": .string,
            "lines": .array(.object(["sku": .string, "quantity": .integer, "unitPrice": .integer])),
            "customer": .object(["name": .string, "email": .string]),
            "shippingAddress": .object(["line1": .string, "line2": .string, "city": .string, "postalCode": .string, "country": .string]),
        ])

        struct Line: Decodable {
            var sku: String
            var quantity: Int
            var unitPrice: Int64
        }

        var customerId: String
        var currency: String
        var lines: [Line]
        var paymentToken: String
        var customer: CustomerDetails?
        var shippingAddress: ShippingAddress?
    }

    struct ErasureResponse: Encodable, Sendable {
        var customerId: String
        var erasedBy: String
        /// Data keys deleted now (0: the customer had none left).
        var keysDeleted: Int
    }

    struct PlaceOrderResponse: Encodable, Sendable {
        var orderId: String
        var position: Int64
    }

    struct RestockBody: RequestBody {
        static let shape = BodyShape.object(["quantity": .integer, "unitPrice": .integer])

        var quantity: Int
        var unitPrice: Int64
    }

    /// A carrier's update about a shipment. `eventId` is the carrier's own id for it: resending the
    /// same update records nothing.
    struct CarrierUpdateBody: RequestBody {
        static let shape = BodyShape.object([
            "eventId": .string, "type": .string, "carrier": .string, "trackingNumber": .string, "reason": .string, "occurredAt": .string,
        ])

        var eventId: String
        var type: String
        var carrier: String?
        var trackingNumber: String?
        var reason: String?
        var occurredAt: String?

        /// The update as the domain takes it; a 422 naming the field when it is not one.
        func update(now: Date) throws -> CarrierUpdate {
            try CarrierUpdate.parse(
                eventId: self.eventId, type: self.type, carrier: self.carrier, trackingNumber: self.trackingNumber, reason: self.reason,
                occurredAt: self.occurredAt, now: now)
        }
    }

    struct CarrierUpdateResponse: Encodable, Sendable {
        var orderId: String
        var eventId: String
        /// The shipment's status after the update.
        var status: String
        /// False when the update was already recorded (resent) or restates what is recorded.
        var recorded: Bool
    }

    struct RestockResponse: Encodable, Sendable {
        var sku: String
        var position: Int64
    }

    /// Who may call what: customers act on their own orders only (another customer's order answers
    /// 404, as if it did not exist); staff restock and read every order; analysts read sales (and
    /// the event history, in `EventRoutes`); admin may do everything.
    func register(on router: Router<OrderlyRequestContext>) {
        router.post("/orders") { request, context in
            try await Self.counted("place_order") {
                let caller = try context.require(.customer)
                return try await self.placeOrder(request, caller: caller)
            }
        }
        router.get("/orders") { request, context in
            let caller = try context.require(.customer, .staff)
            return try await self.listOrders(request, context, caller: caller)
        }
        router.get("/orders/{id}") { request, context in
            let caller = try context.require(.customer, .staff)
            return try await self.getOrder(request, context, caller: caller)
        }
        router.get("/orders/{id}/history") { request, context in
            let caller = try context.require(.staff, .analyst)
            return try await self.orderHistory(request, context, caller: caller)
        }
        router.post("/orders/{id}/cancel") { _, context in
            try await Self.counted("cancel_order") {
                let caller = try context.require(.customer)
                return try await self.cancelOrder(context, caller: caller)
            }
        }
        router.post("/inventory/{sku}/restock") { request, context in
            try await Self.counted("restock") {
                let caller = try context.require(.staff)
                return try await self.restock(request, context, caller: caller)
            }
        }
        router.get("/inventory/{sku}") { _, context in
            try context.require(.customer, .staff)
            let sku = try context.parameters.require("sku")
            guard IdentifierRules.isWellFormed(sku), let stock = try await self.dependencies.inventory.stock(sku: sku) else {
                throw Problem.notFound("no stock recorded for SKU \(sku)")
            }
            return JSONBody(value: stock)
        }
        router.get("/customers/{id}/summary") { _, context in
            let caller = try context.require(.customer, .staff)
            let id = try context.parameters.require("id")
            guard IdentifierRules.isWellFormed(id), caller.mayActFor(customer: id),
                let summary = try await self.dependencies.sales.customerSummary(customerId: id)
            else {
                throw Problem.notFound("no orders recorded for customer \(id)")
            }
            return JSONBody(value: summary)
        }
        router.get("/sales/daily") { request, context in
            try context.require(.staff, .analyst)
            return try await self.dailySales(request)
        }
        router.post("/shipments/{orderId}/events") { request, context in
            try await Self.counted("carrier_update") {
                let caller = try context.require(.carrier)
                return try await self.recordCarrierUpdate(request, context, caller: caller)
            }
        }
        router.delete("/customers/{id}/personal-data") { _, context in
            let caller = try context.require(.admin)
            return try await self.forgetCustomer(context, caller: caller)
        }
    }

    /// `DELETE /customers/{id}/personal-data`: deletes the customer's data keys, so the personal data
    /// sealed with them in the log, Kafka, exports and read models can never be read again; records
    /// who did it. Orders, totals and sales stay as they are. 202: other api processes may still
    /// show the data for their key cache's time (10 s).
    func forgetCustomer(_ context: OrderlyRequestContext, caller: Principal) async throws -> JSONBody<ErasureResponse> {
        let id = try context.parameters.require("id")
        guard IdentifierRules.isWellFormed(id) else {
            throw Problem(
                status: .badRequest, type: "invalid-path", title: "Invalid customer id",
                detail: "a customer id is 1 to \(Limits.maxIdentifierLength) ASCII letters, digits or - _ . :", field: "id")
        }
        guard let vault = self.dependencies.vault else {
            throw Problem(
                status: .notImplemented, type: "not-configured", title: "Not configured", detail: "this api was started without a key store")
        }
        let erasure = try await vault.forget(id, by: caller.subject)
        return JSONBody(
            status: .accepted, value: ErasureResponse(customerId: erasure.customerId, erasedBy: erasure.erasedBy, keysDeleted: erasure.keysDeleted))
    }

    /// The order as its reader may see it: personal data opened for those who may read the order
    /// (`null` fields with `personalDataErased` once the customer was forgotten); the sealed form is
    /// never served. Without `reveal` (analysts) personal data is left out altogether.
    func served(_ order: OrderView, reveal: Bool = true, logger: Logger) async throws -> OrderView {
        guard reveal, let vault = self.dependencies.vault else { return order.withoutPersonalData }
        do {
            return try await order.opened(with: vault)
        } catch let error as PersonalDataError {
            // Sealed data its key does not open was tampered with: shown as nothing, and logged.
            logger.error("order \(order.orderId): \(error)")
            return order.withoutPersonalData
        }
    }

    struct DailySales: Codable, Sendable {
        var from: String
        var to: String
        /// Oldest first; a day without orders has no entry.
        var days: [SalesDayView]
    }

    /// `GET /sales/daily?from=yyyy-MM-dd&to=yyyy-MM-dd`: both days included, at most 366 days;
    /// by default the last 30 days up to today (UTC).
    func dailySales(_ request: Request) async throws -> JSONBody<DailySales> {
        let today = Date()
        let to = try Self.day(request, "to") ?? today
        let from = try Self.day(request, "from") ?? to.addingTimeInterval(-29 * 86_400)
        guard from <= to else { throw Problem.invalidQuery("from must not be after to", field: "from") }
        guard to.timeIntervalSince(from) <= 365 * 86_400 else { throw Problem.invalidQuery("at most 366 days at a time", field: "to") }
        let (fromDay, toDay) = (UTCTime.day(from), UTCTime.day(to))
        let days = try await self.dependencies.sales.dailySales(from: fromDay.number, to: toDay.number)
        return JSONBody(value: DailySales(from: fromDay.text, to: toDay.text, days: days))
    }

    /// A `yyyy-MM-dd` day (UTC) as the time of its start.
    static func day(_ request: Request, _ name: String) throws -> Date? {
        guard let text = request.uri.queryParameters[Substring(name)].map(String.init) else { return nil }
        guard text.count == 10, let date = try? Date(text + "T00:00:00Z", strategy: Date.ISO8601FormatStyle()),
            UTCTime.day(date).text == text
        else { throw Problem.invalidQuery("\(name) must be a day such as 2026-11-23", field: name) }
        return date
    }

    /// Counts each command by outcome in `orderly_commands_total{command, outcome}`: `accepted`, or
    /// the problem type it was refused with (`validation-failed`, `concurrency-conflict`, …;
    /// `internal` for a failure of ours).
    /// Each command also has a deadline (`CommandDeadline`): a caller never waits longer than it for
    /// an answer, whatever PostgreSQL does.
    static func counted<Result: Sendable>(_ command: String, _ body: @escaping @Sendable () async throws -> Result) async throws -> Result {
        do {
            let result = try await CommandDeadline.run(body)
            Counter(label: "orderly_commands_total", dimensions: [("command", command), ("outcome", "accepted")]).increment()
            return result
        } catch {
            let outcome = Problem(describing: error)?.type ?? "internal"
            Counter(label: "orderly_commands_total", dimensions: [("command", command), ("outcome", outcome)]).increment()
            throw error
        }
    }

    func cancelOrder(_ context: OrderlyRequestContext, caller: Principal) async throws -> JSONBody<PlaceOrderResponse> {
        let id = try context.parameters.require("id")
        guard IdentifierRules.isWellFormed(id) else { throw Problem.notFound("no order \(id)") }
        let result = try await self.dependencies.commands.cancelOrder(
            id, actor: caller.subject, ownedBy: caller.role == .customer ? caller.subject : nil)
        return JSONBody(status: .accepted, value: PlaceOrderResponse(orderId: result.orderId, position: result.position))
    }

    /// `POST /shipments/{orderId}/events`: 201 when the update was recorded, 200 when it changed
    /// nothing (resent); 404 without a shipment, 409 when it contradicts the recorded one.
    func recordCarrierUpdate(_ request: Request, _ context: OrderlyRequestContext, caller: Principal) async throws
        -> JSONBody<CarrierUpdateResponse>
    {
        let orderId = try context.parameters.require("orderId")
        guard IdentifierRules.isWellFormed(orderId) else { throw Problem.notFound("no shipment for order \(orderId)") }
        let body = try await decodeBody(CarrierUpdateBody.self, from: request)
        let update = try body.update(now: Date())
        let recorded = try await self.dependencies.commands.recordCarrierUpdate(update, orderId: orderId, actor: caller.subject)
        return JSONBody(
            status: recorded.recorded ? .created : .ok,
            value: CarrierUpdateResponse(orderId: orderId, eventId: update.eventId, status: recorded.status.rawValue, recorded: recorded.recorded))
    }

    func restock(_ request: Request, _ context: OrderlyRequestContext, caller: Principal) async throws -> JSONBody<RestockResponse> {
        let sku = try context.parameters.require("sku")
        let body = try await decodeBody(RestockBody.self, from: request)
        let result = try await self.dependencies.commands.restock(
            sku: sku, quantity: body.quantity, unitPrice: body.unitPrice, actor: caller.subject, idempotencyKey: try idempotencyKey(of: request))
        return JSONBody(status: .accepted, value: RestockResponse(sku: sku, position: result.position))
    }

    func placeOrder(_ request: Request, caller: Principal) async throws -> JSONBody<PlaceOrderResponse> {
        let body = try await decodeBody(PlaceOrderBody.self, from: request)
        guard caller.mayActFor(customer: body.customerId) else {
            throw Problem(
                status: .forbidden, type: "forbidden", title: "Not allowed",
                detail: "a customer may place orders only for themselves (customerId must be the token's subject)", field: "customerId")
        }
        let input = OrderCommands.PlaceOrderInput(
            customerId: body.customerId, currency: body.currency,
            lines: body.lines.map { OrderLine(sku: $0.sku, quantity: $0.quantity, unitPrice: $0.unitPrice) },
            paymentToken: body.paymentToken,
            personalData: body.customer == nil && body.shippingAddress == nil
                ? nil : PersonalData(customer: body.customer, shippingAddress: body.shippingAddress))
        let key = try idempotencyKey(of: request)
        let result = try await self.dependencies.commands.placeOrder(input, actor: caller.subject, idempotencyKey: key)
        return JSONBody(status: .accepted, value: PlaceOrderResponse(orderId: result.orderId, position: result.position))
    }

    /// `GET /orders/{id}`; with `minPosition` (a command's `position`), waits up to `wait` seconds
    /// (default and at most 5) until the order reflects that position: read-your-writes.
    func getOrder(_ request: Request, _ context: OrderlyRequestContext, caller: Principal) async throws -> JSONBody<OrderView> {
        let id = try context.parameters.require("id")
        guard IdentifierRules.isWellFormed(id) else { throw Problem.notFound("no order \(id)") }
        // Checked even without minPosition: a bad parameter is refused, never silently ignored.
        let wait = try QueryParameter.integer(request, "wait", in: 0...5) ?? 5
        guard let minPosition = try QueryParameter.integer(request, "minPosition", in: 1...Int64.max) else {
            guard let order = try await self.dependencies.orders.order(id: id), caller.mayActFor(customer: order.customerId) else {
                throw Problem.notFound("no order \(id)")
            }
            return JSONBody(value: try await self.served(order, logger: context.logger))
        }
        let deadline = ContinuousClock.now + .seconds(wait)
        while true {
            let order = try await self.dependencies.orders.order(id: id)
            if let order, !caller.mayActFor(customer: order.customerId) { throw Problem.notFound("no order \(id)") }
            if let order, order.position >= minPosition { return JSONBody(value: try await self.served(order, logger: context.logger)) }
            guard ContinuousClock.now < deadline else {
                guard let order else { throw Problem.notFound("no order \(id) (the read model is not at position \(minPosition) yet)") }
                // A 4xx, not a 5xx: usually the client passed a position of another order's command
                // (an order's view moves only with its own events); else retry after a moment.
                var problem = Problem(
                    status: .preconditionFailed, type: "read-model-behind", title: "The read model has not caught up",
                    detail: "order \(id) did not reach position \(minPosition) within \(wait) s (it is at \(order.position)); "
                        + "pass the position this order's own command answered, or retry shortly",
                    field: "minPosition")
                problem.headers[.retryAfter] = "1"
                throw problem
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    struct HistoryBody: Codable, Sendable {
        struct Entry: Codable, Sendable {
            var eventId: String
            var position: Int64
            var stream: String
            var version: Int64
            var type: String
            var recordedAt: String
            /// Who appended it (a user, or the service that reacted).
            var actor: String?
            var causationId: String?
            var correlationId: String?
            /// Whether it is folded into `state` (recorded at or before `asOf`).
            var applied: Bool
        }

        var orderId: String
        var asOf: String?
        /// The order as it was at `asOf` (now when absent); nil when it was not placed yet.
        var state: OrderView?
        var events: [Entry]
    }

    /// `GET /orders/{id}/history?asOf=`: every event of the order's saga (its order, reservation,
    /// payment and notification streams) in log order, without their data, and the order folded
    /// as of a moment: what support staff look at to answer "where is my order?".
    /// Staff see the order's personal data as the order route shows it; analysts never do.
    func orderHistory(_ request: Request, _ context: OrderlyRequestContext, caller: Principal) async throws -> JSONBody<HistoryBody> {
        let id = try context.parameters.require("id")
        guard IdentifierRules.isWellFormed(id) else { throw Problem.notFound("no order \(id)") }
        let asOf = try QueryParameter.date(request, "asOf")
        let history = try await OrderHistory.load(orderID: id, streams: StreamNames.ofOrder(id), store: self.dependencies.events, asOf: asOf)
        guard !history.events.isEmpty else { throw Problem.notFound("no order \(id)") }
        let applied = Set(history.applied.map(\.position))
        var state: OrderView?
        if let folded = history.state { state = try await self.served(folded, reveal: caller.role != .analyst, logger: context.logger) }
        return JSONBody(
            value: HistoryBody(
                orderId: id, asOf: asOf.map { UTCTime.iso8601($0) },
                state: state,
                events: history.events.map { event in
                    HistoryBody.Entry(
                        eventId: event.id.uuidString.lowercased(), position: event.position, stream: event.streamID, version: event.streamVersion,
                        type: event.type,
                        recordedAt: UTCTime.iso8601(event.recordedAt), actor: event.metadata.actor, causationId: event.metadata.causationId,
                        correlationId: event.metadata.correlationId, applied: applied.contains(event.position))
                }))
    }

    /// `GET /orders?customerId=&status=&from=&to=&limit=&cursor=`: newest first, by pages.
    func listOrders(_ request: Request, _ context: OrderlyRequestContext, caller: Principal) async throws -> JSONBody<OrderPage> {
        let query = request.uri.queryParameters
        var orderQuery = OrderQuery(limit: Int(try QueryParameter.integer(request, "limit", in: 1...200) ?? 50))
        if let customer = query["customerId"].map(String.init) {
            guard customer.count <= 64, !customer.isEmpty else {
                throw Problem.invalidQuery("customerId must be 1 to 64 characters", field: "customerId")
            }
            orderQuery.customerId = customer
        }
        // A customer sees only their own orders: no filter means theirs; another's is refused.
        if caller.role == .customer {
            guard orderQuery.customerId == nil || orderQuery.customerId == caller.subject else {
                throw Problem(
                    status: .forbidden, type: "forbidden", title: "Not allowed", detail: "a customer may list only their own orders",
                    field: "customerId")
            }
            orderQuery.customerId = caller.subject
        }
        if let status = query["status"].map(String.init) {
            guard OrderStatus(rawValue: status) != nil else {
                throw Problem.invalidQuery("status must be one of PLACED, STOCK_RESERVED, PAID, COMPLETED, CANCELLED", field: "status")
            }
            orderQuery.status = status
        }
        orderQuery.placedFrom = try QueryParameter.time(request, "from")
        orderQuery.placedBefore = try QueryParameter.time(request, "to")
        if let token = query["cursor"].map(String.init) {
            guard let cursor = OrderCursor(token: token) else { throw Problem.invalidQuery("cursor is not one this api gave out", field: "cursor") }
            orderQuery.after = cursor
        }
        var page = try await self.dependencies.orders.orders(matching: orderQuery)
        for index in page.items.indices { page.items[index] = try await self.served(page.items[index], logger: context.logger) }
        return JSONBody(value: page)
    }
}

/// Whether `check` succeeds within `limit`. A part that hangs is as unavailable as one that refuses,
/// and a blocked C call cannot be cancelled, so the check is not waited for past the limit.
func answers(within limit: Duration, _ check: @escaping @Sendable () async throws -> Void) async -> Bool {
    (try? await CommandDeadline.run(limit: limit, check)) != nil
}
