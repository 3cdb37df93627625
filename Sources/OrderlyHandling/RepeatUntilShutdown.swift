import Logging
import ServiceLifecycle

/// What a long-lived loop does after an iteration.
public enum LoopStep: Sendable {
    /// Go on at once.
    case next
    /// Go on after this pause.
    case after(Duration)
    /// The work is done: end the loop.
    case stop
}

/// Runs `iteration` again and again, carrying `state` from one to the next, until the process shuts
/// down gracefully, the task is cancelled or an iteration says `.stop`; returns the last state.
/// An iteration that throws is logged with `what` and the error, then after `retryDelay` `recover`
/// runs (e.g. renew a client) and the loop goes on: a long-lived loop never ends silently. Every
/// relay, consumer, projector and deadline loop runs through this.
public func repeatUntilShutdown<State: Sendable>(
    _ what: String, logger: Logger, retryDelay: Duration, state initial: State,
    _ iteration: @escaping @Sendable (inout State) async throws -> LoopStep,
    recover: @escaping @Sendable (inout State, any Error) async -> Void = { _, _ in }
) async -> State {
    let ended = try? await cancelWhenGracefulShutdown { () async throws -> State in
        var state = initial
        while !Task.isCancelled {
            do {
                switch try await iteration(&state) {
                case .next: continue
                case .after(let pause): try await Task.sleep(for: pause)
                case .stop: return state
                }
            } catch is CancellationError {
                return state
            } catch {
                logger.warning("\(what) failed; trying again", metadata: ["error": "\(error)", "retry.delay": "\(retryDelay)"])
                do { try await Task.sleep(for: retryDelay) } catch { return state }
                await recover(&state, error)
            }
        }
        return state
    }
    return ended ?? initial
}

/// `repeatUntilShutdown` for a loop without state of its own.
public func repeatUntilShutdown(
    _ what: String, logger: Logger, retryDelay: Duration, _ iteration: @escaping @Sendable () async throws -> LoopStep,
    recover: @escaping @Sendable (any Error) async -> Void = { _ in }
) async {
    _ = await repeatUntilShutdown(
        what, logger: logger, retryDelay: retryDelay, state: 0, { _ in try await iteration() }, recover: { _, error in await recover(error) })
}
