/// One lock per stream name, for async callers: waiters are resumed one at a time, in arrival order.
actor StreamLocks {
    /// A locked stream has an entry; its value is who waits for it.
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    func lock(_ stream: String) async {
        guard self.waiters[stream] != nil else {
            self.waiters[stream] = []
            return
        }
        await withCheckedContinuation { continuation in
            self.waiters[stream, default: []].append(continuation)
        }
    }

    func unlock(_ stream: String) {
        guard var queue = self.waiters[stream] else { return }
        if queue.isEmpty {
            self.waiters[stream] = nil
        } else {
            let next = queue.removeFirst()
            self.waiters[stream] = queue
            next.resume()
        }
    }
}
