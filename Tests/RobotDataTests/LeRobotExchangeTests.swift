import Foundation
import Testing
@testable import RobotData

/// The package root (this file is Tests/RobotDataTests/LeRobotExchangeTests.swift).
private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
private let python = packageRoot.appendingPathComponent(".venv/bin/python")
private let helper = packageRoot.appendingPathComponent(LeRobotExchange.helperRelativePath)

/// Runs the project's Python synchronously; (status, stdout, stderr).
private func runPython(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    try run(python, arguments)
}

/// Runs a program synchronously in the package directory; (status, stdout, stderr).
private func run(_ executable: URL, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lerobot-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let out = dir.appendingPathComponent("out"), err = dir.appendingPathComponent("err")
    for f in [out, err] { try Data().write(to: f) }
    let outHandle = try FileHandle(forWritingTo: out), errHandle = try FileHandle(forWritingTo: err)
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.currentDirectoryURL = packageRoot
    process.environment = ProcessInfo.processInfo.environment.merging(["PYTHONDONTWRITEBYTECODE": "1"]) { $1 }
    process.standardOutput = outHandle
    process.standardError = errHandle
    try process.run()
    process.waitUntilExit()
    try outHandle.close(); try errHandle.close()
    return (process.terminationStatus, String(decoding: try Data(contentsOf: out), as: UTF8.self),
            String(decoding: try Data(contentsOf: err), as: UTF8.self))
}

/// scripts/bootstrap installs these; without them (a machine that never ran bootstrap) the
/// round-trip tests are skipped rather than failed.
private let helperPackagesImportable: Bool = {
    guard FileManager.default.isExecutableFile(atPath: python.path) else { return false }
    return (try? runPython(["-c", "import numpy, safetensors, pyarrow, av"]).status) == 0
}()

/// Mean absolute difference of two equal-length byte arrays.
private func meanAbsoluteError(_ a: [UInt8], _ b: [UInt8]) -> Double {
    zip(a, b).reduce(0.0) { $0 + abs(Double($1.0) - Double($1.1)) } / Double(max(a.count, 1))
}

/// Smooth synthetic camera frames (camera images are smooth; noise would only measure H.264's
/// worst case): value = f(step, row, column, channel, episode), clamped to 0…250.
private func smoothFrames(steps: Int, height: Int, width: Int, episode: Int, camera: Int) -> CameraFrames {
    var pixels = [UInt8](repeating: 0, count: steps * height * width * 3)
    for t in 0..<steps { for y in 0..<height { for x in 0..<width { for c in 0..<3 {
        let v: Int = 20 + 3 * x + 2 * y + 4 * t + 25 * c + 10 * episode + 15 * camera
        pixels[((t * height + y) * width + x) * 3 + c] = UInt8(min(v, 250))
    } } } }
    return CameraFrames(height: height, width: width, pixels: pixels)
}

/// An arm7-shaped episode with two cameras; every number a known function of (episode, step).
private func makeExchangeEpisode(index: Int, steps: Int, instruction: String, height: Int = 24, width: Int = 32,
                                 stateWidth: Int = 9) throws -> Episode {
    let actionWidth = 8
    let states = try StepMatrix(rows: steps, columns: stateWidth,
                                values: (0..<(steps * stateWidth)).map { Float($0) * 0.25 + Float(index) * 0.1 })
    let native = try StepMatrix(rows: steps, columns: actionWidth,
                                values: (0..<(steps * actionWidth)).map { (Float($0) + Float(index)).squareRoot() - 1.5 })
    var mask = [Float](repeating: 0, count: 64)
    var unified = [Float](repeating: 0, count: steps * 64)
    let slots = Array(0..<7) + [13]
    for s in slots { mask[s] = 1 }
    for t in 0..<steps { for (k, s) in slots.enumerated() { unified[t * 64 + s] = native.values[t * actionWidth + k] } }
    let cameras = ["scene": smoothFrames(steps: steps, height: height, width: width, episode: index, camera: 0),
                   "wrist": smoothFrames(steps: steps, height: height, width: width, episode: index, camera: 1)]
    let rewards: [Float] = (0..<steps).map { Float($0) * 0.125 - Float(index) }
    let sources: [StepSource] = (0..<steps).map { $0 % 3 == 1 ? .operator : (index == 1 ? .policy : .demo) }
    // 20 Hz with a little jitter: microseconds must survive exactly.
    let timestamps: [Double] = (0..<steps).map { t -> Double in
        let microseconds: Int = t * 50_000 + (t % 2) * 137 + index
        return Double(microseconds) / 1e6
    }
    let seed: UInt64? = index == 2 ? nil : UInt64(1_000_000_007 * (index + 1))
    let speed: Float? = index == 0 ? 1.3 : nil
    let versions: [Int]? = index == 1 ? (0..<steps).map { $0 < steps / 2 ? 3 : 4 } : nil
    let createdAt = Date(timeIntervalSinceReferenceDate: 785_000_000.125 + Double(index) * 10.5)
    return Episode(
        embodiment: "arm7", task: index == 2 ? "push" : "reach", instruction: instruction, cameras: cameras,
        states: states, nativeActions: native, unifiedActions: try StepMatrix(rows: steps, columns: 64, values: unified),
        actionMask: mask, rewards: rewards, dones: (0..<steps).map { $0 == steps - 1 }, sources: sources,
        timestamps: timestamps, success: index != 1, policyVersion: index == 1 ? 4 : 0,
        seed: seed, speed: speed, createdAt: createdAt, stepPolicyVersions: versions)
}

private func temporaryDirectory(_ name: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
}

/// The three episodes every round-trip test exports, inserted into a new store.
private func makeStoreWithEpisodes() throws -> (store: EpisodeStore, episodes: [Episode]) {
    let store = try EpisodeStore(root: temporaryDirectory("lerobot-store"))
    let episodes = try [
        makeExchangeEpisode(index: 0, steps: 9, instruction: "reach the red cube"),
        makeExchangeEpisode(index: 1, steps: 6, instruction: "reach the red cube"),
        makeExchangeEpisode(index: 2, steps: 7, instruction: "push the blue block left"),
    ]
    for e in episodes { try store.insert(e) }
    return (store, episodes)
}

/// What an independent pyarrow/av reader sees in the exported dataset.
private struct DatasetView: Decodable {
    struct Info: Decodable {
        var codebase_version: String, fps: Int, total_episodes: Int, total_frames: Int, total_tasks: Int
        var robot_type: String?, data_path: String, video_path: String, chunks_size: Int
        var features: [String: Feature]
    }
    struct Feature: Decodable { var dtype: String, shape: [Int], names: [String]? }
    struct EpisodeRow: Decodable {
        var episode_index: Int, length: Int, tasks: [String], dataset_from_index: Int, dataset_to_index: Int
        var data_chunk: Int, data_file: Int, scene_from: Double, scene_to: Double, wrist_from: Double, id: String
    }
    var info: Info
    var files: [String]
    var rows: Int
    var state: [[Double]], action: [[Double]], unified: [[Double]]
    var timestamp: [Double], timestamp_us: [Int], episode_index: [Int], frame_index: [Int], index: [Int], task_index: [Int]
    var reward: [Double], done: [Bool], source: [Int], intervention: [Bool]
    var tasks: [String: Int]
    var episodes: [EpisodeRow]
    var video_frames: [String: Int]
    var video_size: [String: [Int]]
    var state_mean: [Double], state_count: [Int], scene_mean: [[[Double]]]
}

/// Reads the dataset with pyarrow and av only (none of lerobot_v3.py), as JSON.
private let independentReader = #"""
import json, sys, pathlib
import av, pyarrow.parquet as pq
root = pathlib.Path(sys.argv[1])
info = json.loads((root / "meta/info.json").read_text())
data = pq.read_table(root / "data/chunk-000/file-000.parquet").to_pydict()
eps = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pydict()
tasks = pq.read_table(root / "meta/tasks.parquet").to_pydict()
stats = json.loads((root / "meta/stats.json").read_text())
frames, sizes = {}, {}
for cam in ("scene", "wrist"):
    with av.open(str(root / f"videos/observation.images.{cam}/chunk-000/file-000.mp4")) as c:
        decoded = list(c.decode(video=0))
        frames[cam] = len(decoded)
        sizes[cam] = [decoded[0].height, decoded[0].width]
print(json.dumps({
    "info": info,
    "files": sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()),
    "rows": len(data["index"]),
    "state": data["observation.state"], "action": data["action"], "unified": data["swiftvla.unified_action"],
    "timestamp": data["timestamp"], "timestamp_us": data["swiftvla.timestamp_us"],
    "episode_index": data["episode_index"], "frame_index": data["frame_index"], "index": data["index"],
    "task_index": data["task_index"], "reward": data["next.reward"], "done": data["next.done"],
    "source": data["swiftvla.source"], "intervention": data["swiftvla.intervention"],
    "tasks": dict(zip(tasks["task"], tasks["task_index"])),
    "episodes": [{
        "episode_index": eps["episode_index"][i], "length": eps["length"][i], "tasks": eps["tasks"][i],
        "dataset_from_index": eps["dataset_from_index"][i], "dataset_to_index": eps["dataset_to_index"][i],
        "data_chunk": eps["data/chunk_index"][i], "data_file": eps["data/file_index"][i],
        "scene_from": eps["videos/observation.images.scene/from_timestamp"][i],
        "scene_to": eps["videos/observation.images.scene/to_timestamp"][i],
        "wrist_from": eps["videos/observation.images.wrist/from_timestamp"][i],
        "id": eps["swiftvla.id"][i],
    } for i in range(len(eps["episode_index"]))],
    "video_frames": frames, "video_size": sizes,
    "state_mean": stats["observation.state"]["mean"], "state_count": stats["observation.state"]["count"],
    "scene_mean": stats["observation.images.scene"]["mean"],
}))
"""#

/// Writes a two-episode LeRobot v3 dataset the way other tools do, without lerobot_v3.py.
private let foreignDatasetWriter = #"""
import json, sys, pathlib
from fractions import Fraction
import av, numpy as np, pyarrow as pa, pyarrow.parquet as pq
root = pathlib.Path(sys.argv[1]); fps = 10; lengths = [4, 3]
(root / "meta/episodes/chunk-000").mkdir(parents=True); (root / "data/chunk-000").mkdir(parents=True)
rows = {k: [] for k in ("observation.state", "action", "timestamp", "frame_index", "episode_index", "index", "task_index")}
episodes = []
cursor = 0
for e, n in enumerate(lengths):
    video = root / f"videos/observation.images.top/chunk-000/file-{e:03d}.mp4"
    video.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(video), "w") as c:
        s = c.add_stream("mpeg4", rate=fps); s.width = s.height = 16; s.pix_fmt = "yuv420p"; s.options = {"qscale": "2"}
        for t in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 40 * t + 100 * e + 10, np.uint8), format="rgb24")
            frame.pts = t; frame.time_base = Fraction(1, fps)
            for p in s.encode(frame): c.mux(p)
        for p in s.encode(): c.mux(p)
    for t in range(n):
        rows["observation.state"].append([float(np.float32((3 * t + k + 100 * e) * 0.5)) for k in range(3)])
        rows["action"].append([float(np.float32((2 * t + k + 100 * e) * -0.25)) for k in range(2)])
        rows["timestamp"].append(t / fps); rows["frame_index"].append(t); rows["episode_index"].append(e)
        rows["index"].append(cursor + t); rows["task_index"].append(e)
    episodes.append({"episode_index": e, "tasks": [["pick the cube", "place the cube"][e]], "length": n,
                     "data/chunk_index": 0, "data/file_index": 0, "dataset_from_index": cursor, "dataset_to_index": cursor + n,
                     "videos/observation.images.top/chunk_index": 0, "videos/observation.images.top/file_index": e,
                     "videos/observation.images.top/from_timestamp": 0.0, "videos/observation.images.top/to_timestamp": n / fps})
    cursor += n
types = {"observation.state": pa.list_(pa.float32()), "action": pa.list_(pa.float32()), "timestamp": pa.float32()}
pq.write_table(pa.table({k: pa.array(v, type=types.get(k, pa.int64())) for k, v in rows.items()}), root / "data/chunk-000/file-000.parquet")
pq.write_table(pa.Table.from_pylist(episodes), root / "meta/episodes/chunk-000/file-000.parquet")
pq.write_table(pa.table({"task_index": [0, 1], "task": ["pick the cube", "place the cube"]}), root / "meta/tasks.parquet")
scalar = lambda d: {"dtype": d, "shape": [1], "names": None}
info = {"codebase_version": "v3.0", "robot_type": "so100", "fps": fps, "total_episodes": 2, "total_frames": cursor,
        "total_tasks": 2, "chunks_size": 1000, "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        "features": {"observation.state": {"dtype": "float32", "shape": [3], "names": None},
                     "action": {"dtype": "float32", "shape": [2], "names": None},
                     "observation.images.top": {"dtype": "video", "shape": [16, 16, 3], "names": ["height", "width", "channels"]},
                     "timestamp": scalar("float32"), "frame_index": scalar("int64"), "episode_index": scalar("int64"),
                     "index": scalar("int64"), "task_index": scalar("int64")}}
(root / "meta/info.json").write_text(json.dumps(info))
"""#

/// Mean-absolute-error bound for frames after H.264 (crf 18, yuv420p) and back, in 0…255
/// levels; measured 1.1 at worst on these frames (README, LeRobot section).
private let frameTolerance = 2.0

/// The same bound with full-resolution colour and crf 0 (`.yuv444p`); measured 0.5 on sim frames.
private let nearLosslessTolerance = 1.0

@Suite("LeRobot v3 exchange")
struct LeRobotExchangeTests {
    let exchange = LeRobotExchange(python: python, helper: helper)

    @Test(.enabled(if: helperPackagesImportable, "needs numpy, safetensors, pyarrow, av (scripts/bootstrap)"))
    func exportWritesTheV3LayoutWithTheEpisodesNumbers() throws {
        let (store, episodes) = try makeStoreWithEpisodes()
        let out = temporaryDirectory("lerobot-out")
        defer { try? FileManager.default.removeItem(at: store.root); try? FileManager.default.removeItem(at: out) }
        let specs = ["arm7": try EmbodimentSpec(name: "arm7", controlMode: .jointPosition, numArms: 1,
                                                actionNames: (1...7).map { "joint\($0)" } + ["gripper"], actionSlots: Array(0..<7) + [13],
                                                stateNames: (1...9).map { "s\($0)" }, stateSlots: Array(0..<7) + [13, 35])]
        let summary = try exchange.exportDataset(from: store, to: out, options: LeRobotExportOptions(specs: specs))
        #expect(summary == LeRobotExportSummary(episodes: 3, frames: 22, tasks: 2, fps: 20, cameras: ["scene", "wrist"]))

        let result = try runPython(["-c", independentReader, out.path])
        try #require(result.status == 0, "\(result.stderr)")
        let view = try JSONDecoder().decode(DatasetView.self, from: Data(result.stdout.utf8))
        #expect(view.files == ["data/chunk-000/file-000.parquet", "meta/episodes/chunk-000/file-000.parquet", "meta/info.json",
                               "meta/stats.json", "meta/tasks.parquet",
                               "videos/observation.images.scene/chunk-000/file-000.mp4",
                               "videos/observation.images.wrist/chunk-000/file-000.mp4"])
        let info = view.info
        #expect(info.codebase_version == "v3.0")
        #expect(info.fps == 20 && info.total_episodes == 3 && info.total_frames == 22 && info.total_tasks == 2)
        #expect(info.robot_type == "arm7" && info.chunks_size == 1000)
        #expect(info.data_path == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet")
        #expect(info.video_path == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4")
        #expect(info.features["observation.state"]?.shape == [9] && info.features["observation.state"]?.names?.first == "s1")
        #expect(info.features["action"]?.shape == [8] && info.features["action"]?.names?.last == "gripper")
        #expect(info.features["observation.images.scene"]?.dtype == "video")
        #expect(info.features["observation.images.scene"]?.shape == [24, 32, 3])
        for key in ["timestamp", "frame_index", "episode_index", "index", "task_index"] { #expect(info.features[key] != nil, "\(key)") }

        // Frame rows: every number equals the episode's, in store order.
        #expect(view.rows == 22)
        var row = 0
        for (e, episode) in episodes.enumerated() {
            let ep = view.episodes[e]
            #expect(ep.episode_index == e && ep.length == episode.stepCount && ep.tasks == [episode.instruction])
            #expect(ep.dataset_from_index == row && ep.dataset_to_index == row + episode.stepCount)
            #expect(ep.data_chunk == 0 && ep.data_file == 0 && ep.id == episode.id.uuidString)
            #expect(abs(ep.scene_from - Double(row) / 20) < 1e-9 && abs(ep.scene_to - Double(row + episode.stepCount) / 20) < 1e-9)
            #expect(ep.wrist_from == ep.scene_from)
            for t in 0..<episode.stepCount {
                #expect(view.state[row].map(Float.init) == Array(episode.states.row(t)))
                #expect(view.action[row].map(Float.init) == Array(episode.nativeActions.row(t)))
                #expect(view.unified[row].map(Float.init) == Array(episode.unifiedActions.row(t)))
                #expect(Float(view.timestamp[row]) == Float(episode.timestamps[t]))
                #expect(view.timestamp_us[row] == Int((episode.timestamps[t] * 1e6).rounded()))
                #expect(view.episode_index[row] == e && view.frame_index[row] == t && view.index[row] == row)
                #expect(view.task_index[row] == view.tasks[episode.instruction])
                #expect(Float(view.reward[row]) == episode.rewards[t] && view.done[row] == episode.dones[t])
                #expect(view.source[row] == Int(episode.sources[t].rawValue))
                #expect(view.intervention[row] == (episode.sources[t] == .operator))
                row += 1
            }
        }
        #expect(view.tasks == ["reach the red cube": 0, "push the blue block left": 1])
        #expect(view.video_frames == ["scene": 22, "wrist": 22])
        #expect(view.video_size == ["scene": [24, 32], "wrist": [24, 32]])
        // stats.json: state mean over all 22 frames; image means per channel in 0…1, shaped [3][1][1].
        let allStates = episodes.flatMap { e in (0..<e.stepCount).map { Array(e.states.row($0)) } }
        for k in 0..<9 {
            let mean = allStates.reduce(0.0) { $0 + Double($1[k]) } / 22
            #expect(abs(view.state_mean[k] - mean) < 1e-4)
        }
        #expect(view.state_count == [22])
        #expect(view.scene_mean.count == 3 && view.scene_mean.allSatisfy { $0.count == 1 && $0[0].count == 1 && (0...1).contains($0[0][0]) })
    }

    @Test(.enabled(if: helperPackagesImportable, "needs numpy, safetensors, pyarrow, av (scripts/bootstrap)"))
    func importRestoresEverythingExactlyButFramesWithinTolerance() throws {
        let (store, episodes) = try makeStoreWithEpisodes()
        let out = temporaryDirectory("lerobot-out")
        let imported = try EpisodeStore(root: temporaryDirectory("lerobot-imported"))
        defer { for u in [store.root, out, imported.root] { try? FileManager.default.removeItem(at: u) } }
        try exchange.exportDataset(from: store, to: out)
        let summary = try exchange.importDataset(from: out, into: imported)
        #expect(summary == LeRobotImportSummary(episodes: 3, frames: 22, fps: 20, cameras: ["scene", "wrist"], inserted: 3, alreadyStored: 0))
        #expect(imported.count == 3)
        var worst = 0.0
        for original in episodes {
            let back = try imported.load(original.id)
            var withoutFrames = back
            withoutFrames.cameras = original.cameras
            // Ids, instruction, task, embodiment, states, actions, unified actions and mask, rewards,
            // dones, sources, timestamps (µs), success, versions, seed, speed, creation time.
            #expect(withoutFrames == original)
            #expect(back.cameras.keys.sorted() == ["scene", "wrist"])
            for (name, frames) in original.cameras {
                let decoded = try #require(back.cameras[name])
                #expect(decoded.height == frames.height && decoded.width == frames.width && decoded.count == frames.count)
                let error = meanAbsoluteError(frames.pixels, decoded.pixels)
                worst = max(worst, error)
                #expect(error <= frameTolerance, "camera \(name) of \(original.id): mean abs error \(error)")
            }
        }
        print("LeRobot round trip: worst per-camera mean abs frame error \(worst) levels")
        // Ids travel with the dataset: importing again inserts nothing.
        let again = try exchange.importDataset(from: out, into: imported)
        #expect(again.inserted == 0 && again.alreadyStored == 3 && imported.count == 3)
        // Nothing is left behind next to the store.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: imported.root.path).filter { $0.hasPrefix(".lerobot-import") }
        #expect(leftovers.isEmpty)
    }

    @Test(.enabled(if: helperPackagesImportable, "needs numpy, safetensors, pyarrow, av (scripts/bootstrap)"))
    func queryExportsOneTaskAndExistingDatasetsAreNotOverwritten() throws {
        let (store, episodes) = try makeStoreWithEpisodes()
        let out = temporaryDirectory("lerobot-out")
        defer { try? FileManager.default.removeItem(at: store.root); try? FileManager.default.removeItem(at: out) }
        let summary = try exchange.exportDataset(from: store, to: out, options: LeRobotExportOptions(query: EpisodeQuery(task: "push")))
        #expect(summary.episodes == 1 && summary.frames == episodes[2].stepCount && summary.tasks == 1)
        #expect(throws: LeRobotExchangeError.self) { try exchange.exportDataset(from: store, to: out) }
        do {
            try exchange.exportDataset(from: store, to: out)
        } catch let LeRobotExchangeError.helperFailed(command, status, stderr) {
            #expect(command == "export" && status == 1 && stderr.contains("already holds a dataset"))
        }
    }

    @Test(.enabled(if: helperPackagesImportable, "needs numpy, safetensors, pyarrow, av (scripts/bootstrap)"))
    func helperFailureCarriesItsStderr() throws {
        let notADataset = temporaryDirectory("not-lerobot")
        let store = try EpisodeStore(root: temporaryDirectory("lerobot-store"))
        try FileManager.default.createDirectory(at: notADataset, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: notADataset); try? FileManager.default.removeItem(at: store.root) }
        do {
            try exchange.importDataset(from: notADataset, into: store)
            Issue.record("import of an empty directory succeeded")
        } catch let LeRobotExchangeError.helperFailed(command, status, stderr) {
            #expect(command == "import" && status == 1)
            #expect(stderr.contains("is not a LeRobot dataset (no meta/info.json)"))
        }
        #expect(store.count == 0)
    }

    @Test(.enabled(if: helperPackagesImportable, "needs numpy, safetensors, pyarrow, av (scripts/bootstrap)"))
    func fullColourVideoKeepsFramesNearlyExactAndTakesOddSizes() throws {
        let store = try EpisodeStore(root: temporaryDirectory("lerobot-store"))
        let out = temporaryDirectory("lerobot-out")
        let imported = try EpisodeStore(root: temporaryDirectory("lerobot-imported"))
        defer { for u in [store.root, out, imported.root] { try? FileManager.default.removeItem(at: u) } }
        let original = try makeExchangeEpisode(index: 0, steps: 5, instruction: "reach", height: 15, width: 21)
        try store.insert(original)
        try exchange.exportDataset(from: store, to: out, options: LeRobotExportOptions(crf: 0, pixelFormat: .yuv444p))
        let info = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("meta/info.json"))) as? [String: Any]
        let scene = (info?["features"] as? [String: Any])?["observation.images.scene"] as? [String: Any]
        #expect((scene?["info"] as? [String: Any])?["video.pix_fmt"] as? String == "yuv444p")
        try exchange.importDataset(from: out, into: imported)
        let back = try imported.load(original.id)
        for (name, frames) in original.cameras {
            let error = meanAbsoluteError(frames.pixels, try #require(back.cameras[name]).pixels)
            #expect(error <= nearLosslessTolerance, "camera \(name): mean abs error \(error)")
        }
    }

    /// `vla data export-lerobot` and `import-lerobot`, run from the package directory.
    @Test(.enabled(if: helperPackagesImportable, "needs numpy, safetensors, pyarrow, av (scripts/bootstrap)"))
    func commandLineExportsAndImports() throws {
        let vla = try #require([URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("vla"),
                                packageRoot.appendingPathComponent(".build/debug/vla")]
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }, "vla is built with the tests")
        let (store, episodes) = try makeStoreWithEpisodes()
        let out = temporaryDirectory("lerobot-out"), importedRoot = temporaryDirectory("lerobot-imported")
        defer { for u in [store.root, out, importedRoot] { try? FileManager.default.removeItem(at: u) } }
        let export = try run(vla, ["data", "export-lerobot", "--store", store.root.path, "--out", out.path, "--task", "reach"])
        try #require(export.status == 0, "\(export.stderr)")
        #expect(export.stdout.contains("exported 2 episodes, 15 frames, 1 tasks at 20 fps"))
        let importResult = try run(vla, ["data", "import-lerobot", "--from", out.path, "--store", importedRoot.path])
        try #require(importResult.status == 0, "\(importResult.stderr)")
        #expect(importResult.stdout.contains("imported 2 episodes (2 new, 0 already stored), 15 frames"))
        let imported = try EpisodeStore(root: importedRoot)
        #expect(Set(try imported.records().map(\.uuid)) == Set(episodes.prefix(2).map(\.id)))
        let failed = try run(vla, ["data", "import-lerobot", "--from", store.root.path, "--store", importedRoot.path])
        #expect(failed.status != 0 && failed.stderr.contains("not a LeRobot dataset"))
    }

    /// A dataset LeRobot-style tools wrote (no `swiftvla.` columns, pandas-style variable
    /// lists, mpeg4 video, each episode in its own video file) imports with stated defaults.
    @Test(.enabled(if: helperPackagesImportable, "needs numpy, safetensors, pyarrow, av (scripts/bootstrap)"))
    func foreignDatasetImportsWithDefaults() throws {
        let dataset = temporaryDirectory("foreign-lerobot")
        let imported = try EpisodeStore(root: temporaryDirectory("lerobot-imported"))
        defer { try? FileManager.default.removeItem(at: dataset); try? FileManager.default.removeItem(at: imported.root) }
        let made = try runPython(["-c", foreignDatasetWriter, dataset.path])
        try #require(made.status == 0, "\(made.stderr)")
        let summary = try exchange.importDataset(from: dataset, into: imported)
        #expect(summary.episodes == 2 && summary.frames == 7 && summary.fps == 10 && summary.cameras == ["top"])
        let episodes = try imported.loadAll().episodes.sorted { $0.stepCount > $1.stepCount }
        try #require(episodes.count == 2)
        for (e, episode) in episodes.enumerated() {
            let steps = e == 0 ? 4 : 3
            #expect(episode.stepCount == steps && episode.embodiment == "so100" && episode.task == "lerobot")
            #expect(episode.instruction == (e == 0 ? "pick the cube" : "place the cube"))
            #expect(episode.states.columns == 3 && episode.states.values == (0..<(steps * 3)).map { Float($0 + 100 * e) * 0.5 })
            #expect(episode.nativeActions.columns == 2 && episode.nativeActions.values == (0..<(steps * 2)).map { Float($0 + 100 * e) * -0.25 })
            #expect(episode.timestamps == (0..<steps).map { Double($0) / 10 })
            #expect(episode.sources.allSatisfy { $0 == .demo } && episode.rewards.allSatisfy { $0 == 0 })
            #expect(episode.dones == (0..<steps).map { $0 == steps - 1 })
            #expect(episode.actionMask.allSatisfy { $0 == 0 } && episode.unifiedActions.values.allSatisfy { $0 == 0 })
            let top = try #require(episode.cameras["top"])
            #expect(top.height == 16 && top.width == 16 && top.count == steps)
            // The writer's frames: a flat grey level per step, 40·step + 100·episode + 10.
            for t in 0..<steps {
                let expected = Double(40 * t + 100 * e + 10)
                let mean = top.frame(t).reduce(0.0) { $0 + Double($1) } / Double(top.frameBytes)
                #expect(abs(mean - expected) <= 3, "episode \(e) step \(t): mean \(mean), expected \(expected)")
            }
        }
        // Ids derive from the directory and episode index: importing again inserts nothing.
        #expect(try exchange.importDataset(from: dataset, into: imported).alreadyStored == 2)
    }

    @Test func missingPythonOrHelperAreTypedErrors() throws {
        let (store, _) = try makeStoreWithEpisodes()
        let out = temporaryDirectory("lerobot-out")
        defer { try? FileManager.default.removeItem(at: store.root); try? FileManager.default.removeItem(at: out) }
        let noPython = LeRobotExchange(python: URL(fileURLWithPath: "/nonexistent/bin/python"), helper: helper)
        #expect(throws: LeRobotExchangeError.pythonMissing("/nonexistent/bin/python")) {
            try noPython.exportDataset(from: store, to: out)
        }
        let noHelper = LeRobotExchange(python: URL(fileURLWithPath: "/bin/sh"), helper: URL(fileURLWithPath: "/nonexistent/lerobot_v3.py"))
        #expect(throws: LeRobotExchangeError.helperMissing("/nonexistent/lerobot_v3.py")) {
            try noHelper.importDataset(from: out, into: store)
        }
        #expect(!FileManager.default.fileExists(atPath: out.path))
        // Found from the package directory, as `vla` finds it when run there.
        let located = try LeRobotExchange.locate(helper: nil)
        #expect(located.helper.lastPathComponent == "lerobot_v3.py" && FileManager.default.fileExists(atPath: located.helper.path))
    }

    @Test func layoutProblemsAreCaughtBeforeThePythonRuns() throws {
        let store = try EpisodeStore(root: temporaryDirectory("lerobot-store"))
        let out = temporaryDirectory("lerobot-out")
        defer { try? FileManager.default.removeItem(at: store.root); try? FileManager.default.removeItem(at: out) }
        // A helper that cannot run: these errors must come first.
        let exchange = LeRobotExchange(python: URL(fileURLWithPath: "/nonexistent/python"), helper: helper)
        #expect(throws: LeRobotExchangeError.noEpisodes) { try exchange.exportDataset(from: store, to: out) }
        try store.insert(try makeExchangeEpisode(index: 0, steps: 4, instruction: "a"))
        try store.insert(try makeExchangeEpisode(index: 1, steps: 4, instruction: "b", stateWidth: 5))
        #expect(throws: LeRobotExchangeError.self) { try exchange.exportDataset(from: store, to: out) }
        do { try exchange.exportDataset(from: store, to: out) } catch let error as LeRobotExchangeError {
            guard case .inconsistentLayout(let message) = error else { Issue.record("\(error)"); return }
            #expect(message.contains("state 5") && message.contains("state 9"))
        }
        let odd = try EpisodeStore(root: temporaryDirectory("lerobot-store"))
        defer { try? FileManager.default.removeItem(at: odd.root) }
        try odd.insert(try makeExchangeEpisode(index: 0, steps: 3, instruction: "a", height: 5, width: 6))
        #expect(throws: LeRobotExchangeError.oddImageSize(camera: "scene", height: 5, width: 6)) {
            try exchange.exportDataset(from: odd, to: out)
        }
    }
}
