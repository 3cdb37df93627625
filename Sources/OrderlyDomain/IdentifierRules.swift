/// Identifier rules shared by customer ids, SKUs and tokens: short, printable, no spaces.
public enum IdentifierRules {
    /// Whether `value` could be an identifier (order, customer, SKU; longer for stream ids): the api
    /// answers 404 or 400 for anything else before it reaches a store.
    public static func isWellFormed(_ value: String, maxLength: Int = Limits.maxIdentifierLength) -> Bool {
        !value.isEmpty && value.utf8.count <= maxLength
            && value.unicodeScalars.allSatisfy { scalar in
                scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "-_.:".unicodeScalars.contains(scalar))
            }
    }

    static func check(_ value: String, field: String) throws(ValidationError) {
        if value.isEmpty {
            throw ValidationError(field: field, reason: "must not be empty")
        }
        if value.count > Limits.maxIdentifierLength {
            throw ValidationError(field: field, reason: "must be at most \(Limits.maxIdentifierLength) characters")
        }
        let allowed = value.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "-_.:".unicodeScalars.contains(scalar))
        }
        if !allowed {
            throw ValidationError(field: field, reason: "may contain only ASCII letters, digits and - _ . :")
        }
    }
}
