import Foundation
import PackagePlugin

/// Gives the `orderly` binary its build information (`orderly --version`): before each build,
/// `scripts/build-info.sh` writes `BuildInfo.swift` with the commit and the build time, rewriting it
/// only when the commit (or whether the tree has uncommitted changes) changed, so an unchanged tree
/// does not recompile.
@main
struct BuildInfoPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "generated")
        let root = context.package.directoryURL
        // The image builds without .git: its build passes the commit in ORDERLY_BUILD_COMMIT.
        var environment: [String: String] = [:]
        if let commit = ProcessInfo.processInfo.environment["ORDERLY_BUILD_COMMIT"] { environment["ORDERLY_BUILD_COMMIT"] = commit }
        return [
            .prebuildCommand(
                displayName: "Build information for orderly --version",
                executable: URL(filePath: "/bin/sh"),
                arguments: [root.appending(path: "scripts/build-info.sh").path, root.path, output.appending(path: "BuildInfo.swift").path],
                environment: environment,
                outputFilesDirectory: output)
        ]
    }
}
