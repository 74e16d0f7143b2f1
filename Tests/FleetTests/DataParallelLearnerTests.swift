import Foundation
import RobotData
import RobotSim
import Testing
import TensorKit
import TestSupport
import Training
import VLAModel
@testable import Fleet

/// A data-parallel learner end to end: two `vla learner --data-parallel ring` processes (MLX
/// ring ranks on loopback) serve four in-process VLA actors, shard their uploads, train in
/// lockstep and stop together; a rank killed with -9 ends its peer through the collective
/// timeout; the job restarts from the checkpoint with one rank and reads the whole store.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct DataParallelLearnerTests {
    /// One rank's process; stdout and stderr go to files read while it runs.
    final class RankProcess {
        let process = Process()
        let out: URL, err: URL

        init(binary: URL, arguments: [String], rank: Int?, hosts: URL?, logs: URL) throws {
            out = logs.appendingPathComponent("rank\(rank ?? 0)-\(UUID().uuidString).out")
            err = out.deletingPathExtension().appendingPathExtension("err")
            for f in [out, err] { try Data().write(to: f) }
            process.executableURL = binary
            process.arguments = arguments
            process.currentDirectoryURL = ChildProcess.packageRoot
            var env = ProcessInfo.processInfo.environment
            for key in ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "grpc_proxy", "all_proxy"] { env[key] = nil }
            if let rank, let hosts { env["MLX_RANK"] = "\(rank)"; env["MLX_HOSTFILE"] = hosts.path }
            process.environment = env
            process.standardOutput = try FileHandle(forWritingTo: out)
            process.standardError = try FileHandle(forWritingTo: err)
            try process.run()
        }

        var output: String { (try? String(contentsOf: out, encoding: .utf8)) ?? "" }
        var errors: String { (try? String(contentsOf: err, encoding: .utf8)) ?? "" }

        func waitFor(_ prefix: String, timeout: Double) async throws -> Substring {
            let deadline = ContinuousClock.now + .seconds(timeout)
            while ContinuousClock.now < deadline {
                if let line = output.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) { return line }
                guard process.isRunning else { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw TestFailure("no line starting with \"\(prefix)\": \(output.suffix(800)) \(errors.suffix(800))")
        }

        /// Exit status, or nil if still running after `timeout` (then killed).
        func exitStatus(timeout: Double) async throws -> Int32? {
            let deadline = ContinuousClock.now + .seconds(timeout)
            while process.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            guard !process.isRunning else { kill(process.processIdentifier, SIGKILL); process.waitUntilExit(); return nil }
            return process.terminationStatus
        }

        func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

        /// "stopped at train step N: A episodes accepted, P read from other ranks" → (N, A, P).
        var stopped: (steps: Int, accepted: Int, peers: Int)? {
            guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("stopped at train step ") }) else { return nil }
            let numbers = line.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
            return numbers.count >= 3 ? (numbers[0], numbers[1], numbers[2]) : nil
        }

        var checksum: String? {
            output.split(separator: "\n").first { $0.contains("parameter checksum") }.map { String($0.split(separator: " ").last!) }
        }

        var resumedStep: Int? {
            output.split(separator: "\n").first { $0.hasPrefix("resumed from checkpoint at train step ") }
                .flatMap { Int($0.split(separator: " ").last!) }
        }
    }

    struct TestFailure: Error, CustomStringConvertible { var description: String; init(_ d: String) { description = d } }

    @Test func twoRanksShardFourActorsTrainInLockstepAndRestartWithOneRank() async throws {
        let vla = try #require(ChildProcess.vlaBinary(), "no vla binary beside the tests: build it (swift build) first")
        let root = temporaryDirectory("data-parallel")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        // A tiny pretrained VLA and its offline demos, as `vla learner --checkpoint --demos` reads them.
        let demos = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_010, 10_011], imageSize: 16)
        let demoStore = try EpisodeStore(root: root.appendingPathComponent("demos"))
        for d in demos { try demoStore.insert(d) }
        let stats = NormalizationStats(episodes: demos)
        let checkpoint = root.appendingPathComponent("checkpoint")
        try VLAPolicy(model: try FlowMatchingVLA(config: tinyVLAConfig(), key: RandomKey(seed: 1)), stats: stats)
            .save(to: checkpoint, optimizer: nil, step: 0)

        let store = root.appendingPathComponent("store")
        let hosts = root.appendingPathComponent("hosts.json")
        let ports = try (0..<2).map { _ in try RingLauncher.freePort() }
        let ringPorts = try (0..<2).map { _ in try RingLauncher.freePort() }
        try "[[\"127.0.0.1:\(ringPorts[0])\"], [\"127.0.0.1:\(ringPorts[1])\"]]".write(to: hosts, atomically: true, encoding: .utf8)
        func learnerArguments(_ extra: [String]) -> [String] {
            ["learner", "--checkpoint", checkpoint.path, "--demos", demoStore.root.path, "--demos-per-task", "2",
             "--store", store.path, "--publish-every", "5", "--checkpoint-every", "5", "--seed", "3",
             "--data-parallel", "ring", "--collective-timeout", "4"] + extra
        }
        let endpoints = ["--rank-endpoints", "127.0.0.1:\(ports[0]),127.0.0.1:\(ports[1])"]
        func startRanks() throws -> [RankProcess] {
            try (0..<2).map { try RankProcess(binary: vla, arguments: learnerArguments(endpoints), rank: $0, hosts: hosts, logs: root) }
        }

        // 1. Two ranks; two Python robots (swiftvla_client) and four Swift actors register with
        // rank 0, which spreads them round robin: rank 0, 1, 0, 1, 0, 1.
        var ranks = try startRanks()
        for r in ranks { _ = try await r.waitFor("learner listening on", timeout: 60) }
        let python = try await ChildProcess.run(ChildProcess.python, ["clients/python/tests/upload_to_ranks.py", "--port", "\(ports[0])",
                                                                     "--robots", "2"], timeout: 60)
        #expect(python.status == 0, "\(python.stderr.suffix(800))")
        struct PythonSummary: Decodable { var endpoints: [String]; var statuses: [String] }
        let summary = try JSONDecoder().decode(PythonSummary.self, from: Data((python.stdout.split(separator: "\n").last ?? "").utf8))
        #expect(summary.endpoints == ["", "127.0.0.1:\(ports[1])"] && summary.statuses == ["acked", "acked"], "\(summary)")
        let reports = try await withThrowingTaskGroup(of: FleetActorReport.self) { group in
            for i in 0..<4 {
                var c = smallActorConfig("dp-actor-\(i)", port: ports[0], episodes: 2)
                c.heartbeatInterval = 0.2
                let policy = VLAActorPolicy(policy: VLAPolicy(model: try FlowMatchingVLA(config: tinyVLAConfig(), key: RandomKey(seed: 1)), stats: stats),
                                            embodiment: EmbodimentKind.arm7.spec, seed: UInt64(i))
                group.addTask { try await FleetActor(config: c, policy: policy).run() }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for report in reports {
            #expect(report.acked == 2 && report.unacked == 0, "actor report \(report)")
            #expect(!report.versionsLoaded.isEmpty, "actors take policy versions from rank 0")
        }
        // Let each rank read the other's shard, then stop the job through rank 0 alone.
        try await Task.sleep(for: .seconds(2))
        ranks[0].signal(SIGTERM)
        let statuses = [try await ranks[0].exitStatus(timeout: 30), try await ranks[1].exitStatus(timeout: 30)]
        #expect(statuses == [0, 0], "exit statuses \(statuses): \(ranks[0].errors.suffix(600)) \(ranks[1].errors.suffix(600))")
        #expect(ranks[1].output.contains("another rank stopped the job"))
        let s0 = try #require(ranks[0].stopped, "\(ranks[0].output)"), s1 = try #require(ranks[1].stopped, "\(ranks[1].output)")
        // Round robin: a Python robot and two actors (1 + 4 episodes) per rank; each read the other's.
        #expect(s0.accepted == 5 && s1.accepted == 5, "accepted \(s0.accepted) + \(s1.accepted)")
        #expect(s0.peers == s1.accepted && s1.peers == s0.accepted, "peer episodes \(s0.peers), \(s1.peers)")
        #expect(s0.steps == s1.steps && s0.steps > 0, "train steps \(s0.steps) vs \(s1.steps)")
        // Same updates on both ranks: the parameters agree to the last printed digit.
        #expect(ranks[0].checksum != nil && ranks[0].checksum == ranks[1].checksum)
        for shard in 0..<2 {
            let files = try FileManager.default.contentsOfDirectory(atPath: LearnerRanks.shard(shard, of: store).appendingPathComponent("episodes").path)
            #expect(files.filter { $0.hasSuffix(".safetensors") }.count == 5)
        }

        // 2. Restart both ranks: they resume from rank 0's checkpoint; kill -9 rank 1 and rank 0
        // must give up within the collective timeout (status 75), not hang.
        ranks = try startRanks()
        for r in ranks { _ = try await r.waitFor("learner listening on", timeout: 60) }
        let resumed = try #require(ranks[0].resumedStep)
        #expect(resumed > 0 && ranks[1].resumedStep == resumed)
        try await Task.sleep(for: .seconds(1))
        ranks[1].signal(SIGKILL)
        let survivor = try await ranks[0].exitStatus(timeout: 30)
        _ = try await ranks[1].exitStatus(timeout: 5)
        #expect(survivor == 75, "rank 0 exit \(String(describing: survivor)): \(ranks[0].errors.suffix(600))")
        #expect(ranks[0].errors.contains("exiting with status 75 for a restart from the last checkpoint"))

        // 3. One rank (no launcher): resumes from the checkpoint and reads every shard.
        let single = try RankProcess(binary: vla, arguments: learnerArguments(["--port", "\(ports[0])"]), rank: nil, hosts: nil, logs: root)
        let listening = try await single.waitFor("learner listening on", timeout: 60)
        #expect(listening.contains("as rank 0 of 1"))
        #expect((single.resumedStep ?? 0) >= resumed)
        try await Task.sleep(for: .seconds(2))
        single.signal(SIGTERM)
        #expect(try await single.exitStatus(timeout: 30) == 0, "\(single.errors.suffix(600))")
        let s = try #require(single.stopped, "\(single.output)")
        // Its own shard (rank 0's) holds five episodes; the other five come from rank 1's shard.
        #expect(s.peers == 5, "one rank read \(s.peers) episodes from other shards")
    }
}
