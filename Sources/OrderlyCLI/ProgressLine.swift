import Foundation
import OrderlyReadModels

/// A progress line on a terminal (redrawn in place); nothing when stderr is not one.
final class ProgressLine: Sendable {
    let enabled: Bool

    init(enabled: Bool = isatty(STDERR_FILENO) == 1) {
        self.enabled = enabled
    }

    func show(_ progress: RebuildProgress) {
        self.show(
            phase: progress.phase.rawValue, done: progress.position, total: progress.target,
            unit: "position, \(progress.events) events")
    }

    func show(phase: String, done: Int64, total: Int64, unit: String) {
        guard self.enabled else { return }
        let share = total > 0 ? min(1, Double(done) / Double(total)) : 1
        let filled = Int(share * 30)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
        FileHandle.standardError.write(Data("\r\(phase) [\(bar)] \(Int(share * 100))% \(done)/\(total) \(unit) ".utf8))
    }

    func finish() {
        if self.enabled { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
