import Foundation
import RobotData

/// Who produced a step's action.
public enum ActionSource: String, Sendable, Codable { case policy, `operator`, demo }

/// Records an episode step by step and writes it to a directory:
///
/// - `episode.safetensors`: tensors `images.<camera>` U8 [T+1, H, W, 3] (observation before
///   each action plus the final one), `state` F32 [T+1, S], `action` F32 [T, A] (native),
///   `unified_action` F32 [T, 64], `action_mask` F32 [64], `state_unified` F32 [T+1, 64],
///   `state_mask` F32 [64], `reward` F32 [T], `done` U8 [T], `success` U8 [T],
///   `intervention` U8 [T] (1 = operator took over); `__metadata__` holds embodiment, task,
///   seed, instruction, prompt, camera names, action/state names, control period, id.
/// - `episode.json`: the same metadata plus the tensor list, readable without a parser.
/// - `<camera>.png`: a strip of up to `stripFrames` evenly spaced frames per camera.
public final class EpisodeRecorder {
    public let id: UUID
    public let embodiment: EmbodimentKind
    public let task: TaskKind
    public let seed: UInt64
    public let instruction: String
    public let prompt: String
    public let spec: EmbodimentSpec
    public let cameraNames: [String]
    public let width: Int
    public let height: Int
    public private(set) var frames: [[[UInt8]]] = []   // [camera][t]
    public private(set) var states: [[Float]] = []
    public private(set) var actions: [[Float]] = []
    public private(set) var rewards: [Float] = []
    public private(set) var dones: [Bool] = []
    public private(set) var successes: [Bool] = []
    public private(set) var interventions: [Bool] = []
    public private(set) var sources: [ActionSource] = []

    public init(environment env: RobotEnvironment, id: UUID = UUID()) {
        self.id = id
        embodiment = env.embodiment
        task = env.task
        seed = env.seed
        instruction = env.instruction
        prompt = env.prompt
        spec = env.spec
        cameraNames = env.cameraNames
        width = env.config.imageWidth
        height = env.config.imageHeight
        frames = Array(repeating: [], count: cameraNames.count)
    }

    public var length: Int { actions.count }
    public var succeeded: Bool { successes.last ?? false }

    /// Record an observation (call once after reset and once after every step).
    public func record(observation o: Observation) {
        states.append(o.state)
        for k in cameraNames.indices { frames[k].append(k < o.images.count ? o.images[k] : []) }
    }

    /// Record the action taken and its outcome.
    public func record(action: [Float], result: StepResult, source: ActionSource = .demo, intervention: Bool = false) {
        actions.append(action)
        rewards.append(result.reward)
        dones.append(result.done)
        successes.append(result.success)
        interventions.append(intervention)
        sources.append(source)
        record(observation: result.observation)
    }

    public var metadata: [String: String] {
        [
            "id": id.uuidString, "embodiment": embodiment.rawValue, "task": task.rawValue, "seed": "\(seed)",
            "instruction": instruction, "prompt": prompt, "cameras": cameraNames.joined(separator: ","),
            "action_names": spec.actionNames.joined(separator: ","), "state_names": spec.stateNames.joined(separator: ","),
            "control_period_s": "0.05", "image_height": "\(height)", "image_width": "\(width)",
            "steps": "\(length)", "success": "\(succeeded)",
            "sources": sources.map(\.rawValue).joined(separator: ","),
            "format": "swiftvla-episode-v0",
        ]
    }

    /// Write `episode.safetensors`, `episode.json` and one PNG strip per camera into `directory`.
    public func write(to directory: URL, stripFrames: Int = 8) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var w = SafetensorsWriter()
        w.metadata = metadata
        let T = actions.count
        let hasImages = frames.first?.first?.isEmpty == false
        if hasImages {
            for (k, name) in cameraNames.enumerated() {
                w.add("images.\(name)", uint8: frames[k].flatMap { $0 }, shape: [frames[k].count, height, width, 3])
            }
        }
        w.add("state", float32: states.flatMap { $0 }, shape: [states.count, spec.stateDimension])
        w.add("state_unified", float32: try states.flatMap { try spec.unifiedState($0) }, shape: [states.count, UnifiedActionSpace.dimension])
        w.add("state_mask", float32: spec.stateMask, shape: [UnifiedActionSpace.dimension])
        w.add("action", float32: actions.flatMap { $0 }, shape: [T, spec.actionDimension])
        w.add("unified_action", float32: try actions.flatMap { try spec.unifiedAction($0) }, shape: [T, UnifiedActionSpace.dimension])
        w.add("action_mask", float32: spec.actionMask, shape: [UnifiedActionSpace.dimension])
        w.add("reward", float32: rewards, shape: [T])
        w.add("done", uint8: dones.map { $0 ? 1 : 0 }, shape: [T])
        w.add("success", uint8: successes.map { $0 ? 1 : 0 }, shape: [T])
        w.add("intervention", uint8: interventions.map { $0 ? 1 : 0 }, shape: [T])
        try w.write(to: directory.appendingPathComponent("episode.safetensors"))

        var json: [String: Any] = metadata
        json["tensors"] = ["images.<camera> U8 [T+1,H,W,3]", "state F32 [T+1,S]", "state_unified F32 [T+1,64]", "state_mask F32 [64]",
                           "action F32 [T,A]", "unified_action F32 [T,64]", "action_mask F32 [64]", "reward F32 [T]",
                           "done U8 [T]", "success U8 [T]", "intervention U8 [T]"]
        let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: directory.appendingPathComponent("episode.json"), options: .atomic)

        if hasImages {
            for (k, name) in cameraNames.enumerated() {
                let n = frames[k].count
                let count = min(stripFrames, n)
                let picks = (0..<count).map { count == 1 ? 0 : $0 * (n - 1) / (count - 1) }
                let strip = PNGEncoder.strip(picks.map { frames[k][$0] }, width: width, height: height)
                try PNGEncoder.write(rgb: strip, width: width * count, height: height,
                                     to: directory.appendingPathComponent("\(name).png"))
            }
        }
    }
}
