import Foundation
import Testing
import RobotData
import RobotSim
@testable import Training

/// Training on the seen part of `SceneSplit.standard` only: no demo and no L1 pointing scene
/// comes from a held-out target colour or position.
@Suite("Scene split in training")
struct SceneSplitTrainingTests {
    @Test func demosComeFromSeenScenesOnlyInTheirOwnStore() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("split-demos-\(UUID())")
        defer { try? FileManager.default.removeItem(at: out) }
        var run = BehaviorCloningRun(output: out)
        run.demosPerPair = 3
        run.model = smallConfig()
        run.sceneSplit = .standard
        let demos = try run.demonstrations { _ in }
        #expect(demos.count == 3)
        for demo in demos {
            let seed = try #require(demo.seed)
            #expect(SceneSplit.standard.part(embodiment: .arm7, task: .reach, seed: seed) == .seen, "demo seed \(seed)")
        }
        // Seeds from 10 000 on in order, none of a held-out scene; the range the unsplit rule
        // would try holds at least one held-out seed, so the filter is what kept them out.
        let seeds = demos.compactMap(\.seed)
        #expect(seeds == seeds.sorted() && seeds[0] >= 10_000)
        let unsplit = BehaviorCloningRun.demoSeeds(after: [], needed: 30)
        #expect(unsplit.contains { SceneSplit.standard.part(embodiment: .arm7, task: .reach, seed: $0) != .seen })
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("demos-seen-scenes").path))

        // A store that also holds a held-out demo: the split run does not train on it.
        let heldOutSeed = SceneSplit.standard.seeds(.novelColor, embodiment: .arm7, task: .reach, from: 10_000, count: 1)[0]
        let store = try EpisodeStore(root: out.appendingPathComponent("demos-seen-scenes"))
        for demo in try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [heldOutSeed], imageSize: 32) { try store.insert(demo) }
        run.demosPerPair = 4
        let again = try run.demonstrations { _ in }
        #expect(again.count == 4 && !again.contains { $0.seed == heldOutSeed })
    }

    @Test func pointingScenesAreSeenAndAsManyAsWithoutTheSplit() {
        var l1 = PointingPretraining(embodiment: .arm7, tasks: [.reach, .pickPlace])
        l1.scenes = 40
        l1.heldOutScenes = 10
        let unsplit = l1.sceneSlots([.reach, .pickPlace])
        // Without a split: seeds firstSeed + i, tasks in turn (the scenes every earlier run used).
        #expect(unsplit.map { $0.seed } == Array(100_000..<100_050))
        #expect(unsplit.enumerated().allSatisfy { $0.element.task == ($0.offset % 2 == 0 ? .reach : .pickPlace) })
        l1.sceneSplit = .standard
        let split = l1.sceneSlots([.reach, .pickPlace])
        #expect(split.count == 50)
        #expect(split.allSatisfy { SceneSplit.standard.part(embodiment: .arm7, task: $0.task, seed: $0.seed) == .seen })
        #expect(unsplit.contains { SceneSplit.standard.part(embodiment: .arm7, task: $0.task, seed: $0.seed) != .seen })
        // Every seed it skipped below its last one was held out for the task of its turn.
        let kept = Set(split.map { $0.seed })
        for seed in 100_000...split.last!.seed where !kept.contains(seed) {
            let task: TaskKind = (seed - 100_000) % 2 == 0 ? .reach : .pickPlace
            #expect(SceneSplit.standard.part(embodiment: .arm7, task: task, seed: seed) != .seen)
        }
    }
}
