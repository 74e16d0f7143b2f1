import Foundation
import RobotData
import Testing
import TestSupport
@testable import Fleet

/// MetaWorld tasks as remote actors: `bridges/metaworld/bridge.py` (its own venv, MetaWorld's
/// scripted policies as the operator) streams episodes of two MT10 tasks to a learner serving
/// the `sawyer` body declared in `bridges/metaworld/sawyer.yaml`.
@Suite(.stopsLearners, .timeLimit(.minutes(3)))
struct MetaWorldBridgeTests {
    @Test func bridgeStreamsMT10EpisodesWithOperatorFlagsAndLoadsPolicies() async throws {
        let root = ChildProcess.packageRoot
        let python = root.appendingPathComponent(".venv-metaworld/bin/python")
        try #require(FileManager.default.isExecutableFile(atPath: python.path), "run scripts/bootstrap: it creates .venv-metaworld")
        let spec = try EmbodimentSpec.load(root.appendingPathComponent("bridges/metaworld/sawyer.yaml"))
        #expect(spec.actionMap.slots == [35, 36, 37, 13] && spec.stateDimension == 10)
        let tasks = ["reach-v3", "push-v3"]
        var config = FleetLearnerConfig(storeDirectory: temporaryDirectory("metaworld"))
        config.catalog = TaskCatalog(specs: [spec], tasks: ["sawyer": tasks])
        config.publishEveryTrainSteps = 20
        let learner = try trackedLearner(config: config, backend: try BehaviorCloningBackend(embodiment: spec, seed: 2))
        let port = try await learner.start()
        let result = try await ChildProcess.run(python, [root.appendingPathComponent("bridges/metaworld/bridge.py").path,
                                                         "--learner", "127.0.0.1:\(port)", "--tasks", tasks.joined(separator: ","),
                                                         "--demo-episodes", "2", "--episodes", "2", "--eval-episodes", "3",
                                                         "--max-steps", "120"], timeout: 150)
        await learner.stop()
        #expect(result.status == 0, "\(result.stderr.suffix(1500))")
        struct Summary: Decodable {
            struct Row: Decodable { var uploaded: Int; var acked: Int; var operator_steps: Int; var steps: Int; var operator_success: Double }
            var tasks: [String: Row]
        }
        let summary = try JSONDecoder().decode(Summary.self, from: Data((result.stdout.split(separator: "\n").last ?? "").utf8))
        for task in tasks {
            let row = try #require(summary.tasks[task])
            #expect(row.uploaded == 4 && row.acked == 4, "\(task): \(row)")
            // MetaWorld's scripted policies solve their own tasks on these seeds.
            #expect(row.operator_success == 1.0, "\(task): \(row)")
        }
        // What the learner stored: the bridge's episodes, with their operator flags intact.
        let stored = try learner.store.loadAll().episodes
        #expect(stored.count == 8 && Set(stored.map(\.task)) == Set(tasks) && stored.allSatisfy { $0.embodiment == "sawyer" })
        let operatorSteps = stored.reduce(0) { $0 + $1.interventionCount }
        #expect(operatorSteps == summary.tasks.values.reduce(0) { $0 + $1.operator_steps })
        // The two demo episodes of each task are all operator steps.
        #expect(stored.filter { $0.interventionCount == $0.stepCount }.count >= 4)
        #expect(learner.metrics.snapshot().versionsPublished >= 2)
    }
}
