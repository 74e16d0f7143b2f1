import Foundation
import RobotData
import TensorKit
import Testing
import TestSupport
import Training
import VLAModel
@testable import Fleet

/// The MetaWorld chain with the VLA: the bridge uploads sawyer demos with camera frames → a
/// fresh VLA is behaviour-cloned from the learner's store → a learner post-trains that
/// checkpoint for the declared body on the bridge's next episodes.
@Suite(.stopsLearners, .timeLimit(.minutes(3)))
struct MetaWorldVLATests {
    let root = ChildProcess.packageRoot
    let model = tinyVLAConfig()

    func sawyer() throws -> EmbodimentFile {
        try EmbodimentFile.load(root.appendingPathComponent("bridges/metaworld/sawyer.yaml"))
    }

    func catalog(imageSide: Int? = nil) throws -> TaskCatalog {
        let file = try sawyer()
        var c = TaskCatalog(specs: [file.spec], tasks: ["sawyer": ["reach-v3"]])
        c.cameras = ["sawyer": try #require(file.cameras)]
        c.imageSide = imageSide
        return c
    }

    /// `demos` all-operator reach-v3 episodes from the bridge with `model.imageSize` frames.
    func bridge(port: Int, demos: Int, _ more: [String] = ["--episodes", "0", "--max-steps", "60"]) async throws -> ChildProcess.Result {
        let python = root.appendingPathComponent(".venv-metaworld/bin/python")
        try #require(FileManager.default.isExecutableFile(atPath: python.path), "run scripts/bootstrap: it creates .venv-metaworld")
        return try await ChildProcess.run(python, [root.appendingPathComponent("bridges/metaworld/bridge.py").path,
                                                   "--learner", "127.0.0.1:\(port)", "--tasks", "reach-v3", "--demo-episodes", "\(demos)",
                                                   "--eval-episodes", "1", "--image-size", "\(model.imageSize)"] + more, timeout: 120)
    }

    /// A store holding `count` bridge demos (a learner with the linear policy received them).
    func bridgeDemoStore(_ name: String, count: Int) async throws -> URL {
        var collect = FleetLearnerConfig(storeDirectory: temporaryDirectory(name))
        collect.catalog = try catalog()
        let collector = try trackedLearner(config: collect, backend: try BehaviorCloningBackend(embodiment: try sawyer().spec, seed: 2))
        let uploaded = try await bridge(port: try await collector.start(), demos: count)
        await collector.stop()
        #expect(uploaded.status == 0, "\(uploaded.stderr.suffix(1500))")
        return collect.storeDirectory
    }

    /// Serves `backend` for sawyer at the model's image side, lets the bridge upload two
    /// episodes and waits (bounded) until online samples were trained on and a version
    /// followed; checks what the learner accepted and published.
    func postTrain(_ backend: PostTrainingBackend, name: String) async throws {
        var post = FleetLearnerConfig(storeDirectory: temporaryDirectory(name))
        post.catalog = try catalog(imageSide: model.imageSize)
        post.publishEveryTrainSteps = 3
        post.publishInitialPolicy = false
        let learner = try trackedLearner(config: post, backend: backend)
        let online = try await bridge(port: try await learner.start(), demos: 2)
        var before = Int.max
        for _ in 0..<900 {
            if before == Int.max, await backend.samplesDrawn.online > 0 { before = learner.metrics.snapshot().versionsPublished }
            if learner.metrics.snapshot().versionsPublished > before { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        await learner.stop()
        #expect(online.status == 0, "\(online.stderr.suffix(1500))")
        let m = learner.metrics.snapshot()
        #expect(m.episodesAccepted == 2 && m.episodesRejected == 0)
        #expect(await backend.onlineEpisodeCount == 2)
        #expect(before != Int.max && m.versionsPublished > before, "\(m.versionsPublished) versions, \(before) before online samples")
        #expect(try learner.store.loadAll().episodes.allSatisfy { $0.embodiment == "sawyer" && $0.cameras["scene"]?.height == model.imageSize })
    }

    /// Item: the VLA learner for a declared body. A tiny VLA normalized on bridge demos is
    /// post-trained on the bridge's online episodes alone (no offline demos); a checkpoint
    /// never trained on a body is refused for it by name.
    @Test func aVLACheckpointIsPostTrainedForTheDeclaredBody() async throws {
        let spec = try sawyer().spec
        let store = try await bridgeDemoStore("metaworld-stats", count: 2)
        let demos = try StoredDemos.load(store: store, embodiment: "sawyer", imageSize: model.imageSize)
        #expect(demos.count == 2)
        let checkpoint = temporaryDirectory("metaworld-tiny-vla")
        try VLAPolicy(model: try FlowMatchingVLA(config: model, key: RandomKey(seed: 1)), stats: NormalizationStats(episodes: demos))
            .save(to: checkpoint, optimizer: nil, step: 0)
        var setup = PostTrainingSetup()
        setup.schedule.batchSize = 8
        let other = try EmbodimentSpec(yaml: spec.yaml.replacingOccurrences(of: "name: sawyer", with: "name: other_arm"))
        #expect(throws: PostTrainingError.notPretrainedOn("other_arm")) {
            try setup.learnerBackend(checkpoint: checkpoint, offline: [], declared: [other], log: { _ in })
        }
        try await postTrain(try setup.learnerBackend(checkpoint: checkpoint, offline: [], declared: [spec], log: { _ in }).backend,
                            name: "metaworld-online-only")
    }

    /// Item: pretraining on the bridge's demos. A fresh tiny VLA behaviour-cloned from the
    /// learner's store of bridge demos (frames included) lowers its loss, and a learner
    /// post-trains the checkpoint for the declared body with those demos as offline data.
    @Test func aVLAClonedFromBridgeDemosLearnsAndIsPostTrained() async throws {
        let spec = try sawyer().spec
        let store = try await bridgeDemoStore("metaworld-bc-demos", count: 3)
        let run = temporaryDirectory("metaworld-bc")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        var job = BehaviorCloningRun(output: run)
        job.storedBody = .init(store: store, spec: spec)
        job.model = model
        job.schedule.totalSteps = 40
        job.schedule.batchSize = 8
        job.schedule.warmupSteps = 2
        job.schedule.learningRate = 1e-3
        job.oodGuard = nil
        let demos = try job.demonstrations { _ in }
        #expect(demos.count == 3 && demos.allSatisfy { $0.embodiment == "sawyer" && $0.cameras["scene"]?.width == model.imageSize })
        let pretrained = try job.run { _ in }
        #expect(pretrained.stats.actions["sawyer"] != nil)
        let losses = try String(contentsOf: run.appendingPathComponent("loss.csv"), encoding: .utf8)
            .split(separator: "\n").dropFirst().compactMap { Double($0.split(separator: ",")[1]) }
        #expect(losses.count == 40)
        let (early, late) = (losses.prefix(5).reduce(0, +) / 5, losses.suffix(10).reduce(0, +) / 10)
        #expect(late < 0.8 * early, "loss \(early) over the first 5 steps, \(late) over the last 10")
        print(String(format: "metaworld bc: loss %.4f over the first 5 steps, %.4f over the last 10", early, late))
        // A store without usable demos is refused by name (these are 16-pixel frames).
        #expect(throws: StoredDemos.LoadError.noDemos(embodiment: "sawyer", tasks: nil, found: 3, imageSize: 64)) {
            try StoredDemos.load(store: store, embodiment: "sawyer", imageSize: 64)
        }
        var setup = PostTrainingSetup()
        setup.schedule.batchSize = 8
        let backend = try setup.learnerBackend(checkpoint: run.appendingPathComponent("checkpoint"), offline: demos, declared: [spec],
                                               log: { _ in }).backend
        try await postTrain(backend, name: "metaworld-post")
        let drawn = await backend.samplesDrawn
        #expect(drawn.online > 0 && drawn.offline > 0, "\(drawn)")
    }

    /// Item: the bridge's policy episodes are acted by a served VLA that follows the learner.
    /// With forced takeovers the server answers exactly the chunks the bridge requested, the
    /// stored policy steps are the steps the bridge did not hand to the operator, and every
    /// step is stored with the version that answered: v1 (published at start) in the first
    /// run; after the learner publishes v2, the next run's steps carry v2.
    @Test func bridgePolicyEpisodesAreDrivenByTheServedVLA() async throws {
        let spec = try sawyer().spec
        let store = try await bridgeDemoStore("metaworld-serve-stats", count: 1)
        let demos = try StoredDemos.load(store: store, embodiment: "sawyer", imageSize: model.imageSize)
        let checkpoint = temporaryDirectory("metaworld-served-checkpoint")
        try VLAPolicy(model: try FlowMatchingVLA(config: model, key: RandomKey(seed: 1)), stats: NormalizationStats(episodes: demos))
            .save(to: checkpoint, optimizer: nil, step: 0)
        var setup = PostTrainingSetup()
        setup.schedule.batchSize = 8
        var config = FleetLearnerConfig(storeDirectory: temporaryDirectory("metaworld-served"))
        config.catalog = try catalog(imageSide: model.imageSize)
        config.publishEveryTrainSteps = .max      // v1 at start, v2 when the test publishes it
        let learner = try trackedLearner(config: config, backend: try setup.learnerBackend(
            checkpoint: checkpoint, offline: [], declared: [spec], log: { _ in }).backend)
        let learnerPort = try await learner.start()
        let server = PolicyServer(policy: try VLAPolicy.load(from: checkpoint).policy, declared: [spec])
        let serverPort = try await server.start()
        server.follow(FollowLearnerConfig(host: "127.0.0.1", port: learnerPort, actorID: "metaworld-server", embodiment: "sawyer"))
        func waitForVersion(_ version: Int) async throws {
            for _ in 0..<600 where server.newestReceivedVersion < version { try await Task.sleep(for: .milliseconds(50)) }
            try #require(server.newestReceivedVersion >= version, "server has v\(server.newestReceivedVersion), waited for v\(version)")
        }
        func run(episodes: Int) async throws -> ChildProcess.Result {
            try await bridge(port: learnerPort, demos: 0,
                             ["--episodes", "\(episodes)", "--max-steps", "40", "--stall-steps", "0", "--takeover-steps", "3",
                              "--policy-server", "127.0.0.1:\(serverPort)"])
        }
        try await waitForVersion(1)
        let result = try await run(episodes: 2)
        let firstRun = try learner.store.loadAll().episodes
        let published = try await learner.publish()
        try await waitForVersion(published.version)
        let second = try await run(episodes: 1)
        await learner.stop()
        let served = server.summary
        await server.stop()
        #expect(result.status == 0 && second.status == 0, "\(result.stderr.suffix(1500))\n\(second.stderr.suffix(1500))")
        struct Summary: Decodable {
            struct Row: Decodable { var acked: Int; var steps: Int; var operator_steps: Int; var policy_requests: Int; var policy_versions: [Int] }
            var tasks: [String: Row]
        }
        func row(_ r: ChildProcess.Result) throws -> Summary.Row {
            try #require(try JSONDecoder().decode(Summary.self, from: Data((r.stdout.split(separator: "\n").last ?? "").utf8)).tasks["reach-v3"])
        }
        let (row, row2) = (try row(result), try row(second))
        // --stall-steps 0: the operator takes 3 steps after every policy step (each takeover drops
        // the rest of the chunk, so every policy step of an uploaded episode asks for a new one).
        #expect(row.acked == 2 && row.policy_requests > 0 && row.operator_steps > 0, "\(row)")
        #expect(served.requests == row.policy_requests + row2.policy_requests && served.rejected == 0,
                "server \(served.requests) requests, bridge \(row.policy_requests) + \(row2.policy_requests)")
        let policySteps = firstRun.reduce(0) { $0 + $1.sources.filter { $0 == .policy }.count }
        #expect(firstRun.count == 2 && policySteps > 0 && policySteps == row.steps - row.operator_steps,
                "\(policySteps) policy steps stored, bridge \(row)")
        // Every step, operator steps included, is stored with the served version in charge.
        func versions(_ e: Episode) -> [Int] { e.stepPolicyVersions ?? Array(repeating: e.policyVersion, count: e.stepCount) }
        #expect(row.policy_versions == [1, 1] && firstRun.allSatisfy { $0.policyVersion == 1 && versions($0).allSatisfy { $0 == 1 } })
        let ids = Set(firstRun.map(\.id))
        let secondRun = try learner.store.loadAll().episodes.filter { !ids.contains($0.id) }
        #expect(published.version == 2 && row2.policy_versions == [2])
        #expect(secondRun.count == 1 && secondRun.allSatisfy { $0.policyVersion == 2 && versions($0).allSatisfy { $0 == 2 } })
        print("metaworld served VLA: \(served.requests) chunks served, \(policySteps) policy steps of \(row.steps) uploaded, v1 then v2")
    }
}
