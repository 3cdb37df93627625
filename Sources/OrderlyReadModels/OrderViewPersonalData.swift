import OrderlyDomain
import OrderlyEventStore

extension OrderView {
    /// The view without its sealed personal data: what readers who may not see it (analysts) get.
    public var withoutPersonalData: OrderView {
        var view = self
        view.personalData = nil
        return view
    }

    /// The view as one who may read the order sees it: personal data opened into `customer` and
    /// `shippingAddress`, or `personalDataErased` once the customer was forgotten; the sealed form
    /// is never handed on. Throws `PersonalDataError` for sealed data its key does not open.
    public func opened(with vault: PersonalDataVault) async throws -> OrderView {
        var view = self.withoutPersonalData
        guard let sealed = self.personalData else { return view }
        switch try await vault.open(sealed, customerId: self.customerId) {
        case .available(let data):
            view.customer = data.customer
            view.shippingAddress = data.shippingAddress
        case .erased:
            view.personalDataErased = true
        }
        return view
    }
}
