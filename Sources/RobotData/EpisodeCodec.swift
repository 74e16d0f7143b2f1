import Foundation
import TensorKit

/// Episode ⇄ safetensors: per-step arrays as named tensors, scalar fields as JSON metadata
/// under the key `episode` (readable from Python with the `safetensors` package).
public enum EpisodeCodec {
    public static let formatVersion = "swiftvla-episode-v1"

    struct Header: Codable {
        var format: String
        var id: UUID
        var embodiment: String
        var task: String
        var instruction: String
        var success: Bool
        var policyVersion: Int
        var seed: UInt64?
        var speed: Float?
        var createdAt: Date
        var cameras: [String]
    }

    // Dates stay in Foundation's default form (seconds as a JSON double): exact round trip.
    static let jsonEncoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }()
    static let jsonDecoder: JSONDecoder = {
        let d = JSONDecoder()
        return d
    }()

    public static func write(_ episode: Episode, to url: URL) throws {
        try episode.validate()
        let t = episode.stepCount
        var tensors: [String: Tensor] = [
            "states": try Tensor(episode.states.values, shape: [t, episode.states.columns]),
            "native_actions": try Tensor(episode.nativeActions.values, shape: [t, episode.nativeActions.columns]),
            "unified_actions": try Tensor(episode.unifiedActions.values, shape: [t, episode.unifiedActions.columns]),
            "action_mask": Tensor(episode.actionMask),
            "rewards": Tensor(episode.rewards),
            "dones": Tensor(episode.dones.map { UInt8($0 ? 1 : 0) }),
            "sources": Tensor(episode.sources.map(\.rawValue)),
            // Microseconds as int64: MLX's safetensors writer has no float64.
            "timestamps_us": Tensor(episode.timestamps.map { Int64(($0 * 1e6).rounded()) }),
        ]
        if let versions = episode.stepPolicyVersions { tensors["policy_versions"] = Tensor(versions.map(Int64.init)) }
        for (name, frames) in episode.cameras {
            tensors["camera.\(name)"] = try Tensor(frames.pixels, shape: [t, frames.height, frames.width, 3])
        }
        let header = Header(format: formatVersion, id: episode.id, embodiment: episode.embodiment, task: episode.task,
                            instruction: episode.instruction, success: episode.success, policyVersion: episode.policyVersion,
                            seed: episode.seed, speed: episode.speed, createdAt: episode.createdAt,
                            cameras: episode.cameras.keys.sorted())
        let json = String(decoding: try jsonEncoder.encode(header), as: UTF8.self)
        try TensorFile.save(tensors, metadata: ["episode": json], to: url)
    }

    /// Reads an episode; any damage (truncation, missing tensors, bad header) is reported as
    /// `EpisodeError.corrupt` naming the file.
    public static func read(_ url: URL) throws -> Episode {
        let file = url.lastPathComponent
        let tensors: [String: Tensor], metadata: [String: String]
        do { (tensors, metadata) = try TensorFile.load(url) }
        catch { throw EpisodeError.corrupt(file: file, reason: "\(error)") }
        guard let json = metadata["episode"],
              let header = try? jsonDecoder.decode(Header.self, from: Data(json.utf8)), header.format == formatVersion else {
            throw EpisodeError.corrupt(file: file, reason: "missing or unreadable episode header")
        }
        func tensor(_ name: String) throws -> Tensor {
            guard let t = tensors[name] else { throw EpisodeError.corrupt(file: file, reason: "missing tensor \(name)") }
            return t
        }
        func matrix(_ name: String) throws -> StepMatrix {
            let t = try tensor(name)
            guard t.ndim == 2 else { throw EpisodeError.corrupt(file: file, reason: "\(name) is not 2-D") }
            return try StepMatrix(rows: t.dim(0), columns: t.dim(1), values: t.toArray(Float.self))
        }
        var cameras: [String: CameraFrames] = [:]
        for name in header.cameras {
            let t = try tensor("camera.\(name)")
            guard t.ndim == 4, t.dtype == .uint8 else { throw EpisodeError.corrupt(file: file, reason: "camera \(name) is not [T,H,W,3] uint8") }
            cameras[name] = CameraFrames(height: t.dim(1), width: t.dim(2), pixels: try t.toArray(UInt8.self))
        }
        let sources = try tensor("sources").toArray(UInt8.self).map { raw -> StepSource in
            guard let s = StepSource(rawValue: raw) else { throw EpisodeError.corrupt(file: file, reason: "unknown step source \(raw)") }
            return s
        }
        let episode = Episode(
            id: header.id, embodiment: header.embodiment, task: header.task, instruction: header.instruction,
            cameras: cameras, states: try matrix("states"), nativeActions: try matrix("native_actions"),
            unifiedActions: try matrix("unified_actions"), actionMask: try tensor("action_mask").toArray(Float.self),
            rewards: try tensor("rewards").toArray(Float.self), dones: try tensor("dones").toArray(UInt8.self).map { $0 != 0 },
            sources: sources, timestamps: try tensor("timestamps_us").toArray(Int64.self).map { Double($0) / 1e6 }, success: header.success,
            policyVersion: header.policyVersion, seed: header.seed, speed: header.speed, createdAt: header.createdAt,
            stepPolicyVersions: try tensors["policy_versions"].map { try $0.toArray(Int64.self).map(Int.init) })
        do { try episode.validate() } catch { throw EpisodeError.corrupt(file: file, reason: "\(error)") }
        return episode
    }
}
