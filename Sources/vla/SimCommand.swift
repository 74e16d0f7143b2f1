import ArgumentParser
import Foundation
import RobotSim

/// `vla sim`: the MuJoCo robot fleet (embodiments × tasks, scripted operator, benchmark).
struct Sim: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "MuJoCo simulated robots and language tasks.",
        subcommands: [SimList.self, SimRun.self, SimBench.self, SimEmbodiments.self]
    )
}

/// `vla sim embodiments --out embodiments`: the built-in bodies as embodiment files.
struct SimEmbodiments: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "embodiments",
                                                    abstract: "Write each built-in embodiment's native layout and unified-slot maps as a YAML file.")
    @Option(help: "Directory for <name>.yaml files.") var out = "embodiments"

    func run() throws {
        let dir = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for kind in EmbodimentKind.allCases {
            let file = dir.appendingPathComponent("\(kind.rawValue).yaml")
            let header = "# \(kind.rawValue): \(kind.summary) (MJCF built by RobotSim's SceneBuilder).\n"
                + "# Native entries in order, each with its unified slot (Green-VLA layout, RobotData.UnifiedActionSpace).\n"
            try (header + kind.spec.yaml).write(to: file, atomically: true, encoding: .utf8)
            print(file.path)
        }
    }
}

struct SimList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List embodiments, tasks and the pairs that exist.")

    func run() throws {
        print("Embodiments:")
        for e in EmbodimentKind.allCases {
            let s = e.spec
            print("  \(e.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)) \(e.summary)  [action \(s.actionDimension), state \(s.stateDimension), \(s.promptPrefix)]")
        }
        print("Tasks:")
        for t in TaskKind.allCases {
            print("  \(t.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)) \(t.summary)  (limit \(t.stepLimit) steps)")
        }
        print("Pairs (task: embodiments):")
        for t in TaskKind.allCases { print("  \(t.rawValue): \(t.embodiments.map(\.rawValue).joined(separator: ", "))") }
    }
}

struct SimRun: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the scripted operator for one episode and write it.")

    @Option(help: "Embodiment (arm7, arm6, bimanual).") var embodiment: String = "arm7"
    @Option(help: "Task (reach, push, pick_place, sort, stack, open_drawer).") var task: String = "pick_place"
    @Option(help: "Scene seed.") var seed: UInt64 = 0
    @Option(help: "Output directory.") var out: String
    @Option(help: "Image side in pixels.") var size: Int = 96
    @Flag(help: "Use the imperfect operator (noise, tremor, delay, slow moves, hesitation).") var imperfect = false
    @Option(help: "Operator speed scale.") var speed: Double = 1

    func run() throws {
        guard let e = EmbodimentKind(rawValue: embodiment) else { throw ValidationError("unknown embodiment \(embodiment)") }
        guard let t = TaskKind(rawValue: task) else { throw ValidationError("unknown task \(task)") }
        var config = EnvironmentConfig(imageWidth: size, imageHeight: size)
        if speed < 1 { config.stepLimit = Int((Double(t.stepLimit) / max(speed, 0.1)).rounded(.up)) }
        let env = try RobotEnvironment(embodiment: e, task: t, seed: seed, config: config)
        var profile: OperatorProfile = imperfect ? .imperfect(seed: seed) : .clean
        profile.speedScale = speed
        let recorder = EpisodeRecorder(environment: env)
        let r = try SimRunner.runExpert(env, profile: profile, recorder: recorder)
        let dir = URL(fileURLWithPath: out)
        try recorder.write(to: dir)
        print("\(e.rawValue) / \(t.rawValue) seed \(seed): \"\(env.instruction)\" -> \(r.success ? "success" : "failure") in \(r.steps) steps")
        print("wrote \(dir.path)/episode.safetensors, episode.json, \(env.cameraNames.map { "\($0).png" }.joined(separator: ", "))")
    }
}

struct SimBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Physics steps/s, frames/s (default vs fast flags) and expert success.")

    @Option(help: "Seeds per (embodiment, task) pair for the success table (0 skips it).") var episodes: Int = 100
    @Flag(help: "Also measure the imperfect operator.") var imperfect = false
    @Option(help: "Off-screen MSAA samples for the frame-rate rows (MuJoCo's default is 4).") var multisamples: Int = 0
    @Option(help: "First scene seed of the success table.") var firstSeed: UInt64 = 0
    @Flag(help: "Skip the speed rows.") var skipSpeed = false

    func run() throws {
        emit("| embodiment | physics steps/s | frames/s default flags | frames/s fast flags | speed-up |")
        emit("|---|---:|---:|---:|---:|")
        var gl = ""
        for e in EmbodimentKind.allCases where !skipSpeed {
            let s = try SimBenchmark.speed(embodiment: e, multisamples: multisamples)
            gl = s.glRenderer
            emit("| \(e.rawValue) | \(Int(s.physicsStepsPerSecond)) | \(String(format: "%.1f", s.defaultFramesPerSecond)) | \(String(format: "%.0f", s.fastFramesPerSecond)) | \(String(format: "%.0fx", s.fastFramesPerSecond / s.defaultFramesPerSecond)) |")
        }
        emit("(96x96 scene camera into a 96x96 off-screen buffer, \(multisamples)x MSAA, one thread, GL: \(gl))\n")
        guard episodes > 0 else { return }
        emit("| task | embodiment | expert success | mean steps |\(imperfect ? " imperfect success | imperfect mean steps |" : "")")
        emit("|---|---|---:|---:|\(imperfect ? "---:|---:|" : "")")
        for (e, t) in SimRunner.pairs {
            let r = try SimBenchmark.expertSuccess(embodiment: e, task: t, episodes: episodes, firstSeed: firstSeed)
            var line = "| \(t.rawValue) | \(e.rawValue) | \(r.successes)/\(r.episodes) | \(String(format: "%.0f", r.meanSteps)) |"
            if imperfect {
                let q = try SimBenchmark.expertSuccess(embodiment: e, task: t, episodes: episodes, profile: .imperfect(seed: 1), firstSeed: firstSeed)
                line += " \(q.successes)/\(q.episodes) | \(String(format: "%.0f", q.meanSteps)) |"
            }
            emit(line)
        }
    }
}

/// Unbuffered line output, so long benchmark tables show progress even when piped.
private func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
