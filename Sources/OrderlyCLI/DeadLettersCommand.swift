import ArgumentParser
import Foundation
import OrderlyDomain
import OrderlyHandling
import OrderlyMessaging
import OrderlyProcesses

struct DeadLetters: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq", abstract: "The events consumer groups set aside in the dead-letter topic (ORDERLY_DEAD_LETTER_TOPIC).",
        subcommands: [DeadLettersList.self, DeadLettersShow.self])
}

/// Filters shared by the dead-letter commands.
struct DeadLetterFilters: ParsableArguments {
    @Option(help: "Only those of this consumer group.") var group: String?
    @Option(help: "Only those whose reason contains this text.") var reason: String?
    @Option(help: "Only those dead-lettered at or after this time (ISO 8601 or yyyy-MM-dd).") var since: String?
    @Option(help: "Look at the newest N of each partition at most.") var limit = 1000

    func matching() async throws -> [DeadLetter] {
        let since = try self.since.map { try parseTime($0, option: "--since") }
        let settings = Settings.fromEnvironment()
        return try await DeadLetterTopic.newest(settings.deadLetterTopic, limit: self.limit, configuration: settings.kafka).filter { letter in
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
        _ = ProcessStart.logger("orderly.dlq")
        let letters = try await self.filters.matching()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for letter in letters {
            if self.json {
                print(String(decoding: try encoder.encode(letter), as: UTF8.self))
            } else {
                let event = [letter.eventType, letter.streamId, letter.position.map { "@\($0)" }].compactMap { $0 }.joined(separator: " ")
                print(
                    "\(letter.partition)/\(letter.offset)  \(letter.deadLetteredAt ?? "-")  \(letter.group)  \(event.isEmpty ? "-" : event)  "
                        + "\(letter.reason)  (from \(letter.source ?? "?"))")
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
        let parts = self.place.split(separator: "/")
        guard parts.count == 2, let partition = Int32(parts[0]), let offset = Int64(parts[1]) else {
            throw ValidationError("expected PARTITION/OFFSET such as 0/12")
        }
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
