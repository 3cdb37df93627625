import Foundation
import Logging
import Metrics
import OrderlyDomain
import OrderlyHandling
import OrderlyReadModels
import ServiceLifecycle

/// Reports how many parcels are overdue: dispatched longer ago than `overdueAfter` and neither
/// delivered nor failed, counted on the orders read model every `interval` (the api's
/// `orderly_shipments_overdue`; alert `OrderlyShipmentsOverdue`). Only a report: a parcel late at
/// the carrier is for people to chase, not a refund (a failed shipment returns its units to the
/// shelf, which a parcel still on its way must not).
struct ShipmentsOverdueGauge: Service {
    let orders: any OrderReadModel
    let overdueAfter: Duration
    let interval: Duration
    let logger: Logger
    let overdue = Gauge(label: "orderly_shipments_overdue")

    func run() async throws {
        await repeatUntilShutdown("overdue shipments count", logger: self.logger, retryDelay: self.interval) {
            let count = try await self.orders.shipmentsInTransit(dispatchedBefore: Date().addingTimeInterval(-self.overdueAfter.timeInterval))
            self.overdue.record(count)
            return .after(self.interval)
        }
    }
}
