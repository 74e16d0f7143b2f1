import Foundation
import GRPCCore
import RobotData
import RobotSim
import Testing
import TensorKit
@testable import Fleet

/// Publishes fixed, large weights (one tensor of `count` floats, all equal to the version
/// number) and never trains: for testing weight fan-out under backpressure.
actor StaticBackend: LearnerBackend {
    nonisolated let modelName = "static"
    let count: Int
    private var exports = 0
    init(count: Int) { self.count = count }
    func ingest(_ episode: Episode) async throws {}
    func trainStep() async throws -> Float? { nil }
    func exportTrainableWeights() async throws -> [String: Tensor] {
        exports += 1
        let value = Float(exports)
        return try TensorLock.run { ["w": try Tensor([Float](repeating: value, count: count), shape: [count])] }
    }
}

extension FleetTests {
    @Suite(.serialized)   // .stopsLearners and the time limit come from FleetTests
    struct Resilience {
        @Test func aHalfOpenUploadDoesNotStallOtherActors() async throws {
            let (learner, _) = try makeLearner("halfopen") { $0.publishInitialPolicy = false }
            let port = try await learner.start()
            let stalled = try syntheticEpisode(steps: 12, seed: 1)
            let stalledMessages = EpisodeMessages.encode(stalled, actorID: "slow", stepsPerChunk: 4)
            let stalledDone = Locked(false)
            // Actor "slow" sends a header and one chunk, then goes silent with the stream open.
            let slow = Task {
                try await withFleetClient(port: port) { client in
                    _ = try await register(client, actorID: "slow")
                    _ = try? await client.uploadEpisode { writer in
                        try await writer.write(contentsOf: stalledMessages.prefix(2))
                        try await Task.sleep(for: .seconds(30))
                    }
                    stalledDone.withLock { $0 = true }
                }
            }
            try await Task.sleep(for: .milliseconds(200))
            let acks = try await withFleetClient(port: port) { client in
                _ = try await register(client, actorID: "fast")
                var acks: [Swiftvla_Fleet_V1_UploadEpisodeAck] = []
                for seed in 10..<13 {
                    acks.append(try await upload(client, EpisodeMessages.encode(try syntheticEpisode(seed: seed), actorID: "fast")))
                }
                return acks
            }
            #expect(acks.count == 3 && acks.allSatisfy { !$0.duplicate })
            #expect(stalledDone.current == false, "the fast actor finished while the slow stream was still open")
            #expect(learner.store.count == 3)
            #expect(try !learner.store.contains(stalled.id))
            slow.cancel()
            _ = await slow.result
            await learner.stop()
        }

        @Test func aSlowWatcherSkipsVersionsWithoutDelayingOthers() async throws {
            // 512 KiB per version: far beyond one HTTP/2 flow-control window, so a watcher
            // that stops reading blocks its own stream.
            var config = FleetLearnerConfig(storeDirectory: temporaryDirectory("slowwatch"))
            config.catalog = TaskCatalog([(.arm7, .reach)])
            config.weightChunkBytes = 16 * 1024
            let learner = try trackedLearner(config: config, backend: StaticBackend(count: 128 * 1024))
            let port = try await learner.start()   // version 1
            let slowVersions = Locked([Int]())
            let slowStarted = Locked(false)
            let gate = Locked(false)
            let slow = Task {
                // A small receive window, so not reading soon blocks the learner's writes.
                try await withFleetClient(port: port, window: 65_535) { client in
                    _ = try await register(client, actorID: "slow")
                    var request = Swiftvla_Fleet_V1_WatchPolicyRequest()
                    request.actorID = "slow"
                    try await client.watchPolicy(request) { response in
                        slowStarted.withLock { $0 = true }
                        // Not reading until the test opens the gate.
                        while !gate.current { try await Task.sleep(for: .milliseconds(10)) }
                        var assembler = WeightAssembler()
                        for try await update in response.messages {
                            if let w = try assembler.consume(update) {
                                slowVersions.withLock { $0.append(w.version) }
                                if w.version == 6 { return }
                            }
                        }
                    }
                }
            }
            while !slowStarted.current { try await Task.sleep(for: .milliseconds(10)) }
            for _ in 2...6 { try await learner.publish() }
            // A second watcher gets the newest version while the first one is stuck.
            let fast = try await withFleetClient(port: port) { client in
                _ = try await register(client, actorID: "fast")
                var request = Swiftvla_Fleet_V1_WatchPolicyRequest()
                request.actorID = "fast"
                return try await client.watchPolicy(request) { response in
                    var assembler = WeightAssembler()
                    for try await update in response.messages {
                        if let w = try assembler.consume(update) { return w }
                    }
                    throw WeightTransferError.corrupt("stream ended")
                }
            }
            #expect(fast.version == 6)
            #expect(try TensorLock.run { try fast.tensors["w"]!.toArray(Float.self) }.allSatisfy { $0 == 6 })
            gate.withLock { $0 = true }
            try await slow.value
            let versions = slowVersions.current
            let m = learner.metrics.snapshot()
            print("slow watcher received versions \(versions) of 1…6; each publication \(m.lastPublicationBytes) B, export + encode \(String(format: "%.1f", m.lastPublicationSeconds * 1000)) ms")
            // It finishes what was in flight, then gets only the newest: never all five.
            #expect(versions.last == 6 && versions.count < 6 && versions == versions.sorted(), "slow watcher got \(versions)")
            await learner.stop()
        }

        @Test func aRestartedLearnerKeepsAckedEpisodesAndNumbersVersionsAbove() async throws {
            let directory = temporaryDirectory("restart")
            var config = FleetLearnerConfig(storeDirectory: directory)
            config.catalog = TaskCatalog([(.arm7, .reach)])
            let episode = try syntheticEpisode(seed: 4)   // acted by version 1
            let firstBackend = try BehaviorCloningBackend(embodiment: EmbodimentKind.arm7.spec, seed: 1)
            let first = try trackedLearner(config: config, backend: firstBackend)
            let port = try await first.start()
            let ack = try await withFleetClient(port: port) { client in
                _ = try await register(client, actorID: "a1")
                return try await upload(client, EpisodeMessages.encode(episode, actorID: "a1"))
            }
            #expect(!ack.duplicate)
            // Let it train on the episode's operator steps, then kill it (stop saves a checkpoint).
            while first.metrics.snapshot().trainSteps < 5 { try await Task.sleep(for: .milliseconds(5)) }
            await first.stop()
            let trainedSteps = await firstBackend.stepsTrained
            let trainedWeights = try bitPatterns(await firstBackend.exportTrainableWeights())
            #expect(first.metrics.snapshot().checkpointsSaved >= 1)

            // A fresh backend (different seed): everything it continues from comes from the checkpoint.
            let secondBackend = try BehaviorCloningBackend(embodiment: EmbodimentKind.arm7.spec, seed: 2)
            let second = try trackedLearner(config: config, backend: secondBackend)
            let port2 = try await second.start()
            #expect(second.store.count == 1)
            #expect(second.metrics.snapshot().restoredFromCheckpoint)
            #expect(await secondBackend.sampleCount == 10)   // the stored episode's 10 operator steps, re-ingested
            // Version 2 is published at start from the restored state: the first learner's last
            // weights, bit for bit, at its train step.
            let v2 = try #require(second.broadcaster.latest)
            #expect(v2.version == 2 && v2.manifest.trainStep == Int64(trainedSteps))
            var assembler = WeightAssembler()
            var restored: PolicyWeights?
            for update in v2.updates { if let w = try assembler.consume(update) { restored = w } }
            #expect(try bitPatterns(try #require(restored).tensors) == trainedWeights)
            let resent = try await withFleetClient(port: port2) { client in
                // The new learner does not know the actor until it registers again.
                do {
                    _ = try await upload(client, EpisodeMessages.encode(episode, actorID: "a1"))
                    Issue.record("unregistered upload accepted")
                } catch let error as RPCError {
                    #expect(error.code == .unauthenticated)
                }
                _ = try await register(client, actorID: "a1")
                return try await upload(client, EpisodeMessages.encode(episode, actorID: "a1"))
            }
            #expect(resent.duplicate && second.store.count == 1)
            await second.stop()
        }

        @Test func anActorResendsUnackedEpisodesAfterTheLearnerRestarts() async throws {
            var config = FleetLearnerConfig(storeDirectory: temporaryDirectory("resend"))
            config.catalog = TaskCatalog([(.arm7, .reach)])
            config.publishEveryTrainSteps = 1_000_000
            let first = try trackedLearner(config: config, backend: BehaviorCloningBackend(embodiment: EmbodimentKind.arm7.spec, seed: 1))
            let port = try await first.start()
            var actorConfig = FleetActorConfig(actorID: "robot", learnerPort: port, embodiment: .arm7, tasks: [.reach])
            actorConfig.episodes = 10
            actorConfig.environment = EnvironmentConfig(imageWidth: 16, imageHeight: 16)
            actorConfig.environment.stepLimit = 20
            let actor = Task {
                try await FleetActor(config: actorConfig, policy: try LinearPolicy(embodiment: EmbodimentKind.arm7.spec, seed: 2)).run()
            }
            // Kill the learner once a few episodes landed; the rest are produced meanwhile.
            while first.metrics.snapshot().episodesAccepted < 2 { try await Task.sleep(for: .milliseconds(5)) }
            await first.stop()
            let landedBefore = first.store.count
            try await Task.sleep(for: .milliseconds(300))
            config.port = port
            let second = try trackedLearner(config: config, backend: BehaviorCloningBackend(embodiment: EmbodimentKind.arm7.spec, seed: 1))
            _ = try await second.start()
            let report = try await actor.value
            #expect(report.episodes.count == 10)
            #expect(report.unacked == 0 && report.rejected == 0 && report.acked == 10)
            // Nothing lost, nothing stored twice.
            #expect(second.store.count == 10)
            #expect(landedBefore < 10, "the learner went down before the actor finished")
            print("resend: \(landedBefore) episodes landed before the restart, \(report.retries) retried attempts, \(report.duplicates) duplicate acks")
            await second.stop()
        }
    }
}

/// The soak harness itself, briefly (the 64-connection, 10-minute run is `vla bench soak`).
@Suite(.timeLimit(.minutes(2)))
struct FleetSoakTests {
    @Test func shortSoakAcksEveryUploadWithoutErrors() async throws {
        var soak = FleetSoak(storeDirectory: temporaryDirectory("soak"))
        soak.actors = 6
        soak.seconds = 2
        soak.episodesPerActor = 4
        soak.episodeInterval = 0.25
        soak.stepsPerEpisode = 10
        soak.imageSize = 8
        soak.sampleInterval = 1
        defer { try? FileManager.default.removeItem(at: soak.storeDirectory) }
        let r = try await soak.run { _ in }
        #expect(r.episodesAcked == 24)   // 6 connections × 4

        #expect(r.uploadErrors == 0 && r.heartbeatErrors == 0 && r.watchErrors == 0, "\(r.uploadErrors) \(r.heartbeatErrors) \(r.watchErrors)")
        #expect(r.learnerEpisodesAccepted == r.episodesAcked && r.learnerRejections.isEmpty)
        #expect(r.versionsReceived >= 6)   // every connection got at least the initial version
        #expect(r.ackMilliseconds["p99"]! >= r.ackMilliseconds["p50"]! && !r.samples.isEmpty)
    }
}
