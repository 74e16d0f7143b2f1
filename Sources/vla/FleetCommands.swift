import ArgumentParser
import Fleet
import Foundation
import RobotData
import RobotSim

/// `vla learner`: the fleet's learner (gRPC server, episode store, BC training, weight
/// publication) until interrupted.
struct LearnerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "learner", abstract: "Run the fleet learner (gRPC) until interrupted.")

    @Option(help: "Address to bind.") var host = "127.0.0.1"
    @Option(help: "Port (0 = any free port, printed at start).") var port = 50051
    @Option(help: "Episode store directory.") var store = "runs/learner/store"
    @Option(help: "Embodiment the policy is trained for.") var embodiment = "arm7"
    @Option(help: "Comma-separated tasks to serve.") var tasks = "reach"
    @Option(help: "Publish a new policy version every N train steps.") var publishEvery = 200
    @Option(help: "Shared token actors must present (empty = none).") var token = ""
    @Option(help: "Seed.") var seed: UInt64 = 0

    func run() async throws {
        guard let e = EmbodimentKind(rawValue: embodiment) else { throw ValidationError("unknown embodiment \(embodiment)") }
        let taskKinds = try tasks.split(separator: ",").map { name in
            guard let t = TaskKind(rawValue: String(name)) else { throw ValidationError("unknown task \(name)") }
            return t
        }
        var config = FleetLearnerConfig(storeDirectory: URL(fileURLWithPath: store))
        config.host = host
        config.port = port
        config.catalog = TaskCatalog(taskKinds.map { (e, $0) })
        config.publishEveryTrainSteps = publishEvery
        config.minPublishInterval = 1
        config.trainStepPause = 0.001
        config.authToken = token.isEmpty ? nil : token
        let learner = try FleetLearner(config: config, backend: BehaviorCloningBackend(embodiment: e.spec, seed: seed))
        let bound = try await learner.start()
        say("learner listening on \(host):\(bound), store \(store), serving \(e.rawValue): \(tasks)")
        var last = learner.metrics.snapshot()
        while !Task.isCancelled {
            try await Task.sleep(for: .seconds(5))
            let m = learner.metrics.snapshot()
            say("episodes \(m.episodesAccepted) (+\(m.episodesAccepted - last.episodesAccepted)), dup \(m.episodesDuplicate), rejected \(m.episodesRejected) \(m.rejections), train steps \(m.trainSteps), loss \(m.lastLoss.map { String(format: "%.4f", $0) } ?? "-"), version \(m.latestVersion) (\(m.lastPublicationBytes) B in \(String(format: "%.1f", m.lastPublicationSeconds * 1000)) ms)")
                last = m
        }
        await learner.stop()
    }
}

/// `vla actor --learner HOST:PORT`: one simulated robot that runs the learner's policy,
/// with the scripted operator taking over when needed, and streams its episodes back.
struct ActorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "actor", abstract: "Run one fleet actor (a simulated robot) against a learner.")

    @Option(help: "Learner address HOST:PORT.") var learner: String
    @Option(help: "Actor id (unique per learner).") var id = "actor-\(ProcessInfo.processInfo.processIdentifier)"
    @Option(help: "Embodiment.") var embodiment = "arm7"
    @Option(help: "Comma-separated tasks this actor can run.") var tasks = "reach"
    @Option(help: "Episodes to run.") var episodes = 20
    @Option(help: "Camera image side in pixels (0 = no rendering).") var size = 64
    @Option(help: "Token for the learner.") var token = ""

    func run() async throws {
        let parts = learner.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("--learner must be HOST:PORT") }
        guard let e = EmbodimentKind(rawValue: embodiment) else { throw ValidationError("unknown embodiment \(embodiment)") }
        let taskKinds = try tasks.split(separator: ",").map { name in
            guard let t = TaskKind(rawValue: String(name)) else { throw ValidationError("unknown task \(name)") }
            return t
        }
        var config = FleetActorConfig(actorID: id, learnerPort: port, embodiment: e, tasks: taskKinds)
        config.learnerHost = String(parts[0])
        config.episodes = episodes
        config.authToken = token
        config.environment = EnvironmentConfig(imageWidth: max(size, 1), imageHeight: max(size, 1), renderImages: size > 0)
        let actor = FleetActor(config: config, policy: try LinearPolicy(embodiment: e.spec, seed: 0))
        let report = try await actor.run()
        for (i, ep) in report.episodes.enumerated() {
            say("episode \(i): \(ep.task) v\(ep.policyVersion) (lag \(ep.policyLag)) \(ep.steps) steps, operator \(ep.operatorSteps), \(ep.success ? "success" : "failure")")
        }
        say("acked \(report.acked) (dup \(report.duplicates)), rejected \(report.rejected), unacked \(report.unacked), versions loaded \(report.versionsLoaded), \(String(format: "%.1f", report.seconds)) s")
    }
}

/// Prints a line unbuffered, so a learner's progress shows up at once in logs and pipes.
private func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
