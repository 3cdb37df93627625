import ArgumentParser
import OrderlyProcesses

ProcessStart.useEventLoopsForConcurrency()

/// `AsyncParsableCommand.main()`, from an async context (top-level code would pick the synchronous one).
func runCommand() async {
    await Bench.main()
}

await runCommand()
