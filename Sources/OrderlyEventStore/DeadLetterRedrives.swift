import Logging
import PostgresNIO

/// What `orderly dlq redrive` put back, kept in PostgreSQL (table `dead_letter_redrives`) so that
/// operators can see it and a letter is not redriven twice by mistake.
public struct DeadLetterRedrives: Sendable {
    /// One dead letter's redrive record.
    public struct Record: Sendable, Equatable {
        public var partition: Int32
        public var offset: Int64
        public var group: String
        public var eventID: String?
        public var targetTopic: String
        /// ISO 8601, as PostgreSQL wrote it.
        public var redrivenAt: String
        public var redrivenBy: String
        public var times: Int

        public init(
            partition: Int32, offset: Int64, group: String, eventID: String?, targetTopic: String, redrivenAt: String, redrivenBy: String,
            times: Int
        ) {
            self.partition = partition
            self.offset = offset
            self.group = group
            self.eventID = eventID
            self.targetTopic = targetTopic
            self.redrivenAt = redrivenAt
            self.redrivenBy = redrivenBy
            self.times = times
        }
    }

    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// The redrives of letters of `deadLetterTopic`, by `partition/offset`.
    public func all(in deadLetterTopic: String) async throws -> [String: Record] {
        let rows = try await self.client.query(
            """
            SELECT dead_letter_partition, dead_letter_offset, consumer_group, event_id, target_topic,
                   to_char(redriven_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), redriven_by, times
            FROM dead_letter_redrives WHERE dead_letter_topic = \(deadLetterTopic)
            """, logger: self.logger)
        var records: [String: Record] = [:]
        for try await (partition, offset, group, eventID, target, at, by, times) in rows.decode(
            (Int32, Int64, String, String?, String, String, String, Int).self)
        {
            records["\(partition)/\(offset)"] = Record(
                partition: partition, offset: offset, group: group, eventID: eventID, targetTopic: target, redrivenAt: at, redrivenBy: by,
                times: times)
        }
        return records
    }

    /// Records that the letter was redriven (again, if it was before). Called once the broker has the
    /// republished message: a record never claims what did not happen.
    public func record(
        deadLetterTopic: String, partition: Int32, offset: Int64, group: String, eventID: String?, targetTopic: String, by: String
    ) async throws {
        try await self.client.run(
            """
            INSERT INTO dead_letter_redrives
                (dead_letter_topic, dead_letter_partition, dead_letter_offset, consumer_group, event_id, target_topic, redriven_by)
            VALUES (\(deadLetterTopic), \(partition), \(offset), \(group), \(eventID), \(targetTopic), \(by))
            ON CONFLICT (dead_letter_topic, dead_letter_partition, dead_letter_offset) DO UPDATE
            SET redriven_at = now(), redriven_by = EXCLUDED.redriven_by, times = dead_letter_redrives.times + 1
            """, logger: self.logger)
    }
}
