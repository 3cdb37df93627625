import Foundation
import NIOCore
import Testing

@testable import OrderlyAPI

/// The OpenAPI file and the api's own body checks describe the same requests: each operation's
/// request schema and the `BodyShape` its route checks with name the same fields, at every depth,
/// with the same JSON types, and both refuse fields they do not name.
@Suite struct OpenAPIContractTests {
    let document: [String: Any]

    init() throws {
        let buffer = try OpenAPIDocument.load()
        self.document = try #require(try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
    }

    @Test(arguments: [
        ("/orders", OrderRoutes.PlaceOrderBody.shape),
        ("/inventory/{sku}/restock", OrderRoutes.RestockBody.shape),
        ("/shipments/{orderId}/events", OrderRoutes.CarrierUpdateBody.shape),
    ])
    func eachRequestSchemaNamesWhatItsBodyShapeAccepts(path: String, shape: BodyShape) throws {
        let paths = try #require(self.document["paths"] as? [String: [String: Any]])
        let post = try #require(paths[path]?["post"] as? [String: Any])
        let body = try #require(post["requestBody"] as? [String: Any])
        let content = try #require(body["content"] as? [String: [String: Any]])
        let schema = try #require(content["application/json"]?["schema"] as? [String: Any])
        #expect(try self.describe(schema: schema) == Self.describe(shape: shape))
    }

    /// Every request body the document describes is one of those checked above.
    @Test func everyDocumentedRequestBodyIsChecked() throws {
        let paths = try #require(self.document["paths"] as? [String: [String: Any]])
        let withBodies = paths.flatMap { path, operations in
            operations.compactMap { method, operation in
                (operation as? [String: Any])?["requestBody"] != nil ? "\(method) \(path)" : nil
            }
        }
        #expect(withBodies.sorted() == ["post /inventory/{sku}/restock", "post /orders", "post /shipments/{orderId}/events"])
    }

    /// A canonical text of a shape: `{a:string,b:[{c:integer}]}` with the keys sorted.
    static func describe(shape: BodyShape) -> String {
        switch shape {
        case .object(let fields): "{" + fields.keys.sorted().map { "\($0):\(describe(shape: fields[$0] ?? .string))" }.joined(separator: ",") + "}"
        case .array(let element): "[\(describe(shape: element))]"
        case .string: "string"
        case .integer: "integer"
        }
    }

    /// The same text of a JSON schema, following `$ref`s; an object must refuse other fields.
    func describe(schema: [String: Any]) throws -> String {
        if let reference = schema["$ref"] as? String {
            let name = try #require(reference.split(separator: "/").last.map(String.init))
            let components = try #require(self.document["components"] as? [String: Any])
            let schemas = try #require(components["schemas"] as? [String: [String: Any]])
            return try self.describe(schema: try #require(schemas[name], "no schema \(name)"))
        }
        switch schema["type"] as? String {
        case "object":
            #expect(schema["additionalProperties"] as? Bool == false, "an object schema that lets other fields through: \(schema)")
            let properties = try #require(schema["properties"] as? [String: [String: Any]])
            let fields = try properties.keys.sorted().map { "\($0):\(try self.describe(schema: properties[$0] ?? [:]))" }
            return "{" + fields.joined(separator: ",") + "}"
        case "array":
            return "[\(try self.describe(schema: try #require(schema["items"] as? [String: Any])))]"
        case let type?:
            return type
        case nil:
            Issue.record("a schema without a type: \(schema)")
            return "?"
        }
    }
}
