import Foundation
import RobotData
import Testing
import TestSupport
import VLAModel
@testable import Fleet

/// MetaWorld tasks as remote actors: `bridges/metaworld/bridge.py` (its own venv, MetaWorld's
/// scripted policies as the operator) streams episodes of two MT10 tasks to a learner serving
/// the `sawyer` body declared in `bridges/metaworld/sawyer.yaml`, with MetaWorld's rendered
/// scene camera on every step.
@Suite(.stopsLearners, .timeLimit(.minutes(3)))
struct MetaWorldBridgeTests {
    @Test func bridgeStreamsMT10EpisodesWithOperatorFlagsAndLoadsPolicies() async throws {
        let root = ChildProcess.packageRoot
        let python = root.appendingPathComponent(".venv-metaworld/bin/python")
        try #require(FileManager.default.isExecutableFile(atPath: python.path), "run scripts/bootstrap: it creates .venv-metaworld")
        let file = try EmbodimentFile.load(root.appendingPathComponent("bridges/metaworld/sawyer.yaml"))
        let spec = file.spec
        #expect(spec.actionMap.slots == [35, 36, 37, 13] && spec.stateDimension == 10 && file.cameras == ["scene"])
        let tasks = ["reach-v3", "push-v3"]
        var config = FleetLearnerConfig(storeDirectory: temporaryDirectory("metaworld"))
        config.catalog = TaskCatalog(specs: [spec], tasks: ["sawyer": tasks])
        config.catalog.cameras = ["sawyer": ["scene"]]
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
        // Frames: the bridge's default side is the VLA's; every step has one rendered scene frame.
        let side = VLAConfig().imageSize
        for e in stored {
            let scene = try #require(e.cameras["scene"], "episode \(e.id) has no scene camera")
            #expect(e.cameras.count == 1 && scene.height == side && scene.width == side && scene.count == e.stepCount)
            // A rendered scene, not a blank or constant image: many distinct colours in the first
            // frame, and the arm moved between the first and the last frame.
            let first = scene.frame(0), last = scene.frame(e.stepCount - 1)
            var colours = Set<Int>()
            for i in stride(from: first.startIndex, to: first.endIndex, by: 3) {
                let r = Int(first[i]), g = Int(first[i + 1]), b = Int(first[i + 2])
                colours.insert(r << 16 | g << 8 | b)
            }
            #expect(colours.count >= 50, "episode \(e.id): \(colours.count) colours in frame 0")
            var change = 0
            for (a, b) in zip(first, last) { change += abs(Int(a) - Int(b)) }
            #expect(Double(change) / Double(first.count) > 1.0, "episode \(e.id): frames 0 and \(e.stepCount - 1) differ by \(change)")
        }
    }

    /// The declared `cameras: [scene]` is enforced at the header, before any step: an upload
    /// without it, or (for a learner training a VLA) at another size, is refused by name.
    @Test func aDeclaredBodyRefusesUploadsWithoutItsCameraOrAtTheWrongSize() throws {
        let file = try EmbodimentFile.load(ChildProcess.packageRoot.appendingPathComponent("bridges/metaworld/sawyer.yaml"))
        var catalog = TaskCatalog(specs: [file.spec], tasks: ["sawyer": ["reach-v3"]])
        catalog.cameras = ["sawyer": try #require(file.cameras)]
        func header(cameras: [(String, Int)]) -> Swiftvla_Fleet_V1_EpisodeHeader {
            var h = Swiftvla_Fleet_V1_EpisodeHeader()
            h.episodeID = UUID().uuidString
            h.actorID = "metaworld-reach-v3"
            h.embodiment = "sawyer"
            h.task = "reach-v3"
            h.stateDim = 10
            h.actionDim = 4
            h.cameras = cameras.map { name, side in
                var c = Swiftvla_Fleet_V1_CameraSpec()
                c.name = name
                c.height = UInt32(side)
                c.width = UInt32(side)
                return c
            }
            return h
        }
        _ = try EpisodeAssembler(header: header(cameras: [("scene", 64)]), catalog: catalog, limits: IngestLimits())
        #expect(throws: IngestError.shape("cameras [], sawyer declares [scene]")) {
            try EpisodeAssembler(header: header(cameras: []), catalog: catalog, limits: IngestLimits())
        }
        #expect(throws: IngestError.shape("cameras [a_wrist, scene], sawyer declares [scene]")) {
            try EpisodeAssembler(header: header(cameras: [("scene", 64), ("a_wrist", 64)]), catalog: catalog, limits: IngestLimits())
        }
        catalog.imageSide = 16
        #expect(throws: IngestError.shape("camera scene is 64×64, the learner's model reads 16×16")) {
            try EpisodeAssembler(header: header(cameras: [("scene", 64)]), catalog: catalog, limits: IngestLimits())
        }
        #expect(throws: EmbodimentSpec.FileError.badCamera(index: 1)) {
            try EmbodimentFile(yaml: file.spec.yaml + "cameras: [scene, scene]\n")
        }
    }

    /// `--cameras scene,a_wrist` adds MetaWorld's gripper camera as the wrist camera, for a
    /// learner serving sawyer-wrist.yaml (the same body with both cameras declared).
    @Test func bridgeUploadsTheWristCameraToALearnerThatDeclaresIt() async throws {
        let root = ChildProcess.packageRoot
        let python = root.appendingPathComponent(".venv-metaworld/bin/python")
        try #require(FileManager.default.isExecutableFile(atPath: python.path), "run scripts/bootstrap: it creates .venv-metaworld")
        let plain = try EmbodimentFile.load(root.appendingPathComponent("bridges/metaworld/sawyer.yaml"))
        let file = try EmbodimentFile.load(root.appendingPathComponent("bridges/metaworld/sawyer-wrist.yaml"))
        // The same body as sawyer.yaml, with one more camera.
        #expect(file.spec.name == "sawyer" && file.cameras == ["scene", "a_wrist"])
        #expect(file.spec.actionMap.slots == plain.spec.actionMap.slots && file.spec.stateDimension == plain.spec.stateDimension)
        var config = FleetLearnerConfig(storeDirectory: temporaryDirectory("metaworld-wrist"))
        config.catalog = TaskCatalog(specs: [file.spec], tasks: ["sawyer": ["reach-v3"]])
        config.catalog.cameras = ["sawyer": try #require(file.cameras)]
        let learner = try trackedLearner(config: config, backend: try BehaviorCloningBackend(embodiment: file.spec, seed: 2))
        let port = try await learner.start()
        let bridge = root.appendingPathComponent("bridges/metaworld/bridge.py").path
        func runBridge(_ cameras: String) async throws -> ChildProcess.Result {
            try await ChildProcess.run(python, [bridge, "--learner", "127.0.0.1:\(port)", "--tasks", "reach-v3", "--cameras", cameras,
                                                "--demo-episodes", "1", "--episodes", "0", "--eval-episodes", "0",
                                                "--max-steps", "40"], timeout: 120)
        }
        let result = try await runBridge("scene,a_wrist")
        // A camera the bridge has no MetaWorld camera for is refused before anything runs.
        let bad = try await runBridge("scene,l_wrist")
        await learner.stop()
        #expect(result.status == 0, "\(result.stderr.suffix(1500))")
        #expect(bad.status == 2 && bad.stderr.contains("--cameras"), "\(bad.stderr.suffix(500))")
        let stored = try learner.store.loadAll().episodes
        let e = try #require(stored.first)
        #expect(stored.count == 1 && Set(e.cameras.keys) == ["scene", "a_wrist"])
        let scene = try #require(e.cameras["scene"]), wrist = try #require(e.cameras["a_wrist"])
        #expect(wrist.count == e.stepCount && wrist.width == scene.width && wrist.height == scene.height)
        func meanDifference(_ a: [UInt8], _ b: [UInt8]) -> Double {
            Double(zip(a, b).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }) / Double(a.count)
        }
        let (first, last) = (Array(wrist.frame(0)), Array(wrist.frame(e.stepCount - 1)))
        // Another view than the scene camera's, and one that moves with the hand.
        #expect(meanDifference(first, Array(scene.frame(0))) > 10, "wrist and scene frame 0 differ by \(meanDifference(first, Array(scene.frame(0))))")
        #expect(meanDifference(first, last) > 1, "wrist frames 0 and \(e.stepCount - 1) differ by \(meanDifference(first, last))")
        // Uploads with the scene camera only are refused by this learner at the header.
        let header = { () -> Swiftvla_Fleet_V1_EpisodeHeader in
            var h = Swiftvla_Fleet_V1_EpisodeHeader()
            (h.episodeID, h.actorID, h.embodiment, h.task, h.stateDim, h.actionDim) = (UUID().uuidString, "m", "sawyer", "reach-v3", 10, 4)
            var c = Swiftvla_Fleet_V1_CameraSpec()
            (c.name, c.height, c.width) = ("scene", 64, 64)
            h.cameras = [c]
            return h
        }()
        #expect(throws: IngestError.shape("cameras [scene], sawyer declares [a_wrist, scene]")) {
            try EpisodeAssembler(header: header, catalog: config.catalog, limits: IngestLimits())
        }
    }
}
