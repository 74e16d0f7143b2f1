import ArgumentParser
import Fleet
import Foundation
import PolicyWebSocket
import RobotData
import RobotSim
import TensorKit
import Training
import VLAModel

/// `vla serve --checkpoint C`: the policy server (observation → action chunk over gRPC).
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a checkpoint over gRPC: observation in, native action chunk out (PolicyServer in fleet.proto).")

    @Option(help: "Checkpoint directory.") var checkpoint: String
    @Option(help: "Also serve the body declared in this embodiment file (the checkpoint must be pretrained on it, e.g. bridges/metaworld/sawyer.yaml).") var embodimentFile: String?
    @Option(help: "Address to bind.") var host = "127.0.0.1"
    @Option(help: "Port (0 = any free port, printed at start).") var port = 50061
    @Option(help: "Log latency percentiles every N requests.") var logEvery = 100
    @Option(help: "RECAP checkpoints: classifier-free guidance weight toward \"advantage positive\".") var advantageGuidance: Double?
    @Option(help: "Seed of the sampler's noise for requests without their own.") var seed: UInt64 = 0
    @Option(help: "Serve over TLS: certificate chain (PEM); needs --tls-key.") var tlsCert: String?
    @Option(help: "Serve over TLS: private key (PEM).") var tlsKey: String?
    @Option(help: "Follow this learner (HOST:PORT): serve each version it publishes from the next request on (reconnects if it goes away, serving the version it has).") var followLearner: String?
    @Option(help: "With --follow-learner: the id registered with the learner.") var actorId = "serve-\(ProcessInfo.processInfo.processIdentifier)"
    @Option(help: "With --follow-learner: token for the learner.") var token = ""
    @Option(help: "With --follow-learner: connect over TLS, trusting the certificates in this PEM file.") var tlsCa: String?
    @Option(help: "Also serve a WebSocket: JSON at ws://HOST:PORT/policy, MessagePack (openpi's format) at ws://HOST:PORT/ (0 = any free port).") var websocketPort: Int?

    func run() async throws {
        let (policy, step) = try VLAPolicy.load(from: URL(fileURLWithPath: checkpoint))
        if let advantageGuidance {
            guard policy.model.config.advantageConditioning else { throw ValidationError("--advantage-guidance needs a RECAP checkpoint") }
            policy.advantageGuidance = advantageGuidance
        }
        let declared = try embodimentFile.map { try EmbodimentFile.load(URL(fileURLWithPath: $0)).spec }
        if let spec = declared, policy.stats.actions[spec.name] == nil {
            throw ValidationError("\(checkpoint) was not pretrained on \(spec.name) (no statistics for it)")
        }
        let server = PolicyServer(policy: policy, checkpointStep: step, host: host, port: port, seed: seed,
                                  tls: try tlsOption(cert: tlsCert, key: tlsKey), declared: declared.map { [$0] } ?? [])
        server.logEvery = logEvery
        server.log = { line in FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
        let bound = try await server.start()
        print("serving \(checkpoint) (step \(step), \(policy.stats.actions.keys.sorted().joined(separator: ", ")), "
              + "\(policy.model.config.imageSize)×\(policy.model.config.imageSize) cameras) on \(host):\(bound)")
        if let followLearner {
            let (learnerHost, learnerPort) = try hostAndPort(followLearner, option: "--follow-learner")
            // Registered as the declared body when there is one (a MetaWorld learner serves sawyer only).
            guard let body = declared?.name ?? policy.stats.actions.keys.sorted().first else { throw ValidationError("the checkpoint has no embodiment") }
            var follow = FollowLearnerConfig(host: learnerHost, port: learnerPort, actorID: actorId, embodiment: body)
            follow.authToken = token
            follow.tlsTrustRoots = tlsCa
            server.follow(follow)
            print("following learner \(followLearner) as \(actorId) (\(body))")
        }
        var websocket: PolicyWebSocketServer?
        if let websocketPort {
            let ws = PolicyWebSocketServer(policyServer: server, host: host, port: websocketPort)
            print("WebSocket (JSON): ws://\(host):\(try await ws.start())/policy")
            websocket = ws
        }
        await server.wait()
        await websocket?.stop()
    }
}

/// `vla bench serve`: chunk latency through the server on loopback against the same
/// sampling in process (the reference), on observations from RobotSim.
struct BenchServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Policy-server chunk latency p50/p99 over gRPC on loopback vs the same sampling in process.")

    @Option(help: "Checkpoint (default: a freshly initialized default-size VLA).") var checkpoint: String?
    @Option(help: "Requests per measurement.") var requests = 200
    @Option(help: "Embodiment.") var embodiment = "arm7"
    @Option(help: "Task.") var task = "reach"

    func run() async throws {
        guard let body = EmbodimentKind(rawValue: embodiment), let kind = TaskKind(rawValue: task) else {
            throw ValidationError("unknown embodiment or task")
        }
        let policy: VLAPolicy
        if let checkpoint {
            policy = try VLAPolicy.load(from: URL(fileURLWithPath: checkpoint)).policy
        } else {
            // Latency does not depend on the weights; the statistics need a few real episodes.
            let demos = try DemoCollector.collect(embodiment: body, task: kind, seeds: [10_000, 10_001], imageSize: VLAConfig().imageSize)
            policy = VLAPolicy(model: try FlowMatchingVLA(config: VLAConfig(), key: RandomKey(seed: 0)), stats: NormalizationStats(episodes: demos))
        }
        let size = policy.model.config.imageSize
        // 20 distinct observations from fresh scenes, cycled.
        var observations: [PolicyObservation] = []
        for seed in 0..<20 {
            let env = try RobotEnvironment(embodiment: body, task: kind, seed: UInt64(seed), config: EnvironmentConfig(imageWidth: size, imageHeight: size))
            observations.append(PolicyEvaluator.policyObservation(env.reset(), env: env))
        }
        print("model: \(policy.model.parameterCount) parameters, \(size)×\(size) cameras, horizon \(policy.model.config.horizon), \(policy.model.config.samplingSteps) Euler steps; \(requests) requests each")

        var local: [Double] = []
        for i in 0..<requests {
            let start = DispatchTime.now()
            _ = try TensorLock.run { try policy.actionChunk(observations[i % observations.count], key: RandomKey(seed: UInt64(i))) }
            local.append(Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6)
        }
        let server = PolicyServer(policy: policy)
        let port = try await server.start()
        let remote: [Double] = try await PolicyClient.with(port: port) { client in
            var times: [Double] = []
            for i in 0..<requests {
                let request = PolicyClient.request(observations[i % observations.count], imageSize: size, seed: UInt64(i))
                let start = DispatchTime.now()
                _ = try await client.predictChunk(request)
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6)
            }
            return times
        }
        let summary = server.summary
        await server.stop()
        let l = LatencySummary.Percentiles(local), r = LatencySummary.Percentiles(remote)
        print("                      p50 ms   p90 ms   p99 ms   max ms")
        print(String(format: "in process (ref)   %8.2f %8.2f %8.2f %8.2f", l.p50, l.p90, l.p99, l.max))
        print(String(format: "gRPC round trip    %8.2f %8.2f %8.2f %8.2f", r.p50, r.p90, r.p99, r.max))
        print(String(format: "server handling    %8.2f %8.2f %8.2f %8.2f", summary.handling.p50, summary.handling.p90, summary.handling.p99, summary.handling.max))
        print(String(format: "round trip / in process: p50 %.2fx, p99 %.2fx (transport + encoding: %.2f ms at p50)",
                     r.p50 / l.p50, r.p99 / l.p99, r.p50 - l.p50))
    }
}
