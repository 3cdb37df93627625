import Foundation

/// Who an order is for: needed to deliver it and to tell the customer, and personal, so it is only
/// ever stored sealed (`SealedPersonalData`) with the customer's own data key.
public struct CustomerDetails: Codable, Sendable, Equatable {
    public var name: String
    public var email: String

    public init(name: String, email: String) {
        self.name = name
        self.email = email
    }
}

/// Where an order is to be delivered.
public struct ShippingAddress: Codable, Sendable, Equatable {
    public var line1: String
    public var line2: String?
    public var city: String
    public var postalCode: String
    /// ISO 3166-1 alpha-2.
    public var country: String

    public init(line1: String, line2: String? = nil, city: String, postalCode: String, country: String) {
        self.line1 = line1
        self.line2 = line2
        self.city = city
        self.postalCode = postalCode
        self.country = country
    }
}

/// An order's personal data, as its readers see it once unsealed.
public struct PersonalData: Codable, Sendable, Equatable {
    public var customer: CustomerDetails?
    public var shippingAddress: ShippingAddress?

    public init(customer: CustomerDetails? = nil, shippingAddress: ShippingAddress? = nil) {
        self.customer = customer
        self.shippingAddress = shippingAddress
    }
}

/// Personal data as events, Kafka and exports hold it: encrypted with one of the customer's data
/// keys (`keyId`). Deleting the customer's keys erases it everywhere at once, without rewriting
/// the log: what is left cannot be read.
public struct SealedPersonalData: Codable, Sendable, Equatable {
    public var keyId: String
    /// AES-GCM nonce, ciphertext and tag, base64.
    public var sealed: String

    public init(keyId: String, sealed: String) {
        self.keyId = keyId
        self.sealed = sealed
    }
}

/// What a reader gets for sealed personal data.
public enum UnsealedPersonalData: Sendable, Equatable {
    case available(PersonalData)
    /// The customer asked to be forgotten: the key is gone.
    case erased
}
