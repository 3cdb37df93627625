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
    /// Whether a shipping address is sealed inside: not personal, and still known after an erasure,
    /// so that an order that had none is still skipped by delivery, not failed and refunded. Nil in
    /// data sealed before it was recorded (taken as having one).
    public var holdsShippingAddress: Bool?

    public init(keyId: String, sealed: String, holdsShippingAddress: Bool? = nil) {
        self.keyId = keyId
        self.sealed = sealed
        self.holdsShippingAddress = holdsShippingAddress
    }
}

/// What a reader gets for sealed personal data.
public enum UnsealedPersonalData: Sendable, Equatable {
    case available(PersonalData)
    /// The customer asked to be forgotten: the key is gone.
    case erased
}

extension PersonalData {
    /// Checks what a client sent before it is sealed: the domain never sees it in plain form again.
    /// Fields are named as the client sent them (`shippingAddress.country`).
    public func validate() throws(ValidationError) {
        if let customer {
            try Self.checkText(customer.name, field: "customer.name", maxLength: 200)
            try Self.checkEmail(customer.email)
        }
        if let address = self.shippingAddress {
            try Self.checkText(address.line1, field: "shippingAddress.line1", maxLength: 200)
            if let line2 = address.line2, !line2.isEmpty {
                try Self.checkText(line2, field: "shippingAddress.line2", maxLength: 200)
            }
            try Self.checkText(address.city, field: "shippingAddress.city", maxLength: 100)
            try Self.checkText(address.postalCode, field: "shippingAddress.postalCode", maxLength: 20)
            let isCountryCode = address.country.count == 2 && address.country.unicodeScalars.allSatisfy { ("A"..."Z").contains($0) }
            if !isCountryCode {
                throw ValidationError(field: "shippingAddress.country", reason: "must be a two-letter ISO 3166-1 code such as DE")
            }
        }
    }

    /// Free text a person typed: not blank, bounded, one line (no control characters).
    static func checkText(_ value: String, field: String, maxLength: Int) throws(ValidationError) {
        if value.allSatisfy(\.isWhitespace) {
            throw ValidationError(field: field, reason: "must not be empty")
        }
        if value.count > maxLength {
            throw ValidationError(field: field, reason: "must be at most \(maxLength) characters")
        }
        if value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw ValidationError(field: field, reason: "must be one line of text (no control characters)")
        }
    }

    /// An address mail can be sent to: one `@`, a local part and a dotted domain, no spaces.
    static func checkEmail(_ email: String) throws(ValidationError) {
        let field = "customer.email"
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        let isAddress =
            email.utf8.count <= 254 && parts.count == 2 && !parts[0].isEmpty && parts[0].utf8.count <= 64
            && parts[1].contains(".") && !parts[1].hasPrefix(".") && !parts[1].hasSuffix(".")
            && !email.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.properties.generalCategory == .control })
        if !isAddress {
            throw ValidationError(field: field, reason: "must be an email address such as ada@example.com (at most 254 characters)")
        }
    }
}
