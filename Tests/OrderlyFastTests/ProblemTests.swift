import Foundation
import HTTPTypes
import OrderlyAPI
import OrderlyDomain
import OrderlyEventStore
import Testing

@Suite struct ProblemTests {
    @Test func aConcurrencyConflictIsA409NamingTheStreamAndBothVersions() throws {
        let problem = try #require(Problem(describing: EventStoreError.wrongExpectedVersion(stream: "order-o1", expected: .exact(3), actual: 5)))
        #expect(problem.status == .conflict)
        #expect(problem.type == "concurrency-conflict")
        #expect(problem.detail.contains("order-o1"))
        #expect(problem.detail.contains("expected at version 3"))
        #expect(problem.detail.contains("is at 5"))
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(problem)) as? [String: Any]
        #expect(json?["type"] as? String == "https://orderly.dev/problems/concurrency-conflict")
        #expect(json?["status"] as? Int == 409)
    }

    @Test func unexpectedErrorsMapToNothingSoTheyBecomeA500WithoutDetails() {
        struct Surprise: Error {}
        #expect(Problem(describing: Surprise()) == nil)
        #expect(Problem(describing: ValidationError(field: "lines", reason: "x"))?.status == .unprocessableContent)
    }
}
