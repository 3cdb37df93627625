/// An event a consumer group could not handle and set aside in the dead-letter topic, as operators
/// list it: why, which group, where it came from, and the event itself.
public struct DeadLetter: Codable, Sendable, Equatable {
    /// Where it sits in the dead-letter topic.
    public var partition: Int32
    public var offset: Int64
    /// When it was dead-lettered (ISO 8601), if the broker stamped it.
    public var deadLetteredAt: String?
    public var reason: String
    public var group: String
    /// `topic/partition/offset` it was read from.
    public var source: String?
    public var eventId: String?
    public var eventType: String?
    public var streamId: String?
    public var position: Int64?
    /// The message's value as it came (the event's JSON data, or whatever could not be read), as text.
    public var value: String
    /// When `orderly dlq redrive` last put it back (ISO 8601), when known.
    public var redrivenAt: String?

    public init(
        partition: Int32, offset: Int64, deadLetteredAt: String?, reason: String, group: String, source: String?, eventId: String?,
        eventType: String?, streamId: String?, position: Int64?, value: String
    ) {
        self.partition = partition
        self.offset = offset
        self.deadLetteredAt = deadLetteredAt
        self.reason = reason
        self.group = group
        self.source = source
        self.eventId = eventId
        self.eventType = eventType
        self.streamId = streamId
        self.position = position
        self.value = value
    }
}
