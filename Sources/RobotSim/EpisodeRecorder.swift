import Foundation
import RobotData

/// Records a simulator episode step by step and turns it into a RobotData `Episode`.
///
/// Step t pairs the observation *before* action t with action t and its reward/done (the
/// final observation after the last action is kept in `finalObservation` only). Operator
/// steps (`source: .operator`) are the interventions of HG-DAgger.
///
/// `write(to:)` produces:
/// - `episode.safetensors` — the RobotData episode format (`EpisodeCodec`, format
///   `swiftvla-episode-v1`): `camera.<name>` U8 [T, H, W, 3], `states` F32 [T, S],
///   `native_actions` F32 [T, A], `unified_actions` F32 [T, 64], `action_mask` F32 [64],
///   `rewards`, `dones`, `sources`, `timestamps_us`; JSON header with id, embodiment, task,
///   instruction, success, seed, cameras.
/// - `episode.json` — a human-readable summary (prompt, action/state names, steps, success).
/// - `<camera>.png` — a strip of up to `stripFrames` evenly spaced frames per camera.
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
    public let controlPeriod: Double
    private var pendingObservation: Observation?
    public private(set) var finalObservation: Observation?
    public private(set) var frames: [[[UInt8]]] = []   // [camera][t]
    public private(set) var states: [[Float]] = []
    public private(set) var actions: [[Float]] = []
    public private(set) var rewards: [Float] = []
    public private(set) var dones: [Bool] = []
    public private(set) var successes: [Bool] = []
    public private(set) var sources: [StepSource] = []

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
        controlPeriod = Double(env.config.substeps) * env.model.timestep
        frames = Array(repeating: [], count: cameraNames.count)
    }

    public var length: Int { actions.count }
    public var succeeded: Bool { successes.last ?? false }

    /// Record the observation after `reset()`.
    public func record(observation o: Observation) { pendingObservation = o }

    /// Record the action taken from the pending observation and the step's result.
    public func record(action: [Float], result: StepResult, source: StepSource = .demo) {
        if let o = pendingObservation {
            states.append(o.state)
            for k in cameraNames.indices { frames[k].append(k < o.images.count ? o.images[k] : []) }
        }
        actions.append(action)
        rewards.append(result.reward)
        dones.append(result.done)
        successes.append(result.success)
        sources.append(source)
        pendingObservation = result.observation
        finalObservation = result.observation
    }

    /// The RobotData episode (cameras only if frames were rendered).
    public func episode(policyVersion: Int = 0) throws -> Episode {
        var cameras: [String: CameraFrames] = [:]
        if frames.first?.first?.isEmpty == false {
            for (k, name) in cameraNames.enumerated() {
                cameras[name] = CameraFrames(height: height, width: width, pixels: frames[k].flatMap { $0 })
            }
        }
        return Episode(
            id: id, embodiment: embodiment.rawValue, task: task.rawValue, instruction: instruction,
            cameras: cameras,
            states: try StepMatrix(states, columns: spec.stateDimension),
            nativeActions: try StepMatrix(actions, columns: spec.actionDimension),
            unifiedActions: try StepMatrix(actions.map { try spec.unifiedAction($0) }, columns: UnifiedActionSpace.dimension),
            actionMask: spec.actionMask, rewards: rewards, dones: dones, sources: sources,
            timestamps: (0..<actions.count).map { Double($0) * controlPeriod },
            success: succeeded, policyVersion: policyVersion, seed: seed)
    }

    public var summary: [String: Any] {
        [
            "id": id.uuidString, "embodiment": embodiment.rawValue, "task": task.rawValue, "seed": seed,
            "instruction": instruction, "prompt": prompt, "cameras": cameraNames,
            "action_names": spec.actionNames, "state_names": spec.stateNames,
            "action_slots": spec.actionMap.slots, "state_slots": spec.stateMap.slots,
            "control_period_s": controlPeriod, "image_height": height, "image_width": width,
            "steps": length, "success": succeeded,
            "operator_steps": sources.filter { $0 == .operator }.count,
            "format": EpisodeCodec.formatVersion,
        ]
    }

    /// Write `episode.safetensors`, `episode.json` and one PNG strip per camera into `directory`.
    public func write(to directory: URL, stripFrames: Int = 8) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try EpisodeCodec.write(try episode(), to: directory.appendingPathComponent("episode.safetensors"))
        let data = try JSONSerialization.data(withJSONObject: summary, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: directory.appendingPathComponent("episode.json"), options: .atomic)
        var all = frames
        if let last = finalObservation, last.images.count == cameraNames.count {
            for k in cameraNames.indices { all[k].append(last.images[k]) }
        }
        guard all.first?.first?.isEmpty == false else { return }
        for (k, name) in cameraNames.enumerated() {
            let n = all[k].count
            let count = min(stripFrames, n)
            let picks = (0..<count).map { count == 1 ? 0 : $0 * (n - 1) / (count - 1) }
            let strip = PNGEncoder.strip(picks.map { all[k][$0] }, width: width, height: height)
            try PNGEncoder.write(rgb: strip, width: width * count, height: height,
                                 to: directory.appendingPathComponent("\(name).png"))
        }
    }
}
