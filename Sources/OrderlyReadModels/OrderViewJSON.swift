import OrderlyDomain

/// Views that write their own JSON (the same fields `Codable` would).
protocol JSONWritable {
    func write(to writer: inout JSONWriter)
}

extension OrderView: JSONWritable {
    func write(to writer: inout JSONWriter) {
        writer.object { json in
            json.field("orderId", self.orderId)
            json.field("customerId", self.customerId)
            json.field("status", self.status)
            json.field("currency", self.currency)
            json.key("lines")
            json.array(self.lines) { json, line in
                json.object { json in
                    json.field("sku", line.sku)
                    json.field("quantity", Int64(line.quantity))
                    json.field("unitPrice", line.unitPrice)
                }
            }
            json.field("total", self.total)
            json.field("placedAt", self.placedAt)
            json.field("updatedAt", self.updatedAt)
            json.key("timeline")
            json.array(self.timeline) { json, entry in
                json.object { json in
                    json.field("type", entry.type)
                    json.field("at", entry.at)
                    json.field("position", entry.position)
                }
            }
            json.field("cancellationReason", self.cancellationReason)
            if let payment = self.payment {
                json.key("payment")
                json.object { json in
                    json.field("status", payment.status)
                    json.field("amount", payment.amount)
                    json.field("reason", payment.reason)
                }
            }
            if let notified = self.notified {
                json.key("notified")
                json.array(notified) { json, outcome in json.value(outcome) }
            }
            if let fulfilment = self.fulfilment {
                json.key("fulfilment")
                json.object { json in
                    json.field("status", fulfilment.status)
                    json.field("carrier", fulfilment.carrier)
                    json.field("trackingNumber", fulfilment.trackingNumber)
                    json.field("reason", fulfilment.reason)
                    json.field("requestedAt", fulfilment.requestedAt)
                    json.field("dispatchedAt", fulfilment.dispatchedAt)
                    json.field("deliveredAt", fulfilment.deliveredAt)
                    json.field("failedAt", fulfilment.failedAt)
                    json.field("updatedAt", fulfilment.updatedAt)
                }
            }
            json.field("version", self.version)
            json.field("position", self.position)
            if let applied = self.applied {
                json.key("applied")
                json.object { json in
                    for (stream, version) in applied.sorted(by: { $0.key < $1.key }) { json.field(stream, version) }
                }
            }
            json.field("revision", self.revision)
            json.field("statusChangedAt", self.statusChangedAt)
            json.field("fulfilmentChangedAt", self.fulfilmentChangedAt)
            json.field("pageKey", self.pageKey)
            json.field("placedAtMs", self.placedAtMs)
            json.field("inTransitSinceMs", self.inTransitSinceMs)
            // Only the sealed form is stored; the opened fields are the api's, per request.
            if let sealed = self.personalData {
                json.key("personalData")
                json.object { json in
                    json.field("keyId", sealed.keyId)
                    json.field("sealed", sealed.sealed)
                    if let holds = sealed.holdsShippingAddress { json.field("holdsShippingAddress", holds) }
                }
            }
        }
    }
}
