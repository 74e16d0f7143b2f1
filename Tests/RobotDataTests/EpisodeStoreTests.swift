import Foundation
import Testing
@testable import RobotData

/// A synthetic episode whose every number is a known function of (step, column).
func makeEpisode(steps: Int = 6, task: String = "reach", embodiment: String = "arm7", source: StepSource = .demo,
                 success: Bool = true, seed: UInt64 = 1) throws -> Episode {
    let stateDim = 9, actionDim = 8
    let states = try StepMatrix(rows: steps, columns: stateDim, values: (0..<(steps * stateDim)).map { Float($0) * 0.5 })
    let native = try StepMatrix(rows: steps, columns: actionDim, values: (0..<(steps * actionDim)).map { Float($0).squareRoot() })
    var unified = [Float](repeating: 0, count: steps * 64)
    var mask = [Float](repeating: 0, count: 64)
    for k in 0..<7 { mask[k] = 1 }
    mask[13] = 1
    for t in 0..<steps {
        for k in 0..<7 { unified[t * 64 + k] = native.values[t * actionDim + k] }
        unified[t * 64 + 13] = native.values[t * actionDim + 7]
    }
    var pixels = [UInt8](repeating: 0, count: steps * 4 * 5 * 3)
    for i in pixels.indices { pixels[i] = UInt8((i * 7 + Int(seed)) % 256) }
    return Episode(
        embodiment: embodiment, task: task, instruction: "reach the red cube", cameras: ["scene": CameraFrames(height: 4, width: 5, pixels: pixels)],
        states: states, nativeActions: native, unifiedActions: try StepMatrix(rows: steps, columns: 64, values: unified), actionMask: mask,
        rewards: (0..<steps).map { $0 == steps - 1 ? 1 : 0 }, dones: (0..<steps).map { $0 == steps - 1 },
        sources: (0..<steps).map { $0 == 2 ? .operator : source }, timestamps: (0..<steps).map { Double($0 * 50_000) / 1e6 },
        success: success, policyVersion: 3, seed: seed)
}

func temporaryStoreURL() -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("episode-store-\(UUID().uuidString)")
}

@Suite("Episode store")
struct EpisodeStoreTests {
    @Test func roundTripIsExact() throws {
        let root = temporaryStoreURL()
        defer { try? FileManager.default.removeItem(at: root) }
        let store = try EpisodeStore(root: root)
        let episode = try makeEpisode()
        #expect(try store.insert(episode))
        let loaded = try store.load(episode.id)
        #expect(loaded == episode)
        #expect(loaded.interventionCount == 1)
    }

    @Test func reinsertingTheSameIdIsANoOp() throws {
        let root = temporaryStoreURL()
        defer { try? FileManager.default.removeItem(at: root) }
        let store = try EpisodeStore(root: root)
        let episode = try makeEpisode()
        #expect(try store.insert(episode))
        #expect(try store.insert(episode) == false)
        #expect(store.count == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.episodesDirectory.path).count == 1)
    }

    @Test func queriesFilterByTaskSourceSuccessAndQuality() throws {
        let root = temporaryStoreURL()
        defer { try? FileManager.default.removeItem(at: root) }
        let store = try EpisodeStore(root: root)
        let a = try makeEpisode(task: "reach", source: .demo, success: true)
        let b = try makeEpisode(task: "pick", source: .policy, success: false)
        let c = try makeEpisode(task: "pick", embodiment: "arm6", source: .policy, success: true)
        for e in [a, b, c] { try store.insert(e) }
        #expect(try store.records(matching: EpisodeQuery(task: "pick")).count == 2)
        #expect(try store.records(matching: EpisodeQuery(source: .policy, success: true)).map(\.uuid) == [c.id])
        #expect(try store.records(matching: EpisodeQuery(embodiment: "arm7")).count == 2)
        try store.setQualityScore(0.9, for: a.id)
        try store.setQualityScore(0.2, for: b.id)
        #expect(try store.records(matching: EpisodeQuery(minimumQuality: 0.5)).map(\.uuid) == [a.id])
        // The index survives reopening.
        let reopened = try EpisodeStore(root: root)
        #expect(reopened.count == 3)
    }

    @Test func invalidEpisodesAreRejectedWithTypedErrors() throws {
        let root = temporaryStoreURL()
        defer { try? FileManager.default.removeItem(at: root) }
        let store = try EpisodeStore(root: root)
        var nan = try makeEpisode()
        nan.nativeActions.values[5] = .nan
        #expect(throws: EpisodeError.self) { try store.insert(nan) }
        var short = try makeEpisode()
        short.rewards.removeLast()
        #expect(throws: EpisodeError.self) { try store.insert(short) }
        #expect(store.count == 0)
        // The store keeps working after rejecting bad input.
        #expect(try store.insert(makeEpisode()))
    }

    @Test func corruptFilesAreQuarantinedNotFatal() throws {
        let root = temporaryStoreURL()
        defer { try? FileManager.default.removeItem(at: root) }
        let store = try EpisodeStore(root: root)
        let good = try makeEpisode(seed: 1), bad = try makeEpisode(seed: 2)
        try store.insert(good)
        try store.insert(bad)
        let badURL = store.episodesDirectory.appendingPathComponent("\(bad.id.uuidString).safetensors")
        let data = try Data(contentsOf: badURL)
        try data.prefix(data.count - 40).write(to: badURL)
        let (episodes, skipped) = try store.loadAll()
        #expect(episodes.map(\.id) == [good.id])
        #expect(skipped.count == 1)
        #expect(store.count == 1)
        #expect(FileManager.default.fileExists(atPath: store.quarantineDirectory.appendingPathComponent(badURL.lastPathComponent).path))
    }

    @Test func filesWrittenBeforeACrashAreReindexedOnOpen() throws {
        let root = temporaryStoreURL()
        defer { try? FileManager.default.removeItem(at: root) }
        let store = try EpisodeStore(root: root)
        let episode = try makeEpisode()
        // Simulate a crash after the durable file write but before the index commit,
        // plus a leftover temporary file from an interrupted write.
        try EpisodeCodec.write(episode, to: store.episodesDirectory.appendingPathComponent("\(episode.id.uuidString).safetensors"))
        try Data([1, 2, 3]).write(to: store.episodesDirectory.appendingPathComponent(".x.safetensors.tmp.safetensors"))
        #expect(store.count == 0)
        let reopened = try EpisodeStore(root: root)
        #expect(reopened.count == 1)
        #expect(try reopened.load(episode.id) == episode)
        #expect(try FileManager.default.contentsOfDirectory(atPath: reopened.episodesDirectory.path).count == 1)
    }
}

@Suite("Episode store checksums")
struct EpisodeStoreChecksumTests {
    /// A flipped bit inside a stored float passes every structural check (the file still
    /// decodes), so only the checksum can catch it: the load fails with a typed error, the file
    /// is quarantined and leaves the index, and the other episodes still load.
    @Test func silentDamageIsCaughtByTheChecksumAndQuarantined() throws {
        let root = temporaryStoreURL()
        defer { try? FileManager.default.removeItem(at: root) }
        let store = try EpisodeStore(root: root)
        let damaged = try makeEpisode(seed: 1), intact = try makeEpisode(seed: 2)
        try store.insert(damaged)
        try store.insert(intact)
        let url = store.episodesDirectory.appendingPathComponent("\(damaged.id.uuidString).safetensors")
        var bytes = [UInt8](try Data(contentsOf: url))
        #expect(try store.records().allSatisfy { $0.checksum != nil })
        bytes[bytes.count - 5] ^= 0x01          // inside the last tensor's data, past the header
        try Data(bytes).write(to: url)
        #expect(try EpisodeCodec.read(url).id == damaged.id)   // structurally fine
        #expect { try store.load(damaged.id) } throws: { error in
            guard case EpisodeError.corrupt(_, let reason) = error else { return false }
            return reason.contains("checksum")
        }
        #expect(try !store.contains(damaged.id))
        #expect(FileManager.default.fileExists(atPath: store.quarantineDirectory.appendingPathComponent(url.lastPathComponent).path))
        let reopened = try EpisodeStore(root: root)
        let all = try reopened.loadAll()
        #expect(all.episodes.map(\.id) == [intact.id] && all.skipped.isEmpty && reopened.count == 1)
    }
}

@Suite("Normalization statistics")
struct NormalizationStatsTests {
    @Test func slotStatisticsMatchClosedForms() throws {
        // Column 0 holds 1…100: mean 50.5, population std √((100²−1)/12) ≈ 28.866,
        // NumPy-linear 1st/99th percentiles 1.99 and 99.01. Column 1 is masked out.
        let m = try StepMatrix(rows: 100, columns: 2, values: (1...100).flatMap { [Float($0), 7] })
        let stats = SlotStatistics([m], mask: [1, 0])
        #expect(Swift.abs(stats.mean[0] - 50.5) < 1e-4)
        #expect(Swift.abs(stats.std[0] - 28.866070) < 1e-3)
        #expect(Swift.abs(stats.q01[0] - 1.99) < 1e-4)
        #expect(Swift.abs(stats.q99[0] - 99.01) < 1e-3)
        #expect(stats.count == [100, 0])
        let z = stats.standardize([50.5, 3])
        #expect(Swift.abs(z[0]) < 1e-6 && z[1] == 0)
        #expect(Swift.abs(stats.unstandardize(stats.standardize([80, 0]))[0] - 80) < 1e-3)
    }

    @Test func relativeFrameStatisticsAreOfChunkOffsetsFromTheJointState() throws {
        // Joint states q_t = t on slots 0–6, joint targets a_t = t + 0.5, gripper command 1.
        // With horizon 2 the offsets a_{t+k} − q_t over t = 0…3, k < min(2, 4 − t) are
        // 0.5 (4 times) and 1.5 (3 times): mean 6.5/7 = 0.928571, population std
        // √((4·0.25 + 3·2.25)/7 − mean²) = 0.494872. The gripper stays absolute: mean 1, std 0.
        let steps = 4
        let spec = try EmbodimentSpec(name: "arm7", controlMode: .jointPosition, numArms: 1,
                                      actionNames: (0..<8).map { "a\($0)" }, actionSlots: Array(0..<7) + [13],
                                      stateNames: (0..<9).map { "s\($0)" }, stateSlots: Array(0..<7) + [13, 35])
        var states: [Float] = [], unified = [Float](repeating: 0, count: steps * 64)
        for t in 0..<steps {
            states += [Float](repeating: Float(t), count: 7) + [0.3, 0.9]
            for j in 0..<7 { unified[t * 64 + j] = Float(t) + 0.5 }
            unified[t * 64 + 13] = 1
        }
        var e = try makeEpisode(steps: steps)
        e.states = try StepMatrix(rows: steps, columns: 9, values: states)
        e.unifiedActions = try StepMatrix(rows: steps, columns: 64, values: unified)
        let stats = try NormalizationStats(episodes: [e], relativeTo: ["arm7": spec], horizon: 2)
        let a = try #require(stats.actions["arm7"])
        #expect(stats.relativeHorizon == 2 && spec.jointPositionSlots == Array(0..<7))
        for j in 0..<7 {
            #expect(Swift.abs(a.mean[j] - 0.928571) < 1e-5 && Swift.abs(a.std[j] - 0.494872) < 1e-5 && a.count[j] == 7)
        }
        #expect(a.mean[13] == 1 && a.std[13] == 0)
        // The anchor is the joint state on joint slots only; encode ∘ decode is the identity.
        let anchor = try stats.actionAnchor(nativeState: Array(e.states.row(3)), spec: spec)
        #expect(Array(anchor[0..<7]) == [Float](repeating: 3, count: 7) && anchor[13] == 0 && anchor[35] == 0)
        let row = Array(e.unifiedActions.row(3))
        let z = try stats.standardizedAction(row, anchor: anchor, embodiment: "arm7")
        #expect(Swift.abs(z[0] - (0.5 - 0.928571) / 0.494872) < 1e-4)
        let back = try stats.unifiedAction(standardized: z, anchor: anchor, embodiment: "arm7")
        for j in [0, 6, 13] { #expect(Swift.abs(back[j] - row[j]) < 1e-5) }
        // Absolute statistics anchor at 0, and a Cartesian-delta arm has no joint-position slots.
        #expect(try NormalizationStats(episodes: [e]).actionAnchor(nativeState: Array(e.states.row(3)), spec: spec).allSatisfy { $0 == 0 })
        let cartesian = try EmbodimentSpec(name: "arm6", controlMode: .endEffectorDelta, numArms: 1,
                                           actionNames: ["dx", "dy", "dz"], actionSlots: [35, 36, 37],
                                           stateNames: ["x", "y", "z"], stateSlots: [35, 36, 37])
        #expect(cartesian.jointPositionSlots.isEmpty)
        // Statistics written before the relative frame existed decode as absolute.
        let old = #"{"actions":{},"states":{}}"#
        #expect(try JSONDecoder().decode(NormalizationStats.self, from: Data(old.utf8)).relativeHorizon == nil)
    }

    @Test func perEmbodimentStatsRoundTripThroughJSON() throws {
        let stats = NormalizationStats(episodes: [try makeEpisode(embodiment: "arm7"), try makeEpisode(embodiment: "arm6")])
        #expect(Set(stats.actions.keys) == ["arm7", "arm6"])
        // Slot 20 is unused by these episodes' mask: no samples.
        #expect(stats.actions["arm7"]!.count[20] == 0 && stats.actions["arm7"]!.count[0] == 6)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("stats-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: url) }
        try stats.write(to: url)
        #expect(try NormalizationStats.read(url) == stats)
    }
}
