import ArgumentParser
import Foundation
import Logging
import OrderlyAPI
import OrderlyDomain
import OrderlyEventStore
import OrderlyMessaging
import OrderlyProcesses
import OrderlyReadModels
import OrderlyServices
import PostgresNIO

struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export the event history, or replay it to Kafka for a new consumer group.",
        subcommands: [EventsExport.self, EventsReplay.self])
}

/// A time option: ISO 8601, or a bare day (UTC midnight).
func parseTime(_ text: String, option: String) throws -> Date {
    guard let date = UTCTime.parseInput(text) else {
        throw ValidationError("\(option) must be an ISO 8601 time such as 2026-11-23T09:00:00Z or a day such as 2026-11-23")
    }
    return date
}

struct EventsExport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write events in position order as JSON Lines or CSV, to a file or stdout, in constant memory.",
        discussion: """
            Events come out in their type's current schema version (older ones are upcast). The export is one
            consistent snapshot: events committed after it started are not in it. A progress bar shows on a
            terminal (stderr) unless stdout is piped.
            """)

    @Option(help: "jsonl or csv.") var format: String = "jsonl"
    @Option(name: [.short, .long], help: "Write to this file instead of stdout.") var output: String?
    @Option(help: "First position (inclusive).") var fromPosition: Int64?
    @Option(help: "Last position (inclusive).") var toPosition: Int64?
    @Option(help: "Recorded at or after this time (ISO 8601 or yyyy-MM-dd).") var since: String?
    @Option(help: "Recorded before this time (ISO 8601 or yyyy-MM-dd).") var until: String?
    @Option(name: .customLong("type"), help: "Only this event type (repeat for several).") var types: [String] = []
    @Option(help: "Only streams whose id starts with this (order- for every order stream).") var streamPrefix: String?

    func run() async throws {
        guard let format = EventExportFormat(rawValue: self.format) else {
            throw ValidationError("--format must be jsonl or csv")
        }
        if let from = self.fromPosition, let to = self.toPosition, from > to {
            throw ValidationError("--from-position must not be after --to-position")
        }
        let filter = EventFilter(
            types: self.types, streamPrefix: self.streamPrefix, recordedFrom: try self.since.map { try parseTime($0, option: "--since") },
            recordedBefore: try self.until.map { try parseTime($0, option: "--until") }, fromPosition: self.fromPosition,
            toPosition: self.toPosition)
        let logger = ProcessStart.logger("orderly.events")
        let output = try self.output.map { try OutputFile(path: $0) } ?? .standardOutput
        let showsProgress = isatty(STDERR_FILENO) == 1 && !(self.output == nil && output.isPipe)
        let started = ContinuousClock.now
        let written = try await Settings.fromEnvironment().withPostgres(logger: logger) { client in
            let store = PostgresEventStore(client: client, logger: logger)
            let total = showsProgress ? try await store.count(matching: filter) : 0
            let bar = ProgressLine(enabled: showsProgress)
            let written = try await EventExporter(store: store, filter: filter, format: format).export(to: output) { done in
                bar.show(phase: "exporting", done: done, total: total, unit: "events")
            }
            bar.finish()
            return written
        }
        let seconds = (ContinuousClock.now - started).timeInterval
        if self.output != nil || showsProgress {
            FileHandle.standardError.write(
                Data("exported \(written) events in \(String(format: "%.1f", seconds)) s\(self.output.map { " to \($0)" } ?? "")\n".utf8))
        }
    }
}

struct EventsReplay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Republish history to a Kafka topic of the group's own (<ORDERLY_TOPIC>.replay.<group>) for a new consumer group.",
        discussion: """
            The live topic and the groups reading it are not touched. Events go out in log order with the relay's
            keys and headers, so a consumer reads them as it reads the live topic. Run again, the replay resumes
            from its own checkpoint. With --follow it goes on publishing new events, like the relay.
            """)

    @Option(help: "The new consumer group (letters, digits, '.', '_', '-').") var group: String
    @Option(help: "First position to republish (inclusive).") var fromPosition: Int64 = 1
    @Flag(help: "Keep publishing new events after catching up, until stopped.") var follow = false

    func validate() throws {
        guard EventReplay.isValidGroup(self.group) else { throw ValidationError("--group may hold only letters, digits, '.', '_' and '-'") }
        guard self.fromPosition >= 1 else { throw ValidationError("--from-position must be 1 or more") }
    }

    func run() async throws {
        let logger = ProcessStart.logger("orderly.replay")
        let settings = Settings.fromEnvironment()
        let topic = EventReplay.topic(for: self.group, settings: settings)
        if self.follow {
            let postgres = try await settings.makeCheckedPostgresClient(logger: logger)
            let relay = try await EventReplay.relay(
                group: self.group, fromPosition: self.fromPosition, settings: settings, postgres: postgres, logger: logger)
            try await runUntilSignalled([postgres, relay], logger: logger)
            return
        }
        let published = try await settings.withPostgres(logger: logger) { postgres in
            let relay = try await EventReplay.relay(
                group: self.group, fromPosition: self.fromPosition, settings: settings, postgres: postgres, logger: logger)
            return try await relay.catchUp()
        }
        print("replayed \(published) events from position \(self.fromPosition) to topic \(topic); consume it with group \(self.group)")
    }
}
