import OrderlyEventStore

/// Several handlers fed by one consumer (one consumer group, one fetch of each event): each gets the
/// events of the types it handles, all of them at once, and a batch is done when every one is done.
/// The projector's read models share one this way: each group reading the topic costs the broker a
/// fetch loop of its own, at rest too. A handler that fails makes the whole batch come again, so the
/// others see it twice: every handler here must be idempotent (as every handler must anyway).
///
/// Members marked `leads` handle each batch first, the others once they are done: the projector's
/// `orders` model, which clients poll for an order's status, then gets the document server to itself
/// instead of queueing behind the other models' writes (the local stand-in serves one call at a time).
public struct FanOutHandler: EventHandler {
    public struct Member: Sendable {
        public var handler: any EventHandler
        /// The event types it handles; nil: every one.
        public var handledTypes: Set<String>?
        /// Handles a batch before the members that do not lead.
        public var leads: Bool

        public init(_ handler: any EventHandler, handledTypes: Set<String>?, leads: Bool = false) {
            self.handler = handler
            self.handledTypes = handledTypes
            self.leads = leads
        }

        func wants(_ event: RecordedEvent) -> Bool { self.handledTypes?.contains(event.type) ?? true }
    }

    public let members: [Member]

    public init(_ members: [Member]) {
        self.members = members
    }

    /// Every type some member handles; nil when one of them handles every type.
    public var handledTypes: Set<String>? {
        var all: Set<String> = []
        for member in self.members {
            guard let types = member.handledTypes else { return nil }
            all.formUnion(types)
        }
        return all
    }

    public func handle(_ event: RecordedEvent) async throws {
        try await self.each { member in
            if member.wants(event) { try await member.handler.handle(event) }
        }
    }

    public func handle(batch events: [RecordedEvent]) async throws {
        try await self.each { member in
            let wanted = events.filter(member.wants)
            if !wanted.isEmpty { try await member.handler.handle(batch: wanted) }
        }
    }

    public func handle(delivered events: [DeliveredEvent]) async throws {
        try await self.each { member in
            let wanted = events.filter { member.wants($0.event) }
            if !wanted.isEmpty { try await member.handler.handle(delivered: wanted) }
        }
    }

    /// `work` for the leading members at once, then for the others at once; throws the first failure
    /// once all have finished (a leader's failure does not hold the others back: the batch comes again
    /// anyway), a `PoisonEvent` before any other (it is what the consumer must see to find the culprit).
    private func each(_ work: @escaping @Sendable (Member) async throws -> Void) async throws {
        var failures = await Self.failures(of: self.members.filter(\.leads), work)
        failures += await Self.failures(of: self.members.filter { !$0.leads }, work)
        if let poison = failures.first(where: { $0 is PoisonEvent }) { throw poison }
        if let failure = failures.first { throw failure }
    }

    /// Runs `work` for `members` at once; the errors they threw.
    private static func failures(of members: [Member], _ work: @escaping @Sendable (Member) async throws -> Void) async -> [any Error] {
        await withTaskGroup(of: (any Error)?.self) { group in
            for member in members {
                group.addTask {
                    do {
                        try await work(member)
                        return nil
                    } catch {
                        return error
                    }
                }
            }
            var failures: [any Error] = []
            for await failure in group {
                if let failure { failures.append(failure) }
            }
            return failures
        }
    }
}
