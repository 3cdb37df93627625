import OrderlyDomain
import Synchronization

/// Folded aggregate states by stream, with the version each reflects. Bounded: when full it starts
/// over (states are rebuilt from the log on demand).
final class StateCache: Sendable {
    private struct Entry: @unchecked Sendable {
        // Only ever holds values of `Aggregate` types, which are Sendable.
        var state: Any
        var version: Int64
    }

    private let entries = Mutex<[String: Entry]>([:])
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    func get<State: Aggregate>(_ stream: String, as type: State.Type) -> (State, Int64)? {
        self.entries.withLock { entries in
            guard let entry = entries[stream], let state = entry.state as? State else { return nil }
            return (state, entry.version)
        }
    }

    func put<State: Aggregate>(_ stream: String, state: State, version: Int64) {
        self.entries.withLock { entries in
            if let existing = entries[stream], existing.version >= version { return }
            if entries.count >= self.capacity, entries[stream] == nil { entries.removeAll(keepingCapacity: true) }
            entries[stream] = Entry(state: state, version: version)
        }
    }

    func forget(_ stream: String) {
        _ = self.entries.withLock { $0.removeValue(forKey: stream) }
    }
}

/// The newest snapshot version known per stream (0: none). Bounded like `StateCache`: when full it
/// starts over, which at worst saves a snapshot early.
final class SnapshotVersions: Sendable {
    private let versions = Mutex<[String: Int64]>([:])
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    func version(of stream: String) -> Int64 {
        self.versions.withLock { $0[stream] ?? 0 }
    }

    func raise(_ stream: String, to version: Int64) {
        self.versions.withLock { versions in
            if versions.count >= self.capacity, versions[stream] == nil { versions.removeAll(keepingCapacity: true) }
            versions[stream] = max(versions[stream] ?? 0, version)
        }
    }

    func forget(_ stream: String) {
        _ = self.versions.withLock { $0.removeValue(forKey: stream) }
    }
}
