import Foundation
import Testing
import RobotData
import RobotSim
import TensorKit
@testable import Fleet

@Suite("Chunk-boundary weight swaps", .stopsLearners, .timeLimit(.minutes(5)))
struct ChunkBoundarySwapTests {
    @Test func everyActionCarriesTheVersionOfItsChunk() {
        // Horizon 3, synchronous: requests at steps 0, 3, 6; the hook "loads" versions 1, 2, 3.
        let stream = ActionStream(policy: ClockPolicy(horizon: 3, delay: 0), mode: .synchronous, inferenceThread: nil)
        var next = 0
        stream.beforeRequest = { next += 1; return next }
        var versions: [Int] = []
        for step in 0..<7 {
            _ = stream.next(observation: observation(step: step), instruction: "", step: step)
            versions.append(stream.lastVersion)
        }
        #expect(versions == [1, 1, 1, 2, 2, 2, 3])
        // Without a hook every action is the stream's version (episode-boundary swaps).
        let plain = ActionStream(policy: ClockPolicy(horizon: 3, delay: 0), mode: .synchronous, inferenceThread: nil)
        plain.version = 7
        _ = plain.next(observation: observation(step: 0), instruction: "", step: 0)
        #expect(plain.lastVersion == 7)
    }

    @Test func stepVersionsSurviveTheWireAndTheStore() throws {
        var episode = try syntheticEpisode(steps: 6, seed: 3)
        episode.policyVersion = 4
        episode.stepPolicyVersions = [2, 2, 3, 3, 4, 4]
        var assembler: EpisodeAssembler?
        var received: Episode?
        for message in EpisodeMessages.encode(episode, actorID: "a", stepsPerChunk: 4) {
            switch message.kind {
            case .header(let h): assembler = try EpisodeAssembler(header: h, catalog: TaskCatalog([(.arm7, .reach)]), limits: IngestLimits())
            case .chunk(let c): try assembler!.append(c)
            case .end(let e): received = try assembler!.finish(e)
            case nil: break
            }
        }
        #expect(received?.stepPolicyVersions == [2, 2, 3, 3, 4, 4] && received?.policyVersion == 4)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("versions-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try EpisodeCodec.write(received!, to: url)
        #expect(try EpisodeCodec.read(url).stepPolicyVersions == [2, 2, 3, 3, 4, 4])
        // One version per episode stays nil all the way.
        var single = episode
        single.stepPolicyVersions = nil
        try EpisodeCodec.write(single, to: url)
        #expect(try EpisodeCodec.read(url).stepPolicyVersions == nil)
        // A step newer than the episode's version is refused.
        var bad = episode
        bad.stepPolicyVersions = [2, 2, 3, 3, 4, 5]
        #expect(throws: EpisodeError.self) { try bad.validate() }
    }

    @Test func actorSwapsMidEpisodeAndRecordsEachStepsVersion() async throws {
        let (learner, _) = try makeLearner("chunk-swap") {
            $0.publishEveryTrainSteps = .max      // versions come from the publisher below
            $0.trainStepPause = 0.005
        }
        let port = try await learner.start()
        // A new version every 0.1 s, whatever the training does: episodes last ≥ 1 s of robot
        // time, so versions land inside them even on a loaded machine.
        let publisher = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                _ = try? await learner.publish()
            }
        }
        var c = smallActorConfig("chunky", port: port, episodes: 4, maxEpisodes: 4, stepLimit: 40)
        c.controlRate = 20
        c.gate.policyStepBudget = 12
        c.gate.handBackAfter = 4
        c.weightSwap = .chunkBoundary
        c.heartbeatInterval = 0.1
        c.initialPolicyWait = 60
        let report = try await FleetActor(config: c, policy: try LinearPolicy(embodiment: EmbodimentKind.arm7.spec, seed: 9)).run()
        publisher.cancel()
        await learner.stop()
        #expect(report.unacked == 0 && report.rejected == 0 && report.episodes.count == 4)
        let stored = try report.episodes.map { try learner.store.load($0.id) }
        var mixed = 0
        for e in stored {
            // An episode begun before the first published version arrived keeps its weights.
            if e.policyVersion == 0 { #expect(e.stepPolicyVersions == nil); continue }
            let v = try #require(e.stepPolicyVersions)
            #expect(v == v.sorted(), "versions within an episode never go back: \(v), sources \(e.sources.map { $0 == .operator ? "o" : "p" }.joined())")
            #expect(v.max() == e.policyVersion)
            if Set(v).count > 1 { mixed += 1 }
        }
        #expect(mixed >= 1, "\(stored.map { $0.stepPolicyVersions ?? [] })")
        #expect(report.versionsLoaded == report.versionsLoaded.sorted())
    }
}
