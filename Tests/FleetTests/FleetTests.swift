import Foundation
import GRPCCore
import RobotData
import RobotSim
import Testing
import TensorKit
@testable import Fleet

/// One serialized suite: the tests share MLX (see `TensorLock`) and two cores.
@Suite(.serialized, .stopsLearners, .timeLimit(.minutes(5)))
struct FleetTests {
    // MARK: checksum and weight transfer

    @Test func crc32MatchesTheStandardCheckValue() {
        // The CRC-32/ISO-HDLC check value of "123456789" (also Python's zlib.crc32).
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
        var split = CRC32()
        split.update(Array("1234".utf8))
        split.update(Array("56789".utf8))
        #expect(split.value == 0xCBF4_3926)
    }

    @Test func weightsRoundTripBitExactlyThroughChunks() throws {
        let policy = try LinearPolicy(stateDimension: 17, actionDimension: 8, seed: 42)
        let weights = PolicyWeights(version: 7, trainStep: 123, model: LinearPolicy.modelName, tensors: policy.trainableParameters())
        // 100-byte chunks: the file splits into many, including a short last one.
        let publication = try PolicyPublication(weights, chunkBytes: 100)
        #expect(publication.manifest.chunkCount > 5)
        #expect(publication.updates.count == Int(publication.manifest.chunkCount) + 1)
        #expect(Set(publication.manifest.tensors.map(\.name)) == ["linear.weight", "linear.bias"])
        var assembler = WeightAssembler()
        var received: PolicyWeights?
        for update in publication.updates {
            #expect(received == nil)
            received = try assembler.consume(update)
        }
        let got = try #require(received)
        #expect(got.version == 7 && got.trainStep == 123 && got.model == LinearPolicy.modelName)
        #expect(try bitPatterns(got.tensors) == bitPatterns(weights.tensors))

        // One flipped bit in one chunk: refused by the checksum.
        var corrupted = publication.updates
        if case .chunk(var c) = corrupted[3].kind {
            c.data[c.data.startIndex + 5] ^= 0x10
            corrupted[3].kind = .chunk(c)
        }
        var second = WeightAssembler()
        #expect(throws: WeightTransferError.self) {
            for update in corrupted { _ = try second.consume(update) }
        }
        // A skipped chunk: refused as out of order.
        var third = WeightAssembler()
        #expect(throws: WeightTransferError.self) {
            for (i, update) in publication.updates.enumerated() where i != 2 { _ = try third.consume(update) }
        }
    }

    @Test func publishedWeightsArriveBitExactlyOverGRPC() async throws {
        let (learner, backend) = try makeLearner("watch") { $0.weightChunkBytes = 64 }
        let port = try await learner.start()
        let expected = try bitPatterns(await backend.exportTrainableWeights())
        let weights = try await withFleetClient(port: port) { client in
            _ = try await register(client, actorID: "watcher")
            var request = Swiftvla_Fleet_V1_WatchPolicyRequest()
            request.actorID = "watcher"
            return try await client.watchPolicy(request) { response in
                var assembler = WeightAssembler()
                for try await update in response.messages {
                    if let w = try assembler.consume(update) { return w }
                }
                throw WeightTransferError.corrupt("stream ended early")
            }
        }
        #expect(weights.version == 1)
        #expect(try bitPatterns(weights.tensors) == expected)
        #expect(learner.metrics.snapshot().lastPublicationBytes > 0)
        await learner.stop()
    }

    // MARK: ingest

    @Test func uploadIsAckedAfterPersistingAndDuplicatesAreStoredOnce() async throws {
        let (learner, _) = try makeLearner("dedup") { $0.publishInitialPolicy = false }
        let port = try await learner.start()
        let episode = try syntheticEpisode(steps: 37, seed: 3)
        let messages = EpisodeMessages.encode(episode, actorID: "a1", stepsPerChunk: 8)
        #expect(messages.count == 1 + 5 + 1)   // header, ⌈37/8⌉ chunks, end
        let (first, second) = try await withFleetClient(port: port) { client in
            _ = try await register(client, actorID: "a1")
            let first = try await upload(client, messages)
            // The ack means durable: the store already holds it.
            #expect(try learner.store.contains(episode.id))
            let second = try await upload(client, messages)
            return (first, second)
        }
        #expect(first.episodeID == episode.id.uuidString && !first.duplicate && first.steps == 37)
        #expect(second.duplicate)
        #expect(learner.store.count == 1)
        let stored = try learner.store.load(episode.id)
        #expect(stored.states == episode.states && stored.cameras == episode.cameras && stored.sources == episode.sources)
        #expect(stored.unifiedActions == episode.unifiedActions && stored.policyVersion == 1 && stored.seed == 3)
        let m = learner.metrics.snapshot()
        #expect(m.episodesAccepted == 1 && m.episodesDuplicate == 1 && m.stepsAccepted == 37)
        await learner.stop()
    }

    @Test func malformedUploadsAreRejectedCountedAndTheLearnerKeepsServing() async throws {
        let (learner, _) = try makeLearner("reject") {
            $0.publishInitialPolicy = false
            $0.limits.maxMessageBytes = 64 * 1024
        }
        let port = try await learner.start()
        typealias Request = Swiftvla_Fleet_V1_UploadEpisodeRequest
        let good = try syntheticEpisode(steps: 12, seed: 5)

        func variant(_ edit: (inout [Request]) -> Void) throws -> [Request] {
            var episode = good
            episode.id = UUID()
            var m = EpisodeMessages.encode(episode, actorID: "a1", stepsPerChunk: 4)
            edit(&m)
            return m
        }
        func editStep(_ m: inout [Request], chunk: Int = 1, step: Int = 2, _ body: (inout Swiftvla_Fleet_V1_Step) -> Void) {
            guard case .chunk(var c) = m[chunk].kind else { return }
            body(&c.steps[step])
            m[chunk].kind = .chunk(c)
        }
        func editHeader(_ m: inout [Request], _ body: (inout Swiftvla_Fleet_V1_EpisodeHeader) -> Void) {
            guard case .header(var h) = m[0].kind else { return }
            body(&h)
            m[0].kind = .header(h)
        }
        let cases: [(String, RPCError.Code, String, [Request])] = [
            ("NaN state", .invalidArgument, "non_finite", try variant { editStep(&$0) { $0.state[3] = .nan } }),
            ("infinite unified action", .invalidArgument, "non_finite", try variant { editStep(&$0, chunk: 2) { $0.unifiedAction[0] = .infinity } }),
            ("short native action", .invalidArgument, "shape", try variant { editStep(&$0) { $0.nativeAction.removeLast() } }),
            ("unified disagrees with native", .invalidArgument, "shape", try variant { editStep(&$0) { $0.unifiedAction[0] += 1 } }),
            ("truncated frame", .invalidArgument, "shape", try variant { editStep(&$0) { $0.frames[1].removeLast() } }),
            ("unspecified source", .invalidArgument, "bad_value", try variant { editStep(&$0) { $0.source = .unspecified } }),
            ("wrong state_dim", .invalidArgument, "shape", try variant { editHeader(&$0) { $0.stateDim += 1 } }),
            ("unknown task", .invalidArgument, "unknown_task", try variant { editHeader(&$0) { $0.task = "juggle" } }),
            ("unknown embodiment", .invalidArgument, "unknown_embodiment", try variant { editHeader(&$0) { $0.embodiment = "hexapod" } }),
            ("bad id", .invalidArgument, "bad_header", try variant { editHeader(&$0) { $0.episodeID = "not-a-uuid" } }),
            ("chunk before header", .failedPrecondition, "protocol", try variant { $0.swapAt(0, 1) }),
            ("gap between chunks", .failedPrecondition, "protocol", try variant { $0.remove(at: 2) }),
            ("no end", .failedPrecondition, "protocol", try variant { $0.removeLast() }),
            ("unregistered actor", .unauthenticated, "unregistered_actor", try variant { editHeader(&$0) { $0.actorID = "stranger" } }),
            ("oversized message", .resourceExhausted, "too_large", try variant { editStep(&$0) { $0.frames[0] = Data(count: 70 * 1024) } }),
        ]
        try await withFleetClient(port: port) { client in
            _ = try await register(client, actorID: "a1")
            for (name, code, _, messages) in cases {
                do {
                    _ = try await upload(client, messages)
                    Issue.record("\(name): accepted")
                } catch let error as RPCError {
                    #expect(error.code == code, "\(name): \(error)")
                }
            }
            // Still serving: a valid episode goes through after all of that.
            let ack = try await upload(client, EpisodeMessages.encode(good, actorID: "a1"))
            #expect(!ack.duplicate)
        }
        let m = learner.metrics.snapshot()
        #expect(m.episodesRejected == cases.count)
        var expected: [String: Int] = [:]
        for (_, _, reason, _) in cases { expected[reason, default: 0] += 1 }
        #expect(m.rejections == expected)
        #expect(m.episodesAccepted == 1 && learner.store.count == 1)
        await learner.stop()
    }

    @Test func registrationChecksTheTokenAndSpreadsTasks() async throws {
        let (learner, _) = try makeLearner("register") {
            $0.publishInitialPolicy = false
            $0.authToken = "secret"
            $0.catalog = TaskCatalog([(.arm7, .reach), (.arm7, .push)])
        }
        let port = try await learner.start()
        try await withFleetClient(port: port) { client in
            do {
                _ = try await register(client, actorID: "a1", token: "wrong")
                Issue.record("accepted a wrong token")
            } catch let error as RPCError {
                #expect(error.code == .unauthenticated)
            }
            var request = Swiftvla_Fleet_V1_RegisterActorRequest()
            request.embodiment = "arm7"
            request.authToken = "secret"
            request.actorID = "a1"
            let a = try await client.registerActor(request)
            request.actorID = "a2"
            let b = try await client.registerActor(request)
            #expect(Set([a.assignment.task, b.assignment.task]) == ["reach", "push"])
            #expect(a.assignment.seedBase != b.assignment.seedBase)
            // Fleet scenes stay clear of the held-out evaluation seeds (0…), demos (10 000…)
            // and L1 scenes (100 000 + 2 000 by default).
            #expect(min(a.assignment.seedBase, b.assignment.seedBase) >= 1_000_000)
        }
        #expect(learner.metrics.snapshot().rejections["bad_token"] == 1)
        await learner.stop()
    }

    // MARK: the loop

    @Test func twoActorsLandEpisodesAndSwapPublishedVersions() async throws {
        let (learner, backend) = try makeLearner("loop") {
            $0.publishEveryTrainSteps = 10
            $0.minPublishInterval = 0.3
            $0.trainStepPause = 0.002
        }
        let port = try await learner.start()
        func actorConfig(_ id: String) -> FleetActorConfig {
            var c = FleetActorConfig(actorID: id, learnerPort: port, embodiment: .arm7, tasks: [.reach])
            c.episodes = 3
            c.targetPolicyVersion = 3
            c.maxEpisodes = 15
            var env = EnvironmentConfig(imageWidth: 24, imageHeight: 24)
            env.stepLimit = 30
            c.environment = env
            c.gate.policyStepBudget = 12
            c.gate.handBackAfter = 6
            c.stepsPerChunk = 8
            c.heartbeatInterval = 0.1
            return c
        }
        let started = ContinuousClock.now
        async let first = FleetActor(config: actorConfig("actor-1"), policy: try LinearPolicy(embodiment: EmbodimentKind.arm7.spec, seed: 9)).run()
        async let second = FleetActor(config: actorConfig("actor-2"), policy: try LinearPolicy(embodiment: EmbodimentKind.arm7.spec, seed: 9)).run()
        let reports = try await [first, second]
        let elapsed = ContinuousClock.now - started
        await learner.stop()

        let m = learner.metrics.snapshot()
        let total = reports.reduce(0) { $0 + $1.episodes.count }
        for report in reports {
            #expect(report.unacked == 0 && report.rejected == 0)
            #expect(report.acked == report.episodes.count)
            let versions = report.episodes.map(\.policyVersion)
            // Swaps happen only between episodes and never go backwards.
            #expect(versions == versions.sorted(), "versions \(versions)")
            #expect(report.versionsLoaded.first == 1)
            #expect(versions.last! >= 3, "versions \(versions), loaded \(report.versionsLoaded)")
            #expect(report.episodes.allSatisfy { $0.steps > 0 && $0.steps <= 30 && $0.policyLag >= 0 })
        }
        #expect(m.versionsPublished >= 3 && m.trainSteps >= 20)
        // After each stream's first whole file the actors take versions as deltas (when the delta
        // is smaller: this linear policy's file is mostly header); each rebuilt file passed its
        // CRC-32 (a failure would count in weightFailures).
        #expect(reports.allSatisfy { $0.weightFailures == 0 })
        if m.lastPublicationDeltaBytes > 0 { #expect(m.deltaVersionsSent > 0) }
        #expect(m.episodesAccepted == total && learner.store.count == total)
        // The store recorded the version each episode was acted with.
        let stored = try learner.store.records()
        for report in reports {
            for e in report.episodes {
                #expect(stored.first { $0.id == e.id.uuidString }?.policyVersion == e.policyVersion)
            }
        }
        #expect(m.operatorStepsAccepted > 0)
        // Heartbeats carried each actor's counters to the learner.
        let stats = learner.actorStats()
        #expect(Set(stats.keys) == ["actor-1", "actor-2"] && m.heartbeats > 0)
        #expect(stats.values.allSatisfy { $0.episodesFinished > 0 })
        #expect(await backend.stepsTrained == m.trainSteps)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        print("fleet loop: \(total) episodes (\(m.stepsAccepted) steps, \(m.operatorStepsAccepted) operator) in \(String(format: "%.2f", seconds)) s = \(String(format: "%.2f", Double(total) / seconds)) episodes/s; \(m.trainSteps) train steps, \(m.versionsPublished) versions, last publication \(m.lastPublicationBytes) B (delta \(m.lastPublicationDeltaBytes) B; \(m.deltaVersionsSent)/\(m.versionsSent) sent as deltas) in \(String(format: "%.2f", m.lastPublicationSeconds * 1000)) ms; versions per actor \(reports.map { $0.episodes.map(\.policyVersion) }), policy lag \(reports.map { $0.episodes.map(\.policyLag) })")
    }
}

/// A body declared in an embodiment file (no RobotSim code): the learner validates and stores
/// its episodes by the file's layout and refuses ones that do not fit it.
@Suite(.stopsLearners) struct DeclaredEmbodimentTests {
    @Test func aLearnerServesABodyFromAnEmbodimentFile() async throws {
        let spec = try EmbodimentSpec(yaml: """
            name: pan_tilt
            control_mode: joint
            num_arms: 0
            actions: [[pan, head_0], [tilt, head_1]]
            states: [[pan, head_0], [tilt, head_1]]
            """)
        var config = FleetLearnerConfig(storeDirectory: temporaryDirectory("declared"))
        config.catalog = TaskCatalog(specs: [spec], tasks: ["pan_tilt": ["look_at"]])
        config.publishInitialPolicy = false
        let learner = try trackedLearner(config: config, backend: try BehaviorCloningBackend(embodiment: spec, seed: 1))
        let port = try await learner.start()
        func episode(stateWidth: Int) throws -> Episode {
            let steps = 6
            return Episode(embodiment: "pan_tilt", task: "look_at", instruction: "look at the cup", cameras: [:],
                           states: try StepMatrix((0..<steps).map { t in (0..<stateWidth).map { Float(t + $0) * 0.1 } }, columns: stateWidth),
                           nativeActions: try StepMatrix((0..<steps).map { t in [Float(t) * 0.1, -0.1] }, columns: 2),
                           unifiedActions: try StepMatrix((0..<steps).map { t in try spec.unifiedAction([Float(t) * 0.1, -0.1]) }, columns: 64),
                           actionMask: spec.actionMask, rewards: Array(repeating: 0, count: steps), dones: (0..<steps).map { $0 == steps - 1 },
                           sources: Array(repeating: .operator, count: steps), timestamps: (0..<steps).map { Double($0) * 0.1 },
                           success: true, policyVersion: 0)
        }
        let (good, bad) = (try episode(stateWidth: 2), try episode(stateWidth: 3))
        try await withFleetClient(port: port) { client in
            var request = Swiftvla_Fleet_V1_RegisterActorRequest()
            request.actorID = "camera-head"
            request.embodiment = "pan_tilt"
            request.tasks = ["look_at"]
            #expect(try await client.registerActor(request).assignment.task == "look_at")
            let ack = try await upload(client, EpisodeMessages.encode(good, actorID: "camera-head", stepsPerChunk: 4))
            #expect(!ack.duplicate && ack.steps == 6)
            await #expect(throws: RPCError.self) { try await upload(client, EpisodeMessages.encode(bad, actorID: "camera-head", stepsPerChunk: 4)) }
        }
        #expect(try learner.store.load(good.id).nativeActions == good.nativeActions)
        #expect(learner.metrics.snapshot().episodesRejected == 1)
        await learner.stop()
    }
}
