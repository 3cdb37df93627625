import Synchronization

/// A command's answer within `limit`, whatever its dependencies do: the store fails an append that
/// waited too long for a connection (unsent) after 3 s; this bound covers the rest (a read of the
/// aggregate, a server that accepted the statement and then stopped answering). The command itself is
/// not awaited past the bound: its outcome is then unknown to the caller, who is told so (503 with a
/// hint to retry with the same Idempotency-Key). The readiness checks use it too.
enum CommandDeadline: Error {
    case passed(Duration)

    static let limit: Duration = .seconds(4)

    static func run<Result: Sendable>(limit: Duration = Self.limit, _ body: @escaping @Sendable () async throws -> Result) async throws -> Result {
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
                    if answer.give(.failure(CommandDeadline.passed(limit))) { work.cancel() }
                }
                answer.onAnswer { timer.cancel() }
            }
        } onCancel: {
            answer.give(.failure(CancellationError()))
        }
    }

    /// The first of the command's result, the timer or a cancellation resumes the caller; later ones
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
