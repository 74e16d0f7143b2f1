import ArgumentParser
import Foundation

/// The `vla` command line: each subcommand parses its arguments and calls one library entry point.
@main
struct VLA: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vla",
        abstract: "SwiftVLA: staged VLA training and fleet-scale online post-training.",
        subcommands: [
            ActorCommand.self,
            Bench.self,
            DataCommand.self,
            Demo.self,
            LearnerCommand.self,
            Probe.self,
            Serve.self,
            Sim.self,
            Train.self,
            Eval.self,
        ]
    )
}

/// `print` for every `vla` command: flushes each line, so progress reaches a redirected log
/// (`vla train … > run.log`) as it happens rather than when stdout's block buffer fills.
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    Swift.print(items.map { "\($0)" }.joined(separator: separator), terminator: terminator)
    fflush(nil)   // nil: all streams (naming stdout is not concurrency-safe in Swift 6)
}
