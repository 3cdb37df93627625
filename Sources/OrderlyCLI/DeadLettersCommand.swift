import ArgumentParser
import Foundation
import Logging
import OrderlyDomain
import OrderlyEventStore
import OrderlyHandling
import OrderlyMessaging
import OrderlyProcesses

struct DeadLetters: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq", abstract: "The events consumer groups set aside in the dead-letter topic (ORDERLY_DEAD_LETTER_TOPIC).",
        subcommands: [DeadLettersList.self, DeadLettersShow.self, DeadLettersRedrive.self])
}

/// Filters shared by the dead-letter commands.
struct DeadLetterFilters: ParsableArguments {
    @Option(help: "Only those of this consumer group.") var group: String?
    @Option(help: "Only those whose reason contains this text.") var reason: String?
    @Option(help: "Only those dead-lettered at or after this time (ISO 8601 or yyyy-MM-dd).") var since: String?
    @Option(help: "Look at the newest N of each partition at most.") var limit = 1000

    func matching(_ settings: Settings) async throws -> [(letter: DeadLetter, record: KafkaRecord)] {
        let since = try self.since.map { try parseTime($0, option: "--since") }
        return try await DeadLetterTopic.newestRecords(settings.deadLetterTopic, limit: self.limit, configuration: settings.kafka).filter {
            let letter = $0.letter
            if let group = self.group, letter.group != group { return false }
            if let reason = self.reason, !letter.reason.contains(reason) { return false }
            if let since {
                guard let at = letter.deadLetteredAt.flatMap(UTCTime.parseInput), at >= since else { return false }
            }
            return true
        }
    }
}

struct DeadLettersList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "One line per dead letter, oldest first: where it is, when, group, event, reason, source.")

    @OptionGroup var filters: DeadLetterFilters
    @Flag(help: "Print JSON lines instead of text.") var json = false

    func run() async throws {
        let logger = ProcessStart.logger("orderly.dlq")
        let settings = Settings.fromEnvironment()
        let letters = try await self.filters.matching(settings).map(\.letter)
        let redrives = await redriveRecords(settings, logger: logger)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for letter in letters {
            let redrive = redrives?["\(letter.partition)/\(letter.offset)"]
            if self.json {
                var line = letter
                line.redrivenAt = redrive?.redrivenAt
                print(String(decoding: try encoder.encode(line), as: UTF8.self))
            } else {
                let redriven = redrive.map { "  [redriven \($0.redrivenAt) by \($0.redrivenBy)\($0.times > 1 ? ", \($0.times) times" : "")]" } ?? ""
                print(
                    "\(letter.partition)/\(letter.offset)  \(letter.deadLetteredAt ?? "-")  \(letter.group)  \(letter.eventSummary)  "
                        + "\(letter.reason)  (from \(letter.source ?? "?"))\(redriven)")
            }
        }
        if !self.json { print("\(letters.count) dead letters") }
    }
}

struct DeadLettersShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "One dead letter, whole, as JSON.")

    @Argument(help: "PARTITION/OFFSET in the dead-letter topic, as `dlq list` prints it.") var place: String

    func run() async throws {
        _ = ProcessStart.logger("orderly.dlq")
        guard let (partition, offset) = parsePlace(self.place) else { throw ValidationError("expected PARTITION/OFFSET such as 0/12") }
        let settings = Settings.fromEnvironment()
        let letters = try await DeadLetterTopic.newest(settings.deadLetterTopic, limit: 100_000, configuration: settings.kafka)
        guard let letter = letters.first(where: { $0.partition == partition && $0.offset == offset }) else {
            throw ValidationError("no dead letter at \(self.place) in \(settings.deadLetterTopic)")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(letter), as: UTF8.self))
    }
}

/// The redrive records of the dead-letter topic, or nil (with a warning) when PostgreSQL cannot be
/// reached: listing dead letters must work while the database is the thing that is down.
private func redriveRecords(_ settings: Settings, logger: Logger) async -> [String: DeadLetterRedrives.Record]? {
    do {
        return try await settings.withPostgres(logger: logger) { client in
            try await DeadLetterRedrives(client: client, logger: logger).all(in: settings.deadLetterTopic)
        }
    } catch {
        FileHandle.standardError.write(Data("warning: which dead letters were redriven is unknown (PostgreSQL: \(error))\n".utf8))
        return nil
    }
}

struct DeadLettersRedrive: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redrive",
        abstract: "Put dead letters back on the topic they came from, for the group that set them aside.",
        discussion: """
            Run it once a fix (an upcaster, a corrected handler) is deployed. Only the letter's own consumer group \
            handles a redriven message, past its repeat check; the other groups skip it. What was redriven is \
            recorded in PostgreSQL and shown by `dlq list`; a letter redriven before is skipped unless --again.
            """)

    @Argument(help: "Dead letters as PARTITION/OFFSET, as `dlq list` prints them.") var places: [String] = []
    @OptionGroup var filters: DeadLetterFilters
    @Flag(help: "Redrive every dead letter the filters match (instead of naming them).") var all = false
    @Flag(help: "Also redrive letters that were redriven before.") var again = false
    @Flag(help: "Print what would be redriven and change nothing.") var dryRun = false
    @Option(help: "Who redrives (recorded); $USER unless given.") var by: String?

    func validate() throws {
        if self.places.isEmpty && !self.all {
            throw ValidationError("name the dead letters as PARTITION/OFFSET, or pass --all to redrive every one the filters match")
        }
        if !self.places.isEmpty && self.all { throw ValidationError("either name dead letters or pass --all, not both") }
        for place in self.places where parsePlace(place) == nil {
            throw ValidationError("expected PARTITION/OFFSET such as 0/12, not \(place)")
        }
    }

    func run() async throws {
        let logger = ProcessStart.logger("orderly.dlq")
        let settings = Settings.fromEnvironment()
        var chosen = try await self.filters.matching(settings)
        if !self.places.isEmpty {
            let wanted = Set(self.places)
            chosen = chosen.filter { wanted.contains("\($0.letter.partition)/\($0.letter.offset)") }
            let found = Set(chosen.map { "\($0.letter.partition)/\($0.letter.offset)" })
            let missing = self.places.filter { !found.contains($0) }
            guard missing.isEmpty else {
                throw ValidationError("no dead letter at \(missing.joined(separator: ", ")) in \(settings.deadLetterTopic) (with these filters)")
            }
        }
        let by = self.by ?? ProcessInfo.processInfo.environment["USER"] ?? "unknown"
        let candidates = chosen
        let redriven = try await settings.withPostgres(logger: logger) { client in
            var chosen = candidates
            let ledger = DeadLetterRedrives(client: client, logger: logger)
            let before = try await ledger.all(in: settings.deadLetterTopic)
            let repeats = chosen.filter { before["\($0.letter.partition)/\($0.letter.offset)"] != nil }
            if !self.again && !repeats.isEmpty {
                let names = repeats.map { "\($0.letter.partition)/\($0.letter.offset)" }
                if !self.places.isEmpty {
                    throw ValidationError("already redriven: \(names.joined(separator: ", ")) (pass --again to redrive them once more)")
                }
                print("skipping \(names.count) already redriven (pass --again to include them)")
                chosen = chosen.filter { before["\($0.letter.partition)/\($0.letter.offset)"] == nil }
            }
            let messages = try chosen.map { try DeadLetterRedrive.message(for: $0.letter, record: $0.record) }
            for (entry, message) in zip(chosen, messages) {
                let letter = entry.letter
                print(
                    "\(self.dryRun ? "would redrive" : "redriving") \(letter.partition)/\(letter.offset)  \(letter.eventSummary)  → \(message.topic) for \(letter.group)"
                )
            }
            if self.dryRun { return chosen.count }
            try await DeadLetterRedrive.publish(messages, configuration: settings.kafka)
            for (entry, message) in zip(chosen, messages) {
                try await ledger.record(
                    deadLetterTopic: settings.deadLetterTopic, partition: entry.letter.partition, offset: entry.letter.offset,
                    group: entry.letter.group, eventID: entry.letter.eventId, targetTopic: message.topic, by: by)
            }
            return messages.count
        }
        print(self.dryRun ? "\(redriven) would be redriven" : "\(redriven) redriven")
    }
}

private func parsePlace(_ place: String) -> (partition: Int32, offset: Int64)? {
    let parts = place.split(separator: "/")
    guard parts.count == 2, let partition = Int32(parts[0]), let offset = Int64(parts[1]) else { return nil }
    return (partition, offset)
}

extension DeadLetter {
    /// "TYPE STREAM @POSITION" as far as the headers tell, or "-".
    var eventSummary: String {
        let parts = [self.eventType, self.streamId, self.position.map { "@\($0)" }].compactMap { $0 }
        return parts.isEmpty ? "-" : parts.joined(separator: " ")
    }
}
