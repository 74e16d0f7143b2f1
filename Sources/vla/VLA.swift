import ArgumentParser

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
            Serve.self,
            Sim.self,
            Train.self,
            Eval.self,
        ]
    )
}
