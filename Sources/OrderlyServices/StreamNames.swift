/// Where each aggregate's events live. One stream per aggregate instance.
public enum StreamNames {
    public static func order(_ orderId: String) -> String { "order-\(orderId)" }
    public static func stock(_ sku: String) -> String { "stock-\(sku)" }
    public static func reservation(_ orderId: String) -> String { "reservation-\(orderId)" }
    public static func payment(_ orderId: String) -> String { "payment-\(orderId)" }
    public static func notification(_ orderId: String) -> String { "notification-\(orderId)" }
    public static func shipment(_ orderId: String) -> String { "shipment-\(orderId)" }
    /// Every stream that belongs to one order (stock streams are shared by many orders).
    public static func ofOrder(_ orderId: String) -> [String] {
        [order(orderId), reservation(orderId), payment(orderId), notification(orderId), shipment(orderId)]
    }
}
