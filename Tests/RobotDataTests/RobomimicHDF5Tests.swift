import Foundation
import Testing
@testable import RobotData

private let python = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent(".venv/bin/python")

/// h5py (scripts/bootstrap installs it) reads the file independently of libhdf5-through-Swift.
private let h5pyImportable: Bool = {
    guard FileManager.default.isExecutableFile(atPath: python.path) else { return false }
    let process = Process()
    process.executableURL = python
    process.arguments = ["-c", "import h5py, numpy"]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return false }
    process.waitUntilExit()
    return process.terminationStatus == 0
}()

/// Dumps every dataset and attribute of the file as JSON (arrays flattened, with shapes).
private let h5Dump = #"""
import json, sys
import h5py, numpy as np
out = {}
def visit(name, obj):
    entry = {"attrs": {k: (v.decode() if isinstance(v, bytes) else v.tolist() if hasattr(v, "tolist") else v)
                       for k, v in obj.attrs.items()}}
    if isinstance(obj, h5py.Dataset):
        entry.update(shape=list(obj.shape), dtype=str(obj.dtype), values=np.asarray(obj).reshape(-1).tolist(),
                     compression=obj.compression)
    out[name] = entry
with h5py.File(sys.argv[1], "r") as f:
    out["/"] = {"attrs": {}}
    visit("data", f["data"])
    f["data"].visititems(lambda n, o: visit("data/" + n, o))
print(json.dumps(out))
"""#

private struct Entry: Decodable {
    var attrs: [String: AttributeValue]
    var shape: [Int]?
    var dtype: String?
    var values: [Double]?
    var compression: String?
}

private enum AttributeValue: Decodable, Equatable {
    case number(Double), text(String)
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let d = try? c.decode(Double.self) { self = .number(d) } else { self = .text(try c.decode(String.self)) }
    }
}

@Suite("robomimic HDF5 export and import")
struct RobomimicHDF5Tests {
    @Test(.enabled(if: h5pyImportable, "needs h5py (scripts/bootstrap)"))
    func exportedFileHoldsEveryNumberExactly() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hdf5-store-\(UUID().uuidString)")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("episodes-\(UUID().uuidString).hdf5")
        defer { try? FileManager.default.removeItem(at: root); try? FileManager.default.removeItem(at: file) }
        let store = try EpisodeStore(root: root)
        let a = try makeEpisode(steps: 6, task: "reach", seed: 3)
        var b = try makeEpisode(steps: 4, task: "push", source: .policy, seed: 5)
        b.seed = UInt64.max - 5
        b.createdAt = a.createdAt.addingTimeInterval(1.25)
        for e in [a, b] { try store.insert(e) }
        let summary = try RobomimicHDF5.export(from: store, to: file)
        #expect(summary == RobomimicHDF5.Summary(episodes: 2, steps: 10))

        let process = Process()
        let outFile = FileManager.default.temporaryDirectory.appendingPathComponent("h5dump-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: outFile) }
        FileManager.default.createFile(atPath: outFile.path, contents: nil)
        let handle = try FileHandle(forWritingTo: outFile)
        process.executableURL = python
        process.arguments = ["-c", h5Dump, file.path]
        process.standardOutput = handle
        try process.run()
        process.waitUntilExit()
        try handle.close()
        try #require(process.terminationStatus == 0)
        let dump = try JSONDecoder().decode([String: Entry].self, from: Data(contentsOf: outFile))

        let data = try #require(dump["data"])
        #expect(data.attrs["total"] == .number(10))
        #expect(data.attrs["format"] == .text(RobomimicHDF5.format))
        guard case .text(let envArgs) = data.attrs["env_args"] else { Issue.record("env_args"); return }
        #expect(envArgs.contains("\"env_name\":\"swiftvla\""))
        for (i, e) in [a, b].enumerated() {
            let demo = "data/demo_\(i)"
            let attrs = try #require(dump[demo]).attrs
            #expect(attrs["num_samples"] == .number(Double(e.stepCount)))
            #expect(attrs["id"] == .text(e.id.uuidString) && attrs["task"] == .text(e.task))
            #expect(attrs["instruction"] == .text(e.instruction) && attrs["embodiment"] == .text(e.embodiment))
            #expect(attrs["success"] == .number(e.success ? 1 : 0) && attrs["policy_version"] == .number(Double(e.policyVersion)))
            #expect(attrs["created_at"] == .number(e.createdAt.timeIntervalSinceReferenceDate))
            func values(_ key: String) throws -> (shape: [Int], values: [Double]) {
                let entry = try #require(dump["\(demo)/\(key)"], "\(demo)/\(key)")
                return (entry.shape ?? [], entry.values ?? [])
            }
            let t = e.stepCount
            #expect(try values("actions") == ([t, e.nativeActions.columns], e.nativeActions.values.map(Double.init)))
            #expect(try values("obs/state") == ([t, e.states.columns], e.states.values.map(Double.init)))
            #expect(try values("rewards") == ([t], e.rewards.map(Double.init)))
            #expect(try values("dones") == ([t], e.dones.map { $0 ? 1 : 0 }))
            #expect(try values("unified_actions") == ([t, 64], e.unifiedActions.values.map(Double.init)))
            #expect(try values("action_mask") == ([64], e.actionMask.map(Double.init)))
            #expect(try values("sources") == ([t], e.sources.map { Double($0.rawValue) }))
            #expect(try values("timestamps_us") == ([t], e.timestamps.map { ($0 * 1e6).rounded() }))
            let scene = try #require(e.cameras["scene"])
            #expect(try values("obs/scene_image") == ([t, scene.height, scene.width, 3], scene.pixels.map(Double.init)))
            #expect(dump["\(demo)/obs/scene_image"]?.dtype == "uint8" && dump["\(demo)/obs/scene_image"]?.compression == "gzip")
        }
        // A seed beyond Int64 survives as uint64 (JSON carries it as a double: compare coarsely).
        guard case .number(let seed) = dump["data/demo_1"]?.attrs["seed"] else { Issue.record("seed"); return }
        #expect(seed == Double(UInt64.max - 5))
    }

    @Test func exportThenImportIsExact() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hdf5-store-\(UUID().uuidString)")
        let back = FileManager.default.temporaryDirectory.appendingPathComponent("hdf5-back-\(UUID().uuidString)")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("episodes-\(UUID().uuidString).hdf5")
        defer { for u in [root, back, file] { try? FileManager.default.removeItem(at: u) } }
        let store = try EpisodeStore(root: root)
        var a = try makeEpisode(steps: 6, task: "reach", seed: 3)
        a.speed = 0.7
        var b = try makeEpisode(steps: 5, task: "push", source: .policy, seed: 9)
        b.seed = nil
        b.policyVersion = 4
        b.stepPolicyVersions = [3, 3, 4, 4, 4]
        b.createdAt = a.createdAt.addingTimeInterval(2.5)
        for e in [a, b] { try store.insert(e) }
        try RobomimicHDF5.export(from: store, to: file, gzipLevel: 0)
        let target = try EpisodeStore(root: back)
        #expect(try RobomimicHDF5.importFile(file, into: target) == (2, 2))
        #expect(try target.load(a.id) == a)
        #expect(try target.load(b.id) == b)
        #expect(try RobomimicHDF5.importFile(file, into: target) == (2, 0))
    }

    /// A file robomimic / LIBERO tools write (float64 actions, several low-dimensional obs, an
    /// `_image` camera, LIBERO's problem_info) imports with the documented defaults.
    @Test(.enabled(if: h5pyImportable, "needs h5py (scripts/bootstrap)"))
    func foreignFileImportsWithDefaults() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("libero-\(UUID().uuidString).hdf5")
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hdf5-store-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file); try? FileManager.default.removeItem(at: root) }
        let process = Process()
        process.executableURL = python
        process.arguments = ["-c", #"""
import json, sys
import h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    d = f.create_group("data")
    d.attrs["env_args"] = json.dumps({"env_name": "Libero_Kitchen", "type": 1, "env_kwargs": {}})
    d.attrs["problem_info"] = json.dumps({"language_instruction": "open the top drawer"})
    for i, n in enumerate([5, 3]):
        g = d.create_group(f"demo_{i}")
        g.attrs["num_samples"] = n
        g["actions"] = np.arange(n * 7, dtype=np.float64).reshape(n, 7) / 8 + i
        g["rewards"] = np.zeros(n); g["dones"] = (np.arange(n) == n - 1).astype(np.int64)
        g["obs/joint_states"] = np.arange(n * 7, dtype=np.float64).reshape(n, 7) + 100 * i
        g["obs/gripper_states"] = -np.arange(n * 2, dtype=np.float32).reshape(n, 2)
        g["obs/agentview_rgb"] = np.full((n, 8, 10, 3), 7 * i, np.uint8)
"""#, file.path]
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0)
        let store = try EpisodeStore(root: root)
        #expect(try RobomimicHDF5.importFile(file, into: store) == (2, 2))
        let episodes = try RobomimicHDF5.read(from: file)
        #expect(episodes.map(\.id) == [RobomimicHDF5.derivedID("\(file.lastPathComponent)#demo_0"), RobomimicHDF5.derivedID("\(file.lastPathComponent)#demo_1")])
        for (i, e) in episodes.enumerated() {
            let n = i == 0 ? 5 : 3
            #expect(e.stepCount == n && e.embodiment == "Libero_Kitchen" && e.instruction == "open the top drawer")
            #expect(e.nativeActions.values == (0..<(n * 7)).map { Float($0) / 8 + Float(i) })
            // State: gripper_states then joint_states (names sorted), side by side per step.
            #expect(e.states.columns == 9)
            #expect(Array(e.states.row(1)) == [-2, -3] + (7..<14).map { Float($0 + 100 * i) })
            #expect(e.cameras["agentview"]?.height == 8 && e.cameras["agentview"]?.width == 10)
            #expect(e.cameras["agentview"]?.pixels.allSatisfy { $0 == UInt8(7 * i) } == true)
            #expect(e.dones == (0..<n).map { $0 == n - 1 } && e.sources.allSatisfy { $0 == .demo } && e.success)
            #expect(e.timestamps == (0..<n).map { Double($0) * RobomimicHDF5.defaultStepSeconds })
        }
    }

    @Test func libraryErrorsAreTypedAndLeaveNoFile() throws {
        let dir = URL(fileURLWithPath: "/nonexistent-dir-\(UUID().uuidString)")
        do {
            try RobomimicHDF5.write([try makeEpisode()], to: dir.appendingPathComponent("x.hdf5"))
            Issue.record("writing into a missing directory succeeded")
        } catch let HDF5Error.library(operation, message) {
            #expect(operation.hasPrefix("create") && message.contains("No such file or directory"), "\(message)")
        }
        #expect(throws: HDF5Error.noEpisodes) { try RobomimicHDF5.write([], to: dir.appendingPathComponent("y.hdf5")) }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hdf5-store-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        #expect(throws: HDF5Error.noEpisodes) {
            try RobomimicHDF5.export(from: try EpisodeStore(root: root), to: root.appendingPathComponent("z.hdf5"))
        }
    }
}
