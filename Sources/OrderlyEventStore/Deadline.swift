import Synchronization

/// Runs `body` and answers within `limit` whatever it does: past the limit the caller gets
/// `timeout()` and `body` is cancelled, not waited for (a call on a connection the server dropped
/// without a word is never answered: postgres-nio fails only the statements under way when it sees a
/// connection close). Use it where not knowing the outcome is safe: a read, or a write whose outcome
/// can be found out (see `PostgresEventStore.appendAlone`).
public enum Deadline {
    public static func run<Result: Sendable>(
        within limit: Duration, timeout: @escaping @Sendable () -> any Error, _ body: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        let answer = Answer<Result>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, any Error>) in
                answer.wait(continuation)
                let work = Task {
                    do {
                        answer.give(.success(try await body()))
                    } catch {
                        answer.give(.failure(error))
                    }
                }
                let timer = Task {
                    try await Task.sleep(for: limit)
                    if answer.give(.failure(timeout())) { work.cancel() }
                }
                answer.onAnswer { timer.cancel() }
            }
        } onCancel: {
            answer.give(.failure(CancellationError()))
        }
    }

    /// The first of the body's result, the timer or a cancellation resumes the caller; later ones
    /// are dropped.
    final class Answer<Result: Sendable>: Sendable {
        struct State {
            var continuation: CheckedContinuation<Result, any Error>?
            var early: Swift.Result<Result, any Error>?
            var done = false
            var onAnswer: (@Sendable () -> Void)?
        }

        private let state = Mutex(State())

        func wait(_ continuation: CheckedContinuation<Result, any Error>) {
            let early = self.state.withLock { state -> Swift.Result<Result, any Error>? in
                if let early = state.early { return early }
                state.continuation = continuation
                return nil
            }
            if let early { continuation.resume(with: early) }
        }

        func onAnswer(_ action: @escaping @Sendable () -> Void) {
            let answered = self.state.withLock { state -> Bool in
                if state.done { return true }
                state.onAnswer = action
                return false
            }
            if answered { action() }
        }

        /// True if this was the answer.
        @discardableResult
        func give(_ result: Swift.Result<Result, any Error>) -> Bool {
            let (continuation, action, first) = self.state.withLock {
                state -> (CheckedContinuation<Result, any Error>?, (@Sendable () -> Void)?, Bool) in
                guard !state.done else { return (nil, nil, false) }
                state.done = true
                defer {
                    state.continuation = nil
                    state.onAnswer = nil
                }
                if state.continuation == nil { state.early = result }
                return (state.continuation, state.onAnswer, true)
            }
            continuation?.resume(with: result)
            action?()
            return first
        }
    }
}

/// A call that did not answer within its deadline.
public struct DeadlinePassed: Error, CustomStringConvertible {
    public var what: String
    public var limit: Duration

    public init(_ what: String, limit: Duration) {
        self.what = what
        self.limit = limit
    }

    public var description: String { "\(self.what) did not answer within \(self.limit)" }
}
