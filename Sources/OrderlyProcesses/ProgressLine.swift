import Foundation
import OrderlyReadModels

/// A progress line on a terminal (redrawn in place; rebuilds, exports, the load generator); nothing
/// when stderr is not one.
public final class ProgressLine: Sendable {
    public let enabled: Bool

    public init(enabled: Bool = isatty(STDERR_FILENO) == 1) {
        self.enabled = enabled
    }

    public func show(_ progress: RebuildProgress) {
        self.show(
            phase: progress.phase.rawValue, done: progress.position, total: progress.target,
            unit: "position, \(progress.events) events")
    }

    public func show(phase: String, done: Int64, total: Int64, unit: String) {
        guard self.enabled else { return }
        let share = total > 0 ? min(1, Double(done) / Double(total)) : 1
        let filled = Int(share * 30)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
        FileHandle.standardError.write(Data("\r\(phase) [\(bar)] \(Int(share * 100))% \(done)/\(total) \(unit) ".utf8))
    }

    public func finish() {
        if self.enabled { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
