/// A call to the outside world (a carrier, a payment gateway) that took longer than it may: taken as
/// transient, so the event is handled again later, instead of holding its consumer for good.
public struct TimeLimitExceeded: Error, CustomStringConvertible {
    public var call: String
    public var limit: Duration

    public var description: String { "\(self.call) did not answer within \(self.limit)" }
}

/// Runs `operation`, cancelling it and throwing `TimeLimitExceeded` once `limit` has passed. An
/// operation that ignores cancellation is still waited for (a task group waits for its tasks): a
/// port's client must honour cancellation for the limit to hold.
func withTimeLimit<Value: Sendable>(
    _ limit: Duration, call: String, _ operation: @escaping @Sendable () async throws -> Value
) async throws -> Value {
    try await withThrowingTaskGroup(of: Value?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw TimeLimitExceeded(call: call, limit: limit) }
        return value
    }
}
