import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

// Swift concurrency's jobs run on NIO's event loops (the threads that do the sockets' I/O), so an
// await on a database or HTTP answer resumes where the answer arrived instead of hopping to another
// pool's thread. Installed before any task starts; ORDERLY_EXECUTOR=default keeps Swift's own pool.
// Blocking C calls (librdkafka, libmongoc) already run on their own threads and dispatch queues.
if ProcessInfo.processInfo.environment["ORDERLY_EXECUTOR"] != "default" {
    NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
}

/// `AsyncParsableCommand.main()`, from an async context (top-level code would pick the synchronous one).
func runCommand() async {
    await Orderly.main()
}

await runCommand()
